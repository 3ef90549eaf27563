"""The HTTP API of the IEP as a record: history, versions, comparison, restore, export,
acknowledgements, for the editor and for other programs.

Who may do what: members read history and versions (viewers, i.e. parents, only the versions
sent to them); editors and owners name and restore versions; owners send a version to the
parents; the parent a request was sent to answers it. Admins may do everything but answer a
parent's request.
"""

from __future__ import annotations

import asyncio
import base64
import difflib
import re
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collab_server.access import AccessStore, NotAMember
from collab_server.api.http import ApiError, document_name, json_body, json_errors
from collab_server.audit import AuditAction, AuditEvent, AuditRecorder
from collab_server.credentials import request_credentials
from collab_server.identity import Caller, CallerAuthenticator, Role
from integrations.acknowledgement import (
    AcknowledgementService,
    AlreadyAnswered,
    NotTheRecipient,
)
from integrations.export import export_json, render_pdf
from integrations.history import HistoryReader
from integrations.iep_content import display, flatten, item_titles
from integrations.iep_schema import upgraded_state
from integrations.record_contracts import AckState, RecordStore, Version
from integrations.versions import MAX_NAME, MAX_NOTE, OpenedVersion, VersionService

CURRENT = "current"
_WORDS = re.compile(r"\s+|[^\s]+")
# A PDF takes a worker thread for about a second: a few at a time, the rest wait their turn.
_PDF_CONCURRENCY = 2


def _document(request: Request) -> str:
    return document_name(request)


def _address(request: Request) -> str | None:
    return request.client.host if request.client else None


def text_segments(before: str, after: str) -> list[dict[str, str]]:
    """Word-level differences: `equal`, `delete` and `insert` runs, in reading order."""
    old, new = _WORDS.findall(before), _WORDS.findall(after)
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    segments: list[dict[str, str]] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            segments.append({"op": "equal", "text": "".join(old[i1:i2])})
            continue
        if i2 > i1:
            segments.append({"op": "delete", "text": "".join(old[i1:i2])})
        if j2 > j1:
            segments.append({"op": "insert", "text": "".join(new[j1:j2])})
    return segments


