"""The thread of a student: `/api/students/{id}/thread` (JSON, bearer token).

GET  ?before=ID        members: 50 messages, newest first, each reader's read marker, and
                       for the team's messages each parent's delivery state
POST {"body": "..."}   members: write (the family's reply or the team's message)
POST /read {"through": ID}  members: mark read up to a message (live for the others)
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collab_server.api.http import (
    ApiError,
    checked_document_name,
    document_name,
    json_body,
    json_errors,
)
from collab_server.credentials import request_credentials
from collab_server.identity import CallerAuthenticator
from integrations.contracts import NotificationStore
from integrations.threads.service import BadMessage, ThreadService, TooManyMessages

THREAD_KEY = "thread:"
UPLOADS = "/api/uploads/thread-media"
# The upload's body is the file: its own cap (the API's default is 64 KiB).
UPLOAD_BODY_LIMITS = {"/api/uploads/": 16 * 1024 * 1024 + 1024}


def thread_routes(
    threads: ThreadService, authenticator: CallerAuthenticator, outbox: NotificationStore
) -> list[Route]:
    def student(request: Request) -> str:
        return document_name(request, "student_id")

    @json_errors
    async def read_thread(request: Request) -> Response:
        caller = await authenticator.caller(request_credentials(request))
        student_id = student(request)
        before = request.query_params.get("before")
        if before is not None and not before.isdigit():
            raise ApiError(400, "before must be a message id")
        messages, reads, readers = await threads.page(
            caller, student_id, int(before) if before else None
        )
        deliveries = await _deliveries(outbox, student_id)
        return JSONResponse(
            {
                "student_id": student_id,
                "messages": [
                    {**m.to_json(), "deliveries": deliveries.get(m.id, [])} for m in messages
                ],
                "reads": reads,
                "readers": readers,
            }
        )

    @json_errors
    async def write(request: Request) -> Response:
        caller = await authenticator.caller(request_credentials(request))
        student_id = student(request)
        body = await json_body(request)
        text = body.get("body") if isinstance(body, dict) else None
        attachment = body.get("attachment") if isinstance(body, dict) else None
        if not isinstance(text, str):
            raise ApiError(422, "invalid message", {"body": "required: the message's text"})
        if attachment is not None and (
            not isinstance(attachment, int) or isinstance(attachment, bool)
        ):
            raise ApiError(422, "invalid message", {"attachment": "an uploaded file's id"})
        try:
            message = await threads.post(caller, student_id, text, attachment)
        except BadMessage as exc:
            raise ApiError(422, "invalid message", {exc.field: str(exc)}) from None
        except TooManyMessages as exc:
            raise ApiError(429, str(exc)) from None
        return JSONResponse(message.to_json(), status_code=201)

    @json_errors
    async def mark_read(request: Request) -> Response:
        caller = await authenticator.caller(request_credentials(request))
        student_id = student(request)
        body = await json_body(request)
        through = body.get("through") if isinstance(body, dict) else None
        if not isinstance(through, int) or isinstance(through, bool) or through < 1:
            raise ApiError(422, "invalid marker", {"through": "required: a message id"})
        await threads.mark_read(caller, student_id, through)
        return Response(status_code=204)

    @json_errors
    async def attachment(request: Request) -> Response:
        caller = await authenticator.caller(request_credentials(request))
        student_id = student(request)
        media_id = request.path_params["media_id"]
        found = await threads.attachment(caller, student_id, media_id)
        if found is None:
            raise ApiError(404, "no such file in this thread")
        mime, data = found
        # Never rendered as our page: the browser gets it as the file it is, in a sandbox.
        disposition = "inline" if mime.startswith(("image/", "audio/")) else "attachment"
        headers = {
            "content-disposition": f'{disposition}; filename="attachment-{media_id}"',
            "x-content-type-options": "nosniff",
            "content-security-policy": "sandbox",
            "cache-control": "private, max-age=3600",
        }
        return Response(data, media_type=mime, headers=headers)

    @json_errors
    async def upload(request: Request) -> Response:
        """The file is the body (its type in Content-Type): `?student=ID`."""
        caller = await authenticator.caller(request_credentials(request))
        student_id = checked_document_name(request.query_params.get("student", ""))
        mime = request.headers.get("content-type", "")
        try:
            media_id = await threads.upload(caller, student_id, mime, await request.body())
        except BadMessage as exc:
            raise ApiError(422, "invalid file", {exc.field: str(exc)}) from None
        return JSONResponse({"id": media_id, "mime": mime.split(";")[0].strip()}, status_code=201)

    base = "/api/students/{student_id:path}/thread"
    return [
        Route(UPLOADS, upload, methods=["POST"]),
        Route(base + "/media/{media_id:int}", attachment, methods=["GET"]),
        Route(base, read_thread, methods=["GET"]),
        Route(base, write, methods=["POST"]),
        Route(base + "/read", mark_read, methods=["POST"]),
    ]


async def _deliveries(outbox: NotificationStore, student_id: str) -> dict[int, list[Any]]:
    """Per team message, each parent's delivery: the channel and how far it got."""
    found: dict[int, list[Any]] = {}
    for entry in await outbox.entries(student_id):
        if not entry.key.startswith(THREAD_KEY):
            continue
        message_id = entry.key.split(":")[1]
        if not message_id.isdigit():
            continue
        found.setdefault(int(message_id), []).append(
            {
                "recipient_id": entry.recipient_id,
                "channel": entry.channel.value if entry.channel else None,
                "state": entry.state.value,
                "delivery_status": entry.delivery_status,
                "error": entry.last_error,
            }
        )
    return found
