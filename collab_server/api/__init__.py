"""The HTTP API: small routers composed by `build_app`."""

from __future__ import annotations

from starlette.routing import BaseRoute

from collab_server.access import (
    AccessAuthenticator,
    AccessStore,
    DisplayNames,
    MembershipEnforcer,
)
from collab_server.api import audit_trail, documents, members
from collab_server.api.documents import CreationPolicy, NewIep
from collab_server.audit import AuditRecorder


def api_routes(
    authenticator: AccessAuthenticator,
    access: AccessStore,
    enforcer: MembershipEnforcer | None,
    audit: AuditRecorder | None = None,
    creation: CreationPolicy | None = None,
    *,
    names: DisplayNames | None = None,
) -> list[BaseRoute]:
    creation = creation or CreationPolicy(
        frozenset(), "centre", development=authenticator.development_mode
    )
    return [
        *documents.routes(authenticator, access, creation, audit),
        *members.routes(authenticator, access, enforcer, audit, names),
        *(audit_trail.routes(authenticator, access, audit) if audit is not None else []),
    ]


__all__ = ["CreationPolicy", "NewIep", "api_routes"]
