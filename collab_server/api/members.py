"""Members of a document: `GET /api/documents/{name}/members`, `PUT` / `DELETE` one member.

Members may read the list; owners and admins change it. A document is created by the `PUT`
of its first member, which only an admin may do. The last owner cannot be removed or
demoted, so every document keeps someone who can manage it. Changes reach live connections
at once (closed with 4403 when revoked, downgraded in place when the role changes).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collab_server.access import (
    AccessAuthenticator,
    AccessStore,
    DisplayNames,
    LastOwner,
    Member,
    MembershipEnforcer,
    NotAMember,
)
from collab_server.api.http import ApiError, document_name, json_body, json_errors
from collab_server.audit import AuditAction, AuditEvent, AuditRecorder
from collab_server.credentials import request_credentials
from collab_server.identity import Caller, Role
from collab_server.plain_text import has_control_characters

_MAX_USER_ID = 255


def _user_id(request: Request) -> str:
    user_id: str = request.path_params["user_id"]
    if (
        not user_id
        or len(user_id) > _MAX_USER_ID
        or any(c.isspace() for c in user_id)
        or has_control_characters(user_id)
    ):
        raise ApiError(400, "user id must be 1-255 characters without spaces or control characters")
    return user_id


def _member_from_json(document: str, user_id: str, body: object) -> Member:
    if not isinstance(body, dict):
        raise ApiError(422, "invalid member", {"body": "must be a JSON object"})
    problems: dict[str, str] = {}
    for unknown in sorted(set(body) - {"role", "digest"}):
        problems[unknown] = "unknown field"
    role = body.get("role")
    if role not in Role._value2member_map_:
        problems["role"] = "required: 'owner', 'editor' or 'viewer'"
    digest = body.get("digest", False)
    if not isinstance(digest, bool):
        problems["digest"] = "must be true or false"
    if problems:
        raise ApiError(422, "invalid member", problems)
    return Member(document, user_id, Role(str(role)), digest)


def routes(
    authenticator: AccessAuthenticator,
    access: AccessStore,
    enforcer: MembershipEnforcer | None,
    audit: AuditRecorder | None = None,
    names: DisplayNames | None = None,
) -> list[Route]:
    async def audited(
        request: Request, caller: Caller, document: str, action: AuditAction, **details: str
    ) -> None:
        if audit is not None:
            address = request.client.host if request.client else None
            await audit.record_now(
                AuditEvent(document, action, caller.user_id, None, address, details=details)
            )

    async def require_manager(caller: Caller, document: str) -> list[Member]:
        """The current members, if the caller may change them (owner or admin)."""
        current = await access.members(document)
        if caller.is_admin:
            return current
        mine = next((m for m in current if m.user_id == caller.user_id), None)
        if mine is None:
            raise NotAMember()
        if mine.role is not Role.OWNER:
            raise NotAMember("only owners and admins may change members")
        return current

    @json_errors
    async def list_members(request: Request) -> Response:
        document = document_name(request)
        caller = await authenticator.caller(request_credentials(request))
        current = await access.members(document)
        if not caller.is_admin and all(m.user_id != caller.user_id for m in current):
            raise NotAMember()
        listed = [m.to_json() for m in current]
        if names is not None:  # the Share dialog shows people, not ids
            for entry in listed:
                entry["name"] = await names.display_name(entry["user_id"])
        return JSONResponse({"document": document, "members": listed})

    @json_errors
    async def put_member(request: Request) -> Response:
        document = document_name(request)
        user_id = _user_id(request)
        caller = await authenticator.caller(request_credentials(request))
        await require_manager(caller, document)
        member = _member_from_json(document, user_id, await json_body(request))
        try:
            created = await access.put_member(member)
        except LastOwner as exc:
            raise ApiError(409, str(exc)) from None
        if enforcer is not None:
            enforcer.apply(document, user_id, member.role)
        action = AuditAction.MEMBER_ADDED if created else AuditAction.MEMBER_CHANGED
        await audited(
            request,
            caller,
            document,
            action,
            user_id=user_id,
            role=member.role.value,
            digest=str(member.digest).lower(),
        )
        return JSONResponse(member.to_json(), status_code=201 if created else 200)

    @json_errors
    async def delete_member(request: Request) -> Response:
        document = document_name(request)
        user_id = _user_id(request)
        caller = await authenticator.caller(request_credentials(request))
        await require_manager(caller, document)
        try:
            removed = await access.remove_member(document, user_id)
        except LastOwner as exc:
            raise ApiError(409, str(exc)) from None
        if not removed:
            raise ApiError(404, "not a member of this document")
        if enforcer is not None:
            enforcer.apply(document, user_id, None)
        await audited(request, caller, document, AuditAction.MEMBER_REMOVED, user_id=user_id)
        return Response(status_code=204)

    return [
        Route("/api/documents/{name:path}/members", list_members, methods=["GET"]),
        Route(
            "/api/documents/{name:path}/members/{user_id}",
            put_member,
            methods=["PUT"],
        ),
        Route(
            "/api/documents/{name:path}/members/{user_id}",
            delete_member,
            methods=["DELETE"],
        ),
    ]
