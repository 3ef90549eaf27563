"""`POST /api/people/invitations`: the person behind an e-mail address, so an owner can share an
IEP with them from the page (which then adds the member through the members API).

The person is looked up in Supabase Auth with the admin API (`supabase-auth`, the `supabase`
client's auth part, with the service-role key); someone without an account is invited, which
sends them Supabase's invitation e-mail. Either way they get a people record (name, e-mail,
language) if they had none, so the Share dialog, history and digests can name them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collab_server.api.http import ApiError, json_body, json_errors
from collab_server.credentials import request_credentials
from collab_server.errors import Rejected
from collab_server.identity import Caller, CallerAuthenticator
from collab_server.plain_text import has_control_characters
from collab_server.protocol import CloseCode
from integrations.contracts import Language, PeopleStore, Person

log = structlog.get_logger("collab.integrations.invitations")

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_MAX_EMAIL = 254
# A centre has hundreds of accounts; the admin API lists them a page at a time.
_PER_PAGE = 1000
_MAX_PAGES = 50


@dataclass(frozen=True, slots=True)
class AccountHolder:
    user_id: str
    name: str
    email: str
    invited: bool  # True: no account before; Supabase sent them an invitation


class Accounts(Protocol):
    async def find_or_invite(self, email: str) -> AccountHolder: ...


class AccountsUnavailable(Exception):
    """The sign-in service refused or did not answer."""


def _name_of(metadata: dict[str, Any] | None, email: str) -> str:
    full_name = (metadata or {}).get("full_name")
    if isinstance(full_name, str) and full_name.strip() and not has_control_characters(full_name):
        return full_name.strip()
    return email.split("@", 1)[0]


class SupabaseAccounts:
    def __init__(self, supabase_url: str, service_key: str) -> None:
        # Imported here: it loads the token libraries, which a development server does without.
        from supabase_auth import AsyncGoTrueAdminAPI

        headers = {"apikey": service_key, "Authorization": f"Bearer {service_key}"}
        self.admin = AsyncGoTrueAdminAPI(url=supabase_url.rstrip("/") + "/auth/v1", headers=headers)

    async def find_or_invite(self, email: str) -> AccountHolder:
        from supabase_auth.errors import AuthError

        wanted = email.casefold()
        try:
            for page in range(1, _MAX_PAGES + 1):
                users = await self.admin.list_users(page=page, per_page=_PER_PAGE)
                for user in users:
                    if (user.email or "").casefold() == wanted:
                        name = _name_of(user.user_metadata, email)
                        return AccountHolder(user.id, name, user.email or email, invited=False)
                if len(users) < _PER_PAGE:
                    break
            invited = (await self.admin.invite_user_by_email(email)).user
        except AuthError as exc:
            log.warning("auth_admin_failed", status=getattr(exc, "status", None))
            raise AccountsUnavailable(str(exc)) from exc
        if invited is None:
            raise AccountsUnavailable("the invitation returned no user")
        return AccountHolder(invited.id, _name_of(invited.user_metadata, email), email, True)


def invitation_routes(
    authenticator: CallerAuthenticator,
    accounts: Accounts,
    people: PeopleStore,
    may_invite: Callable[[Caller], bool],
) -> list[Route]:
    @json_errors
    async def invite(request: Request) -> Response:
        caller = await authenticator.caller(request_credentials(request))
        if not may_invite(caller):
            raise Rejected(CloseCode.FORBIDDEN, "only staff and admins may invite people")
        body = await json_body(request)
        email = body.get("email") if isinstance(body, dict) else None
        language = body.get("language", "ar") if isinstance(body, dict) else None
        problems = {}
        if (
            not isinstance(email, str)
            or len(email) > _MAX_EMAIL
            or not _EMAIL.match(email)
            or has_control_characters(email)
        ):
            problems["email"] = "must be an e-mail address"
        if language not in ("ar", "en"):
            problems["language"] = "must be 'ar' or 'en'"
        if problems:
            raise ApiError(422, "invalid invitation", problems)
        assert isinstance(email, str) and isinstance(language, str)
        try:
            holder = await accounts.find_or_invite(email.strip())
        except AccountsUnavailable:
            raise ApiError(502, "the sign-in service did not answer; try again") from None
        if await people.person(holder.user_id) is None:
            await people.put_person(
                Person(holder.user_id, holder.name, Language(language), email=holder.email)
            )
        log.info("person_invited" if holder.invited else "person_found", user=holder.user_id)
        return JSONResponse(
            {
                "user_id": holder.user_id,
                "name": holder.name,
                "email": holder.email,
                "invited": holder.invited,
            },
            status_code=201 if holder.invited else 200,
        )

    return [Route("/api/people/invitations", invite, methods=["POST"])]
