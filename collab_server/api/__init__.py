"""The HTTP API: small routers composed by `build_app`."""

from __future__ import annotations

from starlette.routing import BaseRoute

from collab_server.access import AccessAuthenticator, AccessStore, MembershipEnforcer
from collab_server.api import documents, members


def api_routes(
    authenticator: AccessAuthenticator,
    access: AccessStore,
    enforcer: MembershipEnforcer | None,
) -> list[BaseRoute]:
    return [
        *documents.routes(authenticator, access),
        *members.routes(authenticator, access, enforcer),
    ]


__all__ = ["api_routes"]
