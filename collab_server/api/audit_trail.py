"""`GET /api/documents/{name}/audit`: the document's audit trail, newest first (owners, admins).

There is no route that changes or deletes an event.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collab_server.access import AccessAuthenticator, AccessStore, require_owner
from collab_server.api.http import ApiError, document_name, json_errors
from collab_server.audit import AuditRecorder
from collab_server.credentials import request_credentials

_MAX_PAGE = 500


def routes(
    authenticator: AccessAuthenticator, access: AccessStore, audit: AuditRecorder
) -> list[Route]:
    @json_errors
    async def list_events(request: Request) -> Response:
        document = document_name(request)
        caller = await authenticator.caller(request_credentials(request))
        await require_owner(
            access, caller, document, "only owners and admins may read the audit trail"
        )
        try:
            before = request.query_params.get("before")
            before_id = int(before) if before else None
            limit = min(int(request.query_params.get("limit", "100")), _MAX_PAGE)
        except ValueError:
            raise ApiError(400, "before and limit must be integers") from None
        await audit.flush()  # what this server recorded a moment ago is in the answer
        events = await audit.store.audit_events(document, before_id, max(limit, 1))
        return JSONResponse(
            {
                "document": document,
                "events": [e.to_json() for e in events],
                "next_before": events[-1].id if len(events) == limit else None,
            }
        )

    return [Route("/api/documents/{name:path}/audit", list_events, methods=["GET"])]