def compare_contents(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """Every field of either side, in document order, with what changed inside it."""
    old, new = flatten(before), flatten(after)
    titles = {**item_titles(before), **item_titles(after)}
    order = list(new) + [p for p in old if p not in new]
    fields = []
    for path in order:
        a, b = old.get(path), new.get(path)
        parts = path.split("/")
        item = "/".join(parts[:2]) if len(parts) == 3 else None
        kind = "added" if a is None else "removed" if b is None else "same" if a == b else "edited"
        fields.append(
            {
                "path": path,
                "section": parts[0],
                "item": {"id": parts[1], "title": titles.get(item, "")} if item else None,
                "field": parts[-1],
                "kind": kind,
                "before": a,
                "after": b,
                "segments": text_segments(a or "", b or "") if kind != "same" else [],
            }
        )
    return fields


@dataclass
class RecordsApi:
    authenticator: CallerAuthenticator
    access: AccessStore
    records: RecordStore
    versions: VersionService
    history: HistoryReader
    acknowledgements: AcknowledgementService
    audit: AuditRecorder

    def __post_init__(self) -> None:
        self._pdf_slots = asyncio.Semaphore(_PDF_CONCURRENCY)

    # -- who may ------------------------------------------------------------------------

    async def _caller(self, request: Request) -> Caller:
        return await self.authenticator.caller(request_credentials(request))

    async def _role(self, caller: Caller, document: str) -> Role:
        if caller.is_admin:
            return Role.OWNER
        member = await self.access.member(document, caller.user_id)
        if member is None:
            raise NotAMember()
        return member.role

    async def _writer(self, caller: Caller, document: str, doing: str) -> Role:
        role = await self._role(caller, document)
        if not role.can_write:
            raise NotAMember(f"viewers may not {doing}")
        return role

    async def _visible_version(self, caller: Caller, document: str, version_id: str) -> None:
        """Viewers (parents) see the versions sent to them, and no other."""
        if (await self._role(caller, document)).can_write:
            return
        sent = await self.records.acknowledgements(document, version_id)
        if all(a.recipient_id != caller.user_id for a in sent):
            raise ApiError(404, "no such version")

    async def _open(self, caller: Caller, document: str, version_id: str) -> OpenedVersion:
        await self._visible_version(caller, document, version_id)
        opened = await self.versions.open(document, version_id)
        if opened is None:
            raise ApiError(404, "no such version")
        return opened

    def _event(
        self, request: Request, caller: Caller, document: str, action: AuditAction, **details: str
    ) -> AuditEvent:
        return AuditEvent(
            document, action, caller.user_id, None, _address(request), details=details
        )

    # -- history ------------------------------------------------------------------------

    async def get_history(self, request: Request) -> Response:
        document = _document(request)
        await self._role(await self._caller(request), document)
        try:
            before = request.query_params.get("before")
            limit = int(request.query_params.get("limit", "20"))
            before_seq = int(before) if before else None
        except ValueError:
            raise ApiError(400, "before and limit must be integers") from None
        page = await self.history.page(document, before_seq, limit)
        return JSONResponse(
            {
                "document": document,
                "sessions": page.sessions,
                "next_before": page.next_before,
                "complete": page.complete,
            }
        )

    async def get_field_editors(self, request: Request) -> Response:
        document = _document(request)
        await self._role(await self._caller(request), document)
        edits = await self.history.last_edits(document)
        return JSONResponse({"document": document, "fields": edits})

    # -- versions -----------------------------------------------------------------------

    async def list_versions(self, request: Request) -> Response:
        document = _document(request)
        caller = await self._caller(request)
        role = await self._role(caller, document)
        found = await self.records.versions(document)
        if not role.can_write:
            sent = {
                a.version_id
                for a in await self.records.acknowledgements(document, None)
                if a.recipient_id == caller.user_id
            }
            found = [v for v in found if v.id in sent]
        return JSONResponse({"document": document, "versions": [v.to_json() for v in found]})

    async def name_version(self, request: Request) -> Response:
        document = _document(request)
        caller = await self._caller(request)
        await self._writer(caller, document, "name versions")
        body = await json_body(request)
        if not isinstance(body, dict):
            raise ApiError(422, "invalid version", {"body": "must be a JSON object"})
        name, note = body.get("name"), body.get("note", "")
        problems = {}
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
            problems["name"] = f"required: 1-{MAX_NAME} characters"
        if not isinstance(note, str) or len(note) > MAX_NOTE:
            problems["note"] = f"at most {MAX_NOTE} characters"
        if problems:
            raise ApiError(422, "invalid version", problems)
        assert isinstance(name, str) and isinstance(note, str)
        author = await self.history.names(caller.user_id) or caller.user_id
        version = await self.versions.take(
            document,
            name=name.strip(),
            note=note.strip(),
            author_id=caller.user_id,
            author_name=author,
        )
        await self.audit.record_now(
            self._event(request, caller, document, AuditAction.VERSION_NAMED, version_id=version.id)
        )
        return JSONResponse(version.to_json(), status_code=201)

    async def get_version(self, request: Request) -> Response:
        document = _document(request)
        caller = await self._caller(request)
        opened = await self._open(caller, document, request.path_params["version_id"])
        await self.audit.record_now(
            self._event(
                request, caller, document, AuditAction.VERSION_VIEWED, version_id=opened.version.id
            )
        )
        return JSONResponse({**opened.version.to_json(), "content": opened.content})

    async def restore_version(self, request: Request) -> Response:
        """The version's state, for the caller's editor to apply as its own change."""
        document = _document(request)
        caller = await self._caller(request)
        await self._writer(caller, document, "restore versions")
        opened = await self._open(caller, document, request.path_params["version_id"])
        body = await json_body(request) if await request.body() else {}
        scope = body.get("path", "") if isinstance(body, dict) else ""
        await self.audit.record_now(
            self._event(
                request,
                caller,
                document,
                AuditAction.VERSION_RESTORED,
                version_id=opened.version.id,
                path=str(scope)[:300],
            )
        )
        return JSONResponse(
            {
                **opened.version.to_json(),
                # Exactly as taken (its hash is the record's), and in today's schema, which
                # is what the editor restores into today's document.
                "state": base64.b64encode(opened.state).decode(),
                "restore_state": base64.b64encode(upgraded_state(opened.state)).decode(),
                "content": opened.content,
            }
        )

    async def export(self, request: Request) -> Response:
        document = _document(request)
        caller = await self._caller(request)
        opened = await self._open(caller, document, request.path_params["version_id"])
        kind = request.path_params["format"]
        await self.audit.record_now(
            self._event(
                request,
                caller,
                document,
                AuditAction.VERSION_EXPORTED,
                version_id=opened.version.id,
                format=kind,
            )
        )
        filename = _filename(opened.version, kind)
        disposition = {"content-disposition": f'attachment; filename="{filename}"'}
        if kind == "json":
            return JSONResponse(export_json(opened.content, opened.version), headers=disposition)
        async with self._pdf_slots:
            pdf = await asyncio.to_thread(
                render_pdf, opened.content, opened.version, document=document
            )
        return Response(pdf, media_type="application/pdf", headers=disposition)

    async def compare(self, request: Request) -> Response:
        document = _document(request)
        caller = await self._caller(request)
        sides: list[dict[str, Any]] = []
        described: list[dict[str, Any]] = []
        for key in ("from", "to"):
            wanted = request.query_params.get(key, CURRENT)
            if wanted == CURRENT:
                await self._writer(caller, document, "compare with the live document")
                seq, data = await self.versions.current(document)
                sides.append(data)
                described.append({"id": CURRENT, "seq": seq})
            else:
                opened = await self._open(caller, document, wanted)
                sides.append(opened.content)
                described.append(opened.version.to_json())
        fields = await asyncio.to_thread(compare_contents, sides[0], sides[1])
        return JSONResponse(
            {"document": document, "from": described[0], "to": described[1], "fields": fields}
        )

    # -- acknowledgements ---------------------------------------------------------------

    async def send_for_acknowledgement(self, request: Request) -> Response:
        document = _document(request)
        caller = await self._caller(request)
        role = await self._role(caller, document)
        if role is not Role.OWNER:
            raise NotAMember("only owners send a version to the parents")
        opened = await self._open(caller, document, request.path_params["version_id"])
        meta = opened.content.get("meta")
        title = display(meta.get("title")) if isinstance(meta, dict) else ""
        made = await self.acknowledgements.send(
            opened.version, title, requested_by=caller.user_id, address=_address(request)
        )
        return JSONResponse(
            {"version_id": opened.version.id, "requested": [a.to_json() for a in made]},
            status_code=201 if made else 200,
        )

    async def acknowledgement_status(self, request: Request) -> Response:
        document = _document(request)
        caller = await self._caller(request)
        await self._writer(caller, document, "read the parents' answers")
        found = await self.records.acknowledgements(
            document, request.query_params.get("version") or None
        )
        rows = []
        for ack in found:
            row = ack.to_json()
            row["recipient_name"] = await self.history.names(ack.recipient_id)
            entry = await self.acknowledgements.outbox_entry(f"ack:{ack.id}:0")
            row["delivery"] = (
                {
                    "state": entry.state.value,
                    "channel": entry.channel.value if entry.channel else None,
                    "status": entry.delivery_status,
                }
                if entry
                else None
            )
            rows.append(row)
        return JSONResponse({"document": document, "acknowledgements": rows})

    async def get_acknowledgement(self, request: Request) -> Response:
        caller = await self._caller(request)
        ack = await self.records.acknowledgement(request.path_params["ack_id"])
        if ack is None:
            raise ApiError(404, "no such request")
        if caller.user_id != ack.recipient_id:
            await self._writer(caller, ack.document, "read another person's request")
        opened = await self.versions.open(ack.document, ack.version_id)
        if opened is None:
            raise ApiError(404, "no such version")
        await self.audit.record_now(
            self._event(
                request,
                caller,
                ack.document,
                AuditAction.VERSION_VIEWED,
                version_id=ack.version_id,
                ack_id=ack.id,
            )
        )
        return JSONResponse(
            {
                **ack.to_json(),
                "version": opened.version.to_json(),
                "content": opened.content,
                "mine": caller.user_id == ack.recipient_id,
            }
        )

    async def answer_acknowledgement(self, request: Request) -> Response:
        caller = await self._caller(request)
        ack = await self.records.acknowledgement(request.path_params["ack_id"])
        if ack is None:
            raise ApiError(404, "no such request")
        body = await json_body(request)
        answer = body.get("answer") if isinstance(body, dict) else None
        comment = body.get("comment") if isinstance(body, dict) else None
        if answer not in (AckState.ACKNOWLEDGED.value, AckState.QUESTION.value):
            raise ApiError(422, "invalid answer", {"answer": "'acknowledged' or 'question'"})
        if comment is not None and not isinstance(comment, str):
            raise ApiError(422, "invalid answer", {"comment": "must be text"})
        if answer == AckState.QUESTION.value and not (comment or "").strip():
            raise ApiError(422, "invalid answer", {"comment": "say what your question is"})
        opened = await self.versions.open(ack.document, ack.version_id)
        if opened is None:
            raise ApiError(404, "no such version")
        try:
            answered = await self.acknowledgements.answer(
                ack,
                user_id=caller.user_id,
                state=AckState(answer),
                comment=comment,
                version=opened.version,
                address=_address(request),
            )
        except NotTheRecipient:
            raise ApiError(403, "only the parent this was sent to may answer it") from None
        except AlreadyAnswered:
            raise ApiError(409, "this request was already answered") from None
        return JSONResponse(answered.to_json())

    def routes(self) -> list[Route]:
        doc = "/api/documents/{name:path}"
        version = doc + "/versions/{version_id}"
        return [
            Route(doc + "/history", json_errors(self.get_history), methods=["GET"]),
            Route(doc + "/history/fields", json_errors(self.get_field_editors), methods=["GET"]),
            Route(doc + "/versions", json_errors(self.list_versions), methods=["GET"]),
            Route(doc + "/versions", json_errors(self.name_version), methods=["POST"]),
            Route(doc + "/compare", json_errors(self.compare), methods=["GET"]),
            Route(
                doc + "/acknowledgements", json_errors(self.acknowledgement_status), methods=["GET"]
            ),
            Route(version, json_errors(self.get_version), methods=["GET"]),
            Route(version + "/restore", json_errors(self.restore_version), methods=["POST"]),
            Route(
                version + "/export.{format:str}", json_errors(self.export_checked), methods=["GET"]
            ),
            Route(
                version + "/acknowledgements",
                json_errors(self.send_for_acknowledgement),
                methods=["POST"],
            ),
            Route(
                "/api/acknowledgements/{ack_id}",
                json_errors(self.get_acknowledgement),
                methods=["GET"],
            ),
            Route(
                "/api/acknowledgements/{ack_id}",
                json_errors(self.answer_acknowledgement),
                methods=["POST"],
            ),
        ]

    async def export_checked(self, request: Request) -> Response:
        if request.path_params["format"] not in ("pdf", "json"):
            return JSONResponse({"error": "export as .pdf or .json"}, status_code=404)
        return await self.export(request)


def _filename(version: Version, kind: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", version.document).strip("-") or "iep"
    return f"{safe}-{version.id[:8]}.{kind}"
