"""Who may open which document: members with roles, and the authenticator.

`AccessStore` is the persistence interface (SQLite and Postgres implementations live in
`persistence/`, beside the documents). `AccessAuthenticator` combines token verification and
membership into the `Identity` of a connection; `MembershipEnforcer` keeps live connections
honest when a membership is revoked or downgraded (at once through our API, and by a periodic
recheck for changes made directly in the database).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from collab_server.connection import Connection
from collab_server.errors import CollabError, Rejected
from collab_server.hooks import ConnectPayload, Extension
from collab_server.identity import (
    DEV_USER_PREFIX,
    Caller,
    Credentials,
    Identity,
    Role,
    anonymous_identity,
)
from collab_server.protocol import CloseCode

if TYPE_CHECKING:  # PyJWT and cryptography (~9 MB) load only when sign-in is configured
    from collab_server.auth import TokenVerifier, VerifiedToken
    from collab_server.registry import Registry

log = structlog.get_logger("collab.access")


# -- records ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Member:
    document: str
    user_id: str
    role: Role
    digest: bool = False  # this person receives change digests of the document

    def to_json(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "role": self.role.value, "digest": self.digest}


@dataclass(frozen=True, slots=True)
class DocumentAccess:
    """A document someone may open, with their effective role."""

    name: str
    role: Role
    updated_at: float | None  # epoch seconds of the last stored change; None: nothing stored
    listing: Listing | None = None  # None: not described yet
    archived: bool = False


@dataclass(frozen=True, slots=True)
class Listing:
    """What the documents list shows of an IEP, written when it changes (not per edit): the
    student's name, its title, and the last person who changed it."""

    student_name: str
    title: str
    last_user_id: str | None = None


# -- the store interface ----------------------------------------------------------------------


class AccessStore(Protocol):
    """Members and people, stored beside the documents (opened and migrated by the store)."""

    async def member(self, document: str, user_id: str) -> Member | None: ...

    async def members(self, document: str) -> list[Member]: ...

    async def memberships_of(self, user_ids: Collection[str]) -> list[Member]:
        """Every membership of these users (one query for the periodic recheck)."""

    async def put_member(self, member: Member) -> bool:
        """Insert or replace; True when the person was not a member before."""

    async def remove_member(self, document: str, user_id: str) -> bool:
        """True when there was a membership to remove."""

    async def claim_document(self, document: str, user_id: str) -> bool:
        """Make `user_id` the owner if the document has no members yet; True if it did."""

    async def documents_for(self, user_id: str | None) -> list[DocumentAccess]:
        """Documents `user_id` is a member of; None: every document (for admins)."""

    async def describe(self, document: str, listing: Listing) -> None:
        """Store what the list shows; a `last_user_id` of None keeps the stored one."""

    async def archive(self, document: str, by: str | None) -> None:
        """Hide the document from the list (`by`: who archived it); None brings it back."""


class DisplayNames(Protocol):
    """The name to show for a verified user (from the people records), if one is known."""

    async def display_name(self, user_id: str) -> str | None: ...


class MemoryAccessStore:
    """In-process AccessStore for `memory://` stores and development runs."""

    def __init__(self) -> None:
        self._members: dict[tuple[str, str], Member] = {}
        self._listings: dict[str, Listing] = {}
        self._archived: set[str] = set()

    async def member(self, document: str, user_id: str) -> Member | None:
        return self._members.get((document, user_id))

    async def members(self, document: str) -> list[Member]:
        return sorted(
            (m for m in self._members.values() if m.document == document), key=lambda m: m.user_id
        )

    async def memberships_of(self, user_ids: Collection[str]) -> list[Member]:
        wanted = set(user_ids)
        return [m for m in self._members.values() if m.user_id in wanted]

    async def put_member(self, member: Member) -> bool:
        if leaves_no_owner(self._owners(member.document), member.user_id, member.role):
            raise LastOwner()
        key = (member.document, member.user_id)
        created = key not in self._members
        self._members[key] = member
        return created

    async def remove_member(self, document: str, user_id: str) -> bool:
        if leaves_no_owner(self._owners(document), user_id, None):
            raise LastOwner()
        return self._members.pop((document, user_id), None) is not None

    def _owners(self, document: str) -> list[str]:
        return [
            m.user_id
            for m in self._members.values()
            if m.document == document and m.role is Role.OWNER
        ]

    async def claim_document(self, document: str, user_id: str) -> bool:
        if any(m.document == document for m in self._members.values()):
            return False
        self._members[(document, user_id)] = Member(document, user_id, Role.OWNER)
        return True

    async def documents_for(self, user_id: str | None) -> list[DocumentAccess]:
        found: dict[str, Role] = {}
        for m in self._members.values():
            if user_id is None:
                found[m.document] = Role.OWNER
            elif m.user_id == user_id:
                found[m.document] = m.role
        return [
            DocumentAccess(name, role, None, self._listings.get(name), name in self._archived)
            for name, role in sorted(found.items())
        ]

    async def describe(self, document: str, listing: Listing) -> None:
        if listing.last_user_id is None and document in self._listings:
            listing = replace(listing, last_user_id=self._listings[document].last_user_id)
        self._listings[document] = listing

    async def archive(self, document: str, by: str | None) -> None:
        if by is None:
            self._archived.discard(document)
        else:
            self._archived.add(document)


