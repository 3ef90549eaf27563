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
from collab_server.api.documents import CreationPolicy, FillListings, NewIep
from collab_server.audit import AuditRecorder


def api_routes(
    authenticator: AccessAuthenticator,
    access: AccessStore,
    enforcer: MembershipEnforcer | None,
    audit: AuditRecorder | None = None,
    creation: CreationPolicy | None = None,
    *,
    names: DisplayNames | None = None,
    fill_listings: FillListings | None = None,
) -> list[BaseRoute]:
    creation = creation or CreationPolicy(
        frozenset(), "centre", development=authenticator.development_mode
    )
    return [
        *documents.routes(
            authenticator, access, creation, audit, names=names, fill_listings=fill_listings
        ),
        *members.routes(authenticator, access, enforcer, audit, names),
        *(audit_trail.routes(authenticator, access, audit) if audit is not None else []),
    ]


__all__ = ["CreationPolicy", "FillListings", "NewIep", "api_routes"]
