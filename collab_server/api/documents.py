"""`GET /api/documents`: the documents the caller may open, with their role, student, title
and last change (`?archived=true`: the archived ones instead).
`POST /api/documents`: a new IEP, named by the server and owned by its creator.
`PUT /api/documents/{name}/archived`: owners hide an IEP from the list or bring it back.

A new IEP's name never comes from the student's name: a name built from the letters of an
Arabic name kept none of them, so every Arabic-named child's IEP opened the same record.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pycrdt import Doc
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collab_server.access import (
    AccessAuthenticator,
    AccessStore,
    DisplayNames,
    DocumentAccess,
    Listing,
    NotAMember,
    require_owner,
)
from collab_server.api.http import ApiError, document_name, json_body, json_errors
from collab_server.audit import AuditAction, AuditEvent, AuditRecorder
from collab_server.credentials import request_credentials
from collab_server.identity import Caller, ServerOrigin
from collab_server.plain_text import has_control_characters

_MAX_TEXT = 200
_NAME_ATTEMPTS = 5
_LANGUAGES = ("ar", "en")
CREATED_ORIGIN = ServerOrigin("created")


@dataclass(frozen=True, slots=True)
class NewIep:
    student_name: str
    title: str = ""
    language: str | None = None


# Writes a new document's first content (in one transaction); the application's schema.
FirstContent = Callable[[Doc[Any], NewIep], bool]
# Describes documents the list has no listing for yet (the application reads them).
FillListings = Callable[[Sequence[str]], Awaitable[dict[str, Listing]]]


@dataclass(frozen=True)
class CreationPolicy:
    """Who may create IEPs (admins always; tokens with one of `creator_roles` as their
    `app_metadata.role`; anyone in development mode) and how they are named."""

    creator_roles: frozenset[str]
    prefix: str
    development: bool = False
    first_content: FirstContent | None = None

    @classmethod
    def from_roles(
        cls,
        roles: str,
        prefix: str,
        *,
        development: bool,
        first_content: FirstContent | None = None,
    ) -> CreationPolicy:
        chosen = frozenset(r.strip() for r in roles.split(",") if r.strip())
        return cls(chosen, prefix, development, first_content)

    def may_create(self, caller: Caller) -> bool:
        return self.development or caller.is_admin or caller.app_role in self.creator_roles

    def new_name(self) -> str:
        return f"{self.prefix}/iep-{secrets.token_hex(6)}"


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).isoformat().replace("+00:00", "Z")


def _text_field(body: dict[str, object], field: str, problems: dict[str, str]) -> str:
    value = body.get(field, "")
    if not isinstance(value, str) or len(value.strip()) > _MAX_TEXT:
        problems[field] = f"must be a string of at most {_MAX_TEXT} characters"
        return ""
    if has_control_characters(value):
        problems[field] = "may not contain control characters"
        return ""
    return value.strip()


def routes(
    authenticator: AccessAuthenticator,
    access: AccessStore,
    creation: CreationPolicy,
    audit: AuditRecorder | None = None,
    *,
    names: DisplayNames | None = None,
    fill_listings: FillListings | None = None,
) -> list[Route]:
    async def audited(request: Request, caller: Caller, document: str, action: AuditAction) -> None:
        if audit is not None:
            address = request.client.host if request.client else None
            await audit.record_now(AuditEvent(document, action, caller.user_id, None, address))

    async def listed(found: list[DocumentAccess]) -> list[dict[str, Any]]:
        missing = [d.name for d in found if d.listing is None]
        filled = await fill_listings(missing) if missing and fill_listings is not None else {}
        people: dict[str, str | None] = {}
        entries: list[dict[str, Any]] = []
        for d in found:
            listing = d.listing or filled.get(d.name)
            last_user = listing.last_user_id if listing is not None else None
            if last_user is not None and last_user not in people and names is not None:
                people[last_user] = await names.display_name(last_user)
            entries.append(
                {
                    "name": d.name,
                    "role": d.role.value,
                    "updated_at": _iso(d.updated_at),
                    "student_name": listing.student_name if listing is not None else None,
                    "title": listing.title if listing is not None else None,
                    "last_editor": (
                        {"user_id": last_user, "name": people.get(last_user)}
                        if last_user is not None
                        else None
                    ),
                    "archived": d.archived,
                }
            )
        return entries

    @json_errors
    async def list_documents(request: Request) -> Response:
        caller = await authenticator.caller(request_credentials(request))
        archived = request.query_params.get("archived", "false")
        if archived not in ("true", "false"):
            raise ApiError(400, "archived must be true or false")
        found = await access.documents_for(None if caller.is_admin else caller.user_id)
        shown = [d for d in found if d.archived == (archived == "true")]
        return JSONResponse(
            {"documents": await listed(shown), "may_create": creation.may_create(caller)}
        )

    @json_errors
    async def set_archived(request: Request) -> Response:
        document = document_name(request)
        caller = await authenticator.caller(request_credentials(request))
        await require_owner(access, caller, document, "only owners and admins may archive an IEP")
        body = await json_body(request)
        archived = body.get("archived") if isinstance(body, dict) else None
        if not isinstance(archived, bool):
            raise ApiError(422, "invalid request", {"archived": "must be true or false"})
        await access.archive(document, caller.user_id if archived else None)
        action = AuditAction.DOCUMENT_ARCHIVED if archived else AuditAction.DOCUMENT_UNARCHIVED
        await audited(request, caller, document, action)
        return JSONResponse({"name": document, "archived": archived})

    @json_errors
    async def create_document(request: Request) -> Response:
        caller = await authenticator.caller(request_credentials(request))
        if not creation.may_create(caller):
            raise NotAMember("only staff and admins may create IEPs")
        body = await json_body(request)
        if not isinstance(body, dict):
            raise ApiError(422, "invalid IEP", {"body": "must be a JSON object"})
        known = {"student_name", "title", "language"}
        problems = {unknown: "unknown field" for unknown in set(body) - known}
        student_name = _text_field(body, "student_name", problems)
        title = _text_field(body, "title", problems)
        language = body.get("language")
        if language is not None and language not in _LANGUAGES:
            problems["language"] = "must be one of: " + ", ".join(_LANGUAGES)
        if not student_name and "student_name" not in problems:
            problems["student_name"] = "required"
        if problems:
            raise ApiError(422, "invalid IEP", problems)
        for _ in range(_NAME_ATTEMPTS):
            name = creation.new_name()
            # Claimed only if nobody is a member yet: creating never opens an existing IEP.
            if await access.claim_document(name, caller.user_id):
                break
        else:
            raise ApiError(503, "could not name a new IEP; try again")
        write = creation.first_content
        if write is not None:
            # Written by the server, once: no two first openers race to create it.
            new = NewIep(student_name, title, language if isinstance(language, str) else None)
            async with request.app.state.collab.registry.using(name) as live:
                live.change(lambda doc: write(doc, new), CREATED_ORIGIN)
                await live.wait_durable()  # 201 means the new IEP is stored
        await access.describe(name, Listing(student_name, title, caller.user_id))
        await audited(request, caller, name, AuditAction.DOCUMENT_CREATED)
        return JSONResponse(
            {"name": name, "student_name": student_name, "title": title, "role": "owner"},
            status_code=201,
        )

    return [
        Route("/api/documents", list_documents, methods=["GET"]),
        Route("/api/documents", create_document, methods=["POST"]),
        Route("/api/documents/{name:path}/archived", set_archived, methods=["PUT"]),
    ]
