"""People records: who a person is to the notifications (name, phone, email, language, time
zone, channels), validated here and served at `GET` / `PUT /api/people/{user_id}`.

A person reads and writes their own record, admins anyone's; an IEP's owner may fill in the
record of one of its members who has none yet (a parent without an account). A `PUT`
replaces the record after validating every field (a 422 lists the problems). The records also
give verified users their display name in the editor (`PeopleNames`).
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Awaitable, Callable
from typing import Any

import phonenumbers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collab_server.api.http import ApiError, json_body, json_errors
from collab_server.credentials import request_credentials
from collab_server.errors import Rejected
from collab_server.identity import Caller, CallerAuthenticator
from collab_server.plain_text import has_control_characters
from collab_server.protocol import CloseCode
from integrations.contracts import CHANNEL_ORDER, Channel, Language, PeopleStore, Person

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_MAX_NAME = 200
_FIELDS = {
    "name",
    "phone",
    "email",
    "language",
    "timezone",
    "channels",
    "digits",
    "quiet_hours",
    "channel_order",
}
_QUIET = re.compile(r"^([01]?\d|2[0-3]):[0-5]\d-([01]?\d|2[0-3]):[0-5]\d$")
_DIGITS = ("latin", "arabic")


class InvalidPerson(ValueError):
    """A record failed validation; `problems` maps each field to a message for the user."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in problems.items()))
        self.problems = problems


def person_to_json(person: Person) -> dict[str, Any]:
    return {
        "user_id": person.user_id,
        "name": person.name,
        "phone": person.phone,
        "email": person.email,
        "language": person.language.value,
        "timezone": person.timezone,
        "channels": {channel.value: channel in person.channels for channel in CHANNEL_ORDER},
        "digits": "arabic" if person.arabic_digits else "latin",
        "phone_display": national(person.phone) if person.phone else None,
        "quiet_hours": person.quiet_hours,
        "channel_order": [c.value for c in person.channel_order],
    }


def national(phone: str) -> str:
    """+966501234567 as people there write it: 050 123 4567."""
    try:
        parsed = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return phone
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)


def person_from_json(user_id: str, body: object) -> Person:
    """Validate a people record sent by a client; raises InvalidPerson naming each bad field."""
    if not isinstance(body, dict):
        raise InvalidPerson({"body": "must be a JSON object"})
    problems: dict[str, str] = {}
    for unknown in sorted(set(body) - _FIELDS):
        problems[unknown] = "unknown field"

    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > _MAX_NAME:
        problems["name"] = f"required: a non-empty string of at most {_MAX_NAME} characters"
    elif has_control_characters(name):
        problems["name"] = "may not contain control characters"

    phone = body.get("phone")
    if phone is not None:
        phone = _e164(phone)
        if phone is None:
            problems["phone"] = "must be a valid E.164 phone number such as +971501234567"

    email = body.get("email")
    if email is not None and (
        not isinstance(email, str) or not _EMAIL.match(email) or has_control_characters(email)
    ):
        problems["email"] = "must be an e-mail address such as name@example.org"

    language = body.get("language", Language.ENGLISH.value)
    if language not in Language._value2member_map_:
        problems["language"] = "must be 'ar' or 'en'"

    timezone = body.get("timezone", "UTC")
    if not _is_time_zone(timezone):
        problems["timezone"] = "must be an IANA time zone such as Asia/Dubai"

    digits = body.get("digits", "latin")
    if digits not in _DIGITS:
        problems["digits"] = "must be 'latin' (42) or 'arabic' (٤٢)"

    channels = _channels(body.get("channels", {}), problems)
    for needs_phone in (Channel.WHATSAPP, Channel.SMS):
        if needs_phone in channels and not phone and "phone" not in problems:
            problems[f"channels.{needs_phone.value}"] = "needs a phone number"
    if Channel.EMAIL in channels and not email and "email" not in problems:
        problems["channels.email"] = "needs an e-mail address"

    quiet = body.get("quiet_hours")
    valid_quiet = quiet is None or quiet == "off"
    valid_quiet = valid_quiet or (isinstance(quiet, str) and bool(_QUIET.match(quiet.strip())))
    if not valid_quiet:
        problems["quiet_hours"] = "'HH:MM-HH:MM' such as 21:00-07:00, 'off', or null"
    order = body.get("channel_order", [])
    names = {c.value for c in CHANNEL_ORDER}
    if (
        not isinstance(order, list)
        or any(c not in names for c in order)
        or len(set(order)) != len(order)
    ):
        problems["channel_order"] = "a list of channels, each once: " + ", ".join(sorted(names))
        order = []

    if problems:
        raise InvalidPerson(problems)
    assert isinstance(name, str)
    return Person(
        user_id=user_id,
        name=name.strip(),
        phone=phone,
        email=email,
        language=Language(language),
        timezone=str(timezone),
        channels=channels,
        arabic_digits=digits == "arabic",
        quiet_hours=quiet.strip() if isinstance(quiet, str) else None,
        channel_order=tuple(Channel(c) for c in order),
    )