class CachedMembers:
    """An AccessStore that answers `members(document)` from memory.

    Every edit asks who its document's members are (who gets a digest of it): a query per
    keystroke. Writes made through this object drop what they change at once; edits made
    directly in the database are seen within `max_age_seconds`, the bound the recheck of live
    connections gives them too.
    """

    _MAX_DOCUMENTS = 4096  # then start over: an entry is cheap to fetch again

    def __init__(self, inner: AccessStore, max_age_seconds: float) -> None:
        self._inner = inner
        self._max_age = max_age_seconds
        self._members: dict[str, tuple[float, list[Member]]] = {}
        # Bumped as each write ends: a read that overlapped one does not cache what it read.
        self._writes = 0

    async def members(self, document: str) -> list[Member]:
        cached = self._members.get(document)
        now = time.monotonic()
        if cached is not None and now - cached[0] < self._max_age:
            return list(cached[1])
        writes = self._writes
        found = await self._inner.members(document)
        if writes == self._writes:
            if len(self._members) >= self._MAX_DOCUMENTS:
                self._members.clear()
            self._members[document] = (now, found)
        return list(found)

    def forget(self, document: str) -> None:
        """Another process changed `document`'s members (cluster mode)."""
        self._changed(document)

    def _changed(self, document: str) -> None:
        # Once the write is done: a list read while it was under way may predate it.
        self._writes += 1
        self._members.pop(document, None)

    async def put_member(self, member: Member) -> bool:
        try:
            return await self._inner.put_member(member)
        finally:
            self._changed(member.document)

    async def remove_member(self, document: str, user_id: str) -> bool:
        try:
            return await self._inner.remove_member(document, user_id)
        finally:
            self._changed(document)

    async def claim_document(self, document: str, user_id: str) -> bool:
        try:
            return await self._inner.claim_document(document, user_id)
        finally:
            self._changed(document)

    async def member(self, document: str, user_id: str) -> Member | None:
        return await self._inner.member(document, user_id)

    async def memberships_of(self, user_ids: Collection[str]) -> list[Member]:
        return await self._inner.memberships_of(user_ids)

    async def documents_for(self, user_id: str | None) -> list[DocumentAccess]:
        return await self._inner.documents_for(user_id)

    async def describe(self, document: str, listing: Listing) -> None:
        await self._inner.describe(document, listing)

    async def archive(self, document: str, by: str | None) -> None:
        await self._inner.archive(document, by)


# -- who is calling ---------------------------------------------------------------------------


class LastOwner(CollabError):
    """A change that would leave a document with no owner: refused by the store, inside the
    transaction that would make it, so two owners removing each other cannot both succeed."""

    def __init__(self) -> None:
        super().__init__("a document needs at least one owner: add another owner first")


def leaves_no_owner(owners: Collection[str], user_id: str, new_role: Role | None) -> bool:
    """Whether setting `user_id` to `new_role` (None: removing them) takes the last owner."""
    return new_role is not Role.OWNER and set(owners) == {user_id}


class NotAMember(Rejected):
    def __init__(self, reason: str = "not a member of this document") -> None:
        super().__init__(CloseCode.FORBIDDEN, reason)


async def require_owner(access: AccessStore, caller: Caller, document: str, refusal: str) -> None:
    """Let admins and the document's owners through; refuse anyone else (403)."""
    if caller.is_admin:
        return
    mine = await access.member(document, caller.user_id)
    if mine is None:
        raise NotAMember()
    if mine.role is not Role.OWNER:
        raise NotAMember(refusal)


