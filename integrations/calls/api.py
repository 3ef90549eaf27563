"""Calls of a student: `/api/students/{id}/calls` (JSON, bearer token).

GET  /people                 members: who may be rung (the team and family but the caller)
POST {"invite": [user ids]}  members: start a call and ring them; {"call": id} (then join it
                             on `WS /calls`)
POST /{call}/decline         a person rung: say no (the caller hears of it, their tabs stop)

GET /api/calls/ringing: the caller's rings still sounding (a page opened after a ring).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collab_server.api.http import ApiError, document_name, json_body, json_errors
from collab_server.credentials import request_credentials
from collab_server.identity import CallerAuthenticator
from integrations.calls.records import TooManyCalls
from integrations.calls.service import BadCall, CallService, is_call_id


def call_routes(calls: CallService, authenticator: CallerAuthenticator) -> list[Route]:
    @json_errors
    async def people(request: Request) -> Response:
        caller = await authenticator.caller(request_credentials(request))
        student_id = document_name(request, "student_id")
        return JSONResponse({"people": await calls.people(caller, student_id)})

    @json_errors
    async def start(request: Request) -> Response:
        caller = await authenticator.caller(request_credentials(request))
        student_id = document_name(request, "student_id")
        body = await json_body(request)
        invite = body.get("invite") if isinstance(body, dict) else None
        if not isinstance(invite, list) or not all(isinstance(u, str) for u in invite):
            raise ApiError(422, "invalid call", {"invite": "a list of user ids"})
        try:
            call_id = await calls.ring(caller, student_id, invite)
        except BadCall as exc:
            raise ApiError(422, "invalid call", {exc.field: str(exc)}) from None
        except TooManyCalls as exc:
            raise ApiError(429, str(exc)) from None
        return JSONResponse({"call": call_id, "student_id": student_id}, status_code=201)

    @json_errors
    async def decline(request: Request) -> Response:
        caller = await authenticator.caller(request_credentials(request))
        student_id = document_name(request, "student_id")
        call_id = request.path_params["call_id"]
        if not is_call_id(call_id):
            raise ApiError(404, "no such call")
        await calls.decline(caller, student_id, call_id)
        return Response(status_code=204)

    @json_errors
    async def ringing(request: Request) -> Response:
        caller = await authenticator.caller(request_credentials(request))
        return JSONResponse({"rings": await calls.ringing(caller)})

    base = "/api/students/{student_id:path}/calls"
    return [
        Route("/api/calls/ringing", ringing, methods=["GET"]),
        Route(base + "/people", people, methods=["GET"]),
        Route(base + "/{call_id}/decline", decline, methods=["POST"]),
        Route(base, start, methods=["POST"]),
    ]
