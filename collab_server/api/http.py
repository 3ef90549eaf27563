"""What every API router shares: the caller's credentials, JSON bodies, error responses.

Errors are JSON: `{"error": "..."}`, plus `"problems": {field: message}` for a 422.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from collab_server.errors import InvalidDocumentName, Rejected
from collab_server.names import validate_document_name
from collab_server.plain_text import json_holds_nul
from collab_server.protocol import CloseCode

log = structlog.get_logger("collab.api")

Handler = Callable[[Request], Awaitable[Response]]

_STATUS_OF_CLOSE_CODE: dict[int, int] = {
    CloseCode.UNAUTHORIZED: 401,
    CloseCode.FORBIDDEN: 403,
    CloseCode.RATE_LIMITED: 429,
    CloseCode.BAD_REQUEST: 400,
}


class ApiError(Exception):
    def __init__(self, status: int, message: str, problems: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.problems = problems


async def json_body(request: Request) -> Any:
    raw = await request.body()  # capped before it is read (collab_server.body_limit)
    if json_holds_nul(raw):
        raise ApiError(422, "text may not contain NUL characters")
    try:
        return json.loads(raw)
    except ValueError:
        raise ApiError(400, "request body must be JSON") from None


def json_errors(handler: Handler) -> Handler:
    """Turn refusals and API errors into JSON responses with the right status."""

    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except Rejected as exc:
            status = _STATUS_OF_CLOSE_CODE.get(exc.code, 403)
            headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
            log.info("api_refused", path=request.url.path, status=status, reason=exc.reason)
            return JSONResponse({"error": exc.reason}, status_code=status, headers=headers)
        except ApiError as exc:
            body: dict[str, Any] = {"error": exc.message}
            if exc.problems:
                body["problems"] = exc.problems
            return JSONResponse(body, status_code=exc.status)

    return wrapped


def document_name(request: Request, param: str = "name") -> str:
    """The document named by the path's `{param}`, checked as every document name is."""
    return checked_document_name(request.path_params[param])


def checked_document_name(value: str) -> str:
    """A document name from a request (path or query), or 400 saying what is wrong."""
    try:
        return validate_document_name(value)
    except InvalidDocumentName as exc:
        raise ApiError(400, str(exc)) from None