class AccessAuthenticator:
    """Token + membership -> Identity. Without a verifier it is the development mode:
    anonymous editors known by the display name they typed, and every API caller an admin.
    """

    def __init__(
        self,
        access: AccessStore,
        verifier: TokenVerifier | None,
        names: DisplayNames | None = None,
    ) -> None:
        self.access = access
        self.verifier = verifier
        self.names = names

    @property
    def development_mode(self) -> bool:
        return self.verifier is None

    async def authenticate(
        self, credentials: Credentials, document: str, *, opening: bool = True
    ) -> Identity:
        if self.verifier is None:
            return anonymous_identity(credentials.display_name)
        token = await self.verifier.verify(credentials.token)
        name = await self._display_name(token)
        if token.is_admin:
            if not opening:
                return Identity(
                    token.user_id, name, Role.OWNER, is_admin=True, expires_at=token.expires_at
                )
            # Read first: most admin connections open documents that already have members,
            # and a claim is a write transaction.
            unclaimed = not await self.access.members(document)
            if unclaimed and await self.access.claim_document(document, token.user_id):
                log.info("document_claimed", document=document, user=token.user_id)
            return Identity(
                token.user_id, name, Role.OWNER, is_admin=True, expires_at=token.expires_at
            )
        member = await self.access.member(document, token.user_id)
        if member is None:
            log.info("not_a_member", document=document, user=token.user_id)
            raise NotAMember()
        return Identity(token.user_id, name, member.role, expires_at=token.expires_at)

    async def caller(self, credentials: Credentials) -> Caller:
        if self.verifier is None:
            return Caller(anonymous_identity(credentials.display_name).user_id or "dev", True)
        token = await self.verifier.verify(credentials.token)
        return Caller(token.user_id, token.is_admin, token.expires_at, token.app_role)

    async def _display_name(self, token: VerifiedToken) -> str:
        known = await self.names.display_name(token.user_id) if self.names else None
        if known:
            return known
        return token.full_name or token.email or token.user_id


# -- live connections follow membership changes -----------------------------------------------


class MembershipEnforcer(Extension):
    """Closes (4403) or downgrades live connections whose membership was revoked or changed."""

    name = "membership"

    def __init__(self, access: AccessStore, recheck_seconds: float) -> None:
        self.access = access
        self.recheck_seconds = recheck_seconds
        self._registry: Registry | None = None
        self._task: asyncio.Task[None] | None = None

    def attach(self, registry: Registry) -> None:
        self._registry = registry
        replication = registry.replication
        if replication is not None:
            # Cluster mode: a change made through any process reaches every process's sockets.
            replication.on_revoke.append(self.apply_remote)
            self._announce = replication.publish_revocation

    _announce: Callable[[str, str, str | None], None] | None = None

    def apply_remote(self, document: str, user_id: str, role: str | None) -> None:
        """A membership changed through another process."""
        if isinstance(self.access, CachedMembers):
            self.access.forget(document)
        try:
            known = Role(role) if role is not None else None
        except ValueError:
            return
        self._apply_here(document, user_id, known)

    async def on_connect(self, payload: ConnectPayload) -> None:
        # Started by the first connection: that is when there is something to watch.
        if self._task is None:
            self._task = asyncio.create_task(self._recheck_loop(), name="membership-recheck")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def apply(self, document: str, user_id: str, role: Role | None) -> int:
        """A membership changed through our API: apply it to live connections now (on every
        process, in cluster mode); returns how many of this process's were affected."""
        if self._announce is not None:
            self._announce(document, user_id, role.value if role is not None else None)
        return self._apply_here(document, user_id, role)

    def _apply_here(self, document: str, user_id: str, role: Role | None) -> int:
        if self._registry is None:
            return 0
        live = self._registry.get_live(document)
        if live is None:
            return 0
        affected = 0
        for connection in list(live.connections):
            identity = connection.identity
            if identity.user_id == user_id and _is_member_identity(identity):
                affected += self._enforce(connection, role)
        return affected

    async def recheck(self) -> int:
        """Compare every live member connection with the database (catches direct edits)."""
        if self._registry is None:
            return 0
        watched = [
            connection
            for live in self._registry.live_documents.values()
            for connection in live.connections
            if _is_member_identity(connection.identity)
        ]
        if not watched:
            return 0
        users = {c.identity.user_id for c in watched if c.identity.user_id is not None}
        roles = {(m.document, m.user_id): m.role for m in await self.access.memberships_of(users)}
        affected = 0
        for connection in watched:
            role = roles.get((connection.document, connection.identity.user_id or ""))
            affected += self._enforce(connection, role)
        return affected

    def _enforce(self, connection: Connection, role: Role | None) -> int:
        identity = connection.identity
        if role is None:
            log.info("membership_revoked", document=connection.document, user=identity.user_id)
            connection.close(CloseCode.FORBIDDEN, "membership revoked")
            return 1
        if role is identity.role:
            return 0
        log.info(
            "membership_changed",
            document=connection.document,
            user=identity.user_id,
            role=role.value,
        )
        connection.identity = replace(identity, role=role)
        return 1

    async def _recheck_loop(self) -> None:
        while True:
            await asyncio.sleep(self.recheck_seconds)
            try:
                await self.recheck()
            except Exception:
                log.exception("membership_recheck_failed")


def _is_member_identity(identity: Identity) -> bool:
    """Connections whose access rests on a membership (not admins, not development users)."""
    user_id = identity.user_id
    return user_id is not None and not identity.is_admin and not user_id.startswith(DEV_USER_PREFIX)
