"""Who is behind a connection, and the transaction origins that carry it into the document.

The origin of every transaction is one of these frozen values (a tagged union), which is how
observers attribute changes and how the registry avoids echoing an update to its sender.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from collab_server.errors import Rejected
from collab_server.plain_text import has_control_characters
from collab_server.protocol import CloseCode


class Role(StrEnum):
    OWNER = "owner"
    EDITOR = "editor"
    VIEWER = "viewer"

    @property
    def can_write(self) -> bool:
        return self is not Role.VIEWER


@dataclass(frozen=True, slots=True)
class Identity:
    """A verified user (or the anonymous development user) and their role on one document."""

    user_id: str | None
    display_name: str
    role: Role
    is_admin: bool = False
    expires_at: float | None = None  # token expiry, epoch seconds

    @property
    def can_write(self) -> bool:
        return self.role.can_write


@dataclass(frozen=True, slots=True)
class ConnectionOrigin:
    """A change made by one client connection."""

    connection_id: str
    user_id: str | None
    display_name: str


@dataclass(frozen=True, slots=True)
class ServerOrigin:
    """A change the server itself made (load, compaction, admin tools)."""

    reason: str


@dataclass(frozen=True, slots=True)
class SubmittedOrigin(ConnectionOrigin):
    """A change a client made through another server process (cluster mode), applied by the
    document's owner and attributed to that client's user like a local one."""

    node_id: str
    submit_id: str


@dataclass(frozen=True, slots=True)
class PeerNodeOrigin:
    """A change the owning server process stored, applied by a replica (cluster mode).

    `connection_id` is the replica's own socket that sent it, if any: it has it already.
    """

    node_id: str
    connection_id: str | None = None


Origin = ConnectionOrigin | ServerOrigin | PeerNodeOrigin


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a client presented: an access token, and (development mode only) a display name."""

    token: str | None = None
    display_name: str | None = None


@dataclass(frozen=True, slots=True)
class Caller:
    """The verified user behind an HTTP API request."""

    user_id: str
    is_admin: bool = False
    expires_at: float | None = None  # token expiry, epoch seconds (live sockets close then)
    app_role: str | None = None  # `app_metadata.role` (e.g. "staff"), from the token


class CallerAuthenticator(Protocol):
    """Turns the credentials of an HTTP request into its caller; raises `Rejected` (401)."""

    async def caller(self, credentials: Credentials) -> Caller: ...


class Authenticator(Protocol):
    """Turns the credentials of a connection or request into an Identity for a document.

    Raises `Rejected` (close 4401 / 4403 or HTTP 401 / 403) to refuse. `opening` is True when
    the caller is about to open the document (a socket); False for a question about it (the
    access API), which must never create anything.
    """

    async def authenticate(
        self, credentials: Credentials, document: str, *, opening: bool = True
    ) -> Identity: ...


DEV_USER_PREFIX = "dev:"
# The log's `user_id` of a change the server made itself ("server:migration"): never a user's.
SERVER_USER_PREFIX = "server:"


def server_user_id(reason: str) -> str:
    return SERVER_USER_PREFIX + reason


def is_server_change(user_id: str | None) -> bool:
    return user_id is not None and user_id.startswith(SERVER_USER_PREFIX)


_MAX_DEV_NAME = 80


def anonymous_identity(display_name: str | None) -> Identity:
    """Development mode: an editor known only by the name the browser typed in."""
    if display_name is not None and has_control_characters(display_name):
        raise Rejected(CloseCode.BAD_REQUEST, "names may not contain control characters")
    name = " ".join((display_name or "").split())[:_MAX_DEV_NAME]
    if not name:
        return Identity(user_id=None, display_name="anonymous", role=Role.EDITOR)
    return Identity(user_id=DEV_USER_PREFIX + name, display_name=name, role=Role.EDITOR)


class AnonymousAuthenticator:
    """Development mode: everybody may edit every document."""

    async def authenticate(
        self, credentials: Credentials, document: str, *, opening: bool = True
    ) -> Identity:
        return anonymous_identity(credentials.display_name)
