"""`GET /api/documents`: the documents the caller may open, with their role."""

from __future__ import annotations

import datetime as dt

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collab_server.access import AccessAuthenticator, AccessStore
from collab_server.api.http import json_errors
from collab_server.credentials import request_credentials


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).isoformat().replace("+00:00", "Z")


def routes(authenticator: AccessAuthenticator, access: AccessStore) -> list[Route]:
    @json_errors
    async def list_documents(request: Request) -> Response:
        caller = await authenticator.caller(request_credentials(request))
        found = await access.documents_for(None if caller.is_admin else caller.user_id)
        return JSONResponse(
            {
                "documents": [
                    {"name": d.name, "role": d.role.value, "updated_at": _iso(d.updated_at)}
                    for d in found
                ]
            }
        )

    return [Route("/api/documents", list_documents, methods=["GET"])]