def _e164(value: object) -> str | None:
    if not isinstance(value, str) or not value.startswith("+"):
        return None
    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    formatted = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return formatted if formatted == value else None


def _is_time_zone(value: object) -> bool:
    if not isinstance(value, str) or not value:
        return False
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


_DEFAULT_CHANNELS = frozenset({Channel.IN_APP})


def _channels(value: object, problems: dict[str, str]) -> frozenset[Channel]:
    if not isinstance(value, dict):
        problems["channels"] = "must be an object with whatsapp, sms, email and in_app booleans"
        return _DEFAULT_CHANNELS
    for unknown in sorted(set(value) - {c.value for c in CHANNEL_ORDER}):
        problems[f"channels.{unknown}"] = "unknown channel"
    enabled: set[Channel] = set()
    for channel in CHANNEL_ORDER:
        flag = value.get(channel.value, channel in _DEFAULT_CHANNELS)
        if not isinstance(flag, bool):
            problems[f"channels.{channel.value}"] = "must be true or false"
        elif flag:
            enabled.add(channel)
    return frozenset(enabled)


class PeopleNames:
    """The core's `DisplayNames` over the people records."""

    def __init__(self, people: PeopleStore) -> None:
        self.people = people

    async def display_name(self, user_id: str) -> str | None:
        person = await self.people.person(user_id)
        return person.name if person is not None else None


def _require_self_or_admin(caller: Caller, user_id: str) -> None:
    if not caller.is_admin and caller.user_id != user_id:
        raise Rejected(CloseCode.FORBIDDEN, "you may only read and change your own record")


class TestRefused(Exception):
    """A test message that cannot be sent (the channel is off on this server, no address)."""


# Queue a test message to a person on one channel; returns its outbox key.
SendTest = Callable[[Person, Channel], Awaitable[str]]
# May this caller fill in the record of this person (an owner of an IEP they are a member of)?
MayFillIn = Callable[[Caller, str], Awaitable[bool]]


def people_routes(
    authenticator: CallerAuthenticator,
    people: PeopleStore,
    send_test: SendTest | None = None,
    may_fill_in: MayFillIn | None = None,
) -> list[Route]:
    async def require_writer(caller: Caller, user_id: str) -> None:
        """The person and admins; an IEP's owner too, for a member with no record yet (a
        parent without an account), never over a record someone already keeps."""
        if caller.is_admin or caller.user_id == user_id:
            return
        if may_fill_in is not None and await may_fill_in(caller, user_id):
            if await people.person(user_id) is None:
                return
            raise Rejected(CloseCode.FORBIDDEN, "this person keeps their own record")
        _require_self_or_admin(caller, user_id)

    @json_errors
    async def get_person(request: Request) -> Response:
        user_id: str = request.path_params["user_id"]
        caller = await authenticator.caller(request_credentials(request))
        await require_writer(caller, user_id)
        person = await people.person(user_id)
        if person is None:
            raise ApiError(404, "no record for this person yet")
        return JSONResponse(person_to_json(person))

    @json_errors
    async def put_person(request: Request) -> Response:
        user_id: str = request.path_params["user_id"]
        caller = await authenticator.caller(request_credentials(request))
        await require_writer(caller, user_id)
        try:
            person = person_from_json(user_id, await json_body(request))
        except InvalidPerson as exc:
            raise ApiError(422, "invalid people record", exc.problems) from None
        await people.put_person(person)
        return JSONResponse(person_to_json(person))

    @json_errors
    async def test_message(request: Request) -> Response:
        user_id: str = request.path_params["user_id"]
        caller = await authenticator.caller(request_credentials(request))
        _require_self_or_admin(caller, user_id)
        body = await json_body(request)
        name = body.get("channel") if isinstance(body, dict) else None
        if name not in {c.value for c in CHANNEL_ORDER}:
            choices = ", ".join(c.value for c in CHANNEL_ORDER)
            raise ApiError(422, "invalid request", {"channel": f"one of {choices}"})
        person = await people.person(user_id)
        if person is None:
            raise ApiError(404, "no record for this person yet")
        if send_test is None:
            raise ApiError(409, "messages are not configured on this server")
        try:
            key = await send_test(person, Channel(name))
        except TestRefused as exc:
            raise ApiError(409, str(exc)) from None
        return JSONResponse({"channel": name, "key": key}, status_code=202)

    return [
        Route("/api/people/{user_id}", get_person, methods=["GET"]),
        Route("/api/people/{user_id}", put_person, methods=["PUT"]),
        Route("/api/people/{user_id}/test", test_message, methods=["POST"]),
    ]
