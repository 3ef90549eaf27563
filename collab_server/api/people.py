"""People records: `GET` / `PUT /api/people/{user_id}`; a person reads and writes their own,
admins anyone's. A `PUT` replaces the record after validating every field (422 lists them).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collab_server.access import (
    AccessAuthenticator,
    AccessStore,
    Caller,
    InvalidRecord,
    person_from_json,
)
from collab_server.api.http import ApiError, json_body, json_errors, request_credentials
from collab_server.errors import Rejected
from collab_server.protocol import CloseCode


def _require_self_or_admin(caller: Caller, user_id: str) -> None:
    if not caller.is_admin and caller.user_id != user_id:
        raise Rejected(CloseCode.FORBIDDEN, "you may only read and change your own record")


def routes(authenticator: AccessAuthenticator, access: AccessStore) -> list[Route]:
    @json_errors
    async def get_person(request: Request) -> Response:
        user_id: str = request.path_params["user_id"]
        caller = await authenticator.caller(request_credentials(request))
        _require_self_or_admin(caller, user_id)
        person = await access.person(user_id)
        if person is None:
            raise ApiError(404, "no record for this person yet")
        return JSONResponse(person.to_json())

    @json_errors
    async def put_person(request: Request) -> Response:
        user_id: str = request.path_params["user_id"]
        caller = await authenticator.caller(request_credentials(request))
        _require_self_or_admin(caller, user_id)
        try:
            person = person_from_json(user_id, await json_body(request))
        except InvalidRecord as exc:
            raise ApiError(422, "invalid people record", exc.problems) from None
        await access.put_person(person)
        return JSONResponse(person.to_json())

    return [
        Route("/api/people/{user_id}", get_person, methods=["GET"]),
        Route("/api/people/{user_id}", put_person, methods=["PUT"]),
    ]
