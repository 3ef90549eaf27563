"""The sessions' REST API (JSON, bearer token), with 422 and the problems for bad input.

    GET   /api/session-kinds                          the kinds the centre offers
    GET   /api/students/{id}/sessions?from=&to=       a student's sessions (members)
    POST  /api/students/{id}/sessions                 schedule one (owners, editors)
    GET   /api/students/{id}/progress                 each goal's measurements, baseline, target
    GET   /api/sessions?therapist=ID&from=&to=        a therapist's sessions the caller may see
    GET   /api/sessions/{id}                          one session (members)
    PATCH /api/sessions/{id}                          move, confirm, cancel, complete... (editors)

Times are ISO 8601 with an offset (`2026-11-26T16:00:00+03:00`); answers are in UTC (`Z`).
A student is identified by their IEP document's name.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collab_server.api.http import ApiError, document_name, json_body, json_errors
from collab_server.credentials import request_credentials
from collab_server.identity import Caller, CallerAuthenticator
from integrations.sessions.records import (
    TRANSITIONS,
    Measurement,
    NewJob,
    Overlap,
    PlaceKind,
    SessionStatus,
    StaleVersion,
    TherapySession,
    Window,
)
from integrations.sessions.service import SessionService, iso
from integrations.sessions.student import StudentProfile

MAX_THERAPISTS = 10
MAX_GOALS = 50
MAX_NOTE = 5000
MAX_TEXT = 200
MAX_WINDOW_DAYS = 92
DEFAULT_WINDOW_DAYS = 28
DURATION_RANGE = (5, 600)
_DRAFT_FIELDS = {"therapists", "starts_at", "duration_minutes", "place", "kind", "goals"}
_PATCH_FIELDS = _DRAFT_FIELDS | {"status", "note", "measurements", "version"}


def _instant(value: object) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.timestamp() if moment.tzinfo is not None else None


def _window(request: Request, now: float) -> Window:
    params = request.query_params
    start = _instant(params["from"]) if "from" in params else now - 86400
    end = _instant(params["to"]) if "to" in params else (start or now) + DEFAULT_WINDOW_DAYS * 86400
    if start is None or end is None:
        raise ApiError(400, "from and to must be ISO 8601 times with an offset")
    if not 0 < end - start <= MAX_WINDOW_DAYS * 86400:
        raise ApiError(400, f"to must follow from by at most {MAX_WINDOW_DAYS} days")
    return Window(start, end)


class _Fields:
    """Reads a JSON object field by field, collecting problems (one 422 names them all)."""

    def __init__(self, body: object, allowed: set[str]) -> None:
        if not isinstance(body, dict):
            raise ApiError(422, "invalid session", {"body": "must be a JSON object"})
        self.body = body
        self.problems: dict[str, str] = {f: "unknown field" for f in sorted(set(body) - allowed)}

    def has(self, name: str) -> bool:
        return name in self.body

    def therapists(self) -> tuple[str, ...]:
        value = self.body.get("therapists")
        if (
            not isinstance(value, list)
            or not 1 <= len(value) <= MAX_THERAPISTS
            or not all(isinstance(t, str) and 0 < len(t) <= 255 for t in value)
        ):
            self.problems["therapists"] = f"1 to {MAX_THERAPISTS} user ids"
            return ()
        return tuple(dict.fromkeys(value))

    def starts_at(self, now: float) -> float:
        value = _instant(self.body.get("starts_at"))
        if value is None:
            self.problems["starts_at"] = (
                "an ISO 8601 time with an offset, e.g. 2026-11-26T16:00+03:00"
            )
            return 0.0
        if value <= now:
            self.problems["starts_at"] = "must be in the future"
        return value

    def duration(self) -> int:
        value = self.body.get("duration_minutes")
        low, high = DURATION_RANGE
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.problems["duration_minutes"] = f"whole minutes from {low} to {high}"
            return low
        return value

    def place(self) -> tuple[PlaceKind, str]:
        value = self.body.get("place")
        if isinstance(value, dict) and len(value) == 1:
            ((kind, where),) = value.items()
            if (
                kind == PlaceKind.ROOM
                and isinstance(where, str)
                and 0 < len(where.strip()) <= MAX_TEXT
            ):
                return PlaceKind.ROOM, where.strip()
            if kind == PlaceKind.ONLINE and isinstance(where, str) and where.startswith("https://"):
                return PlaceKind.ONLINE, where
        self.problems["place"] = '{"room": "Room 3"} or {"online": "https://…"}'
        return PlaceKind.ROOM, ""

    def kind(self, kinds: tuple[str, ...]) -> str:
        value = self.body.get("kind")
        if value not in kinds:
            self.problems["kind"] = "one of: " + ", ".join(kinds)
            return ""
        return str(value)

    def goals(self, student: StudentProfile | None) -> tuple[str, ...]:
        value = self.body.get("goals", [])
        if (
            not isinstance(value, list)
            or len(value) > MAX_GOALS
            or not all(isinstance(g, str) for g in value)
        ):
            self.problems["goals"] = f"a list of at most {MAX_GOALS} goal ids"
            return ()
        known = student.goals if student else {}
        unknown = [g for g in value if g not in known]
        if unknown:
            self.problems["goals"] = "unknown goal: " + ", ".join(unknown)
        return tuple(dict.fromkeys(value))

    def status(self) -> SessionStatus | None:
        value = self.body.get("status")
        if value not in SessionStatus._value2member_map_:
            self.problems["status"] = "one of: " + ", ".join(s.value for s in SessionStatus)
            return None
        return SessionStatus(str(value))

    def note(self) -> str:
        value = self.body.get("note")
        if not isinstance(value, str) or len(value) > MAX_NOTE:
            self.problems["note"] = f"text of at most {MAX_NOTE} characters"
            return ""
        return value

    def measurements(self, student: StudentProfile | None) -> tuple[Measurement, ...]:
        value = self.body.get("measurements")
        known = student.goals if student else {}
        found: list[Measurement] = []
        if not isinstance(value, list) or len(value) > MAX_GOALS:
            self.problems["measurements"] = "a list of {goal, value, unit}"
            return ()
        for index, item in enumerate(value):
            where = f"measurements[{index}]"
            if not isinstance(item, dict) or set(item) - {"goal", "value", "unit"}:
                self.problems[where] = "an object {goal, value, unit}"
                continue
            number, unit, goal = item.get("value"), item.get("unit", ""), item.get("goal")
            if (
                isinstance(number, bool)
                or not isinstance(number, int | float)
                or not math.isfinite(number)
            ):
                self.problems[where] = "value must be a number"
            elif not isinstance(unit, str) or len(unit) > 60:
                self.problems[where] = "unit must be text of at most 60 characters"
            elif goal not in known:
                self.problems[where] = f"unknown goal: {goal}"
            else:
                found.append(Measurement(str(goal), float(number), unit.strip()))
        return tuple(found)

    def version(self) -> int | None:
        value = self.body.get("version")
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.problems["version"] = "the version you last saw, a number"
            return None
        return value

    def check(self) -> None:
        if self.problems:
            raise ApiError(422, "invalid session", self.problems)


def session_routes(service: SessionService, authenticator: CallerAuthenticator) -> list[Route]:
    students = service.students
    policy = service.policy

    async def therapists_may_edit(
        fields: _Fields, student_id: str, therapists: tuple[str, ...]
    ) -> None:
        outsiders = [t for t in therapists if not await students.may_edit(Caller(t), student_id)]
        if outsiders and "therapists" not in fields.problems:
            fields.problems["therapists"] = "not an editor of this IEP: " + ", ".join(outsiders)

    async def caller_of(request: Request) -> Caller:
        return await authenticator.caller(request_credentials(request))

    def student_of(request: Request) -> str:
        return document_name(request, "student_id")

    async def session_of(request: Request) -> TherapySession:
        found = await service.store.session(request.path_params["session_id"])
        if found is None:
            raise ApiError(404, "no such session")
        return found

    async def listing(found: list[TherapySession]) -> Response:
        return JSONResponse({"sessions": [await service.to_json(s) for s in found]})

    @json_errors
    async def kinds(request: Request) -> Response:
        await caller_of(request)
        return JSONResponse({"kinds": list(policy.kinds)})

    @json_errors
    async def list_student(request: Request) -> Response:
        student_id = student_of(request)
        await students.require_view(await caller_of(request), student_id)
        window = _window(request, service.clock.now())
        return await listing(await service.store.sessions_of_student(student_id, window))

    @json_errors
    async def list_therapist(request: Request) -> Response:
        caller = await caller_of(request)
        therapist = request.query_params.get("therapist") or caller.user_id
        window = _window(request, service.clock.now())
        visible = await students.visible_students(caller)
        found = await service.store.sessions_of_therapist(therapist, window)
        if visible is not None:
            found = [s for s in found if s.student_id in visible]
        return await listing(found)

    @json_errors
    async def get_session(request: Request) -> Response:
        caller = await caller_of(request)
        session = await session_of(request)
        await students.require_view(caller, session.student_id)
        return JSONResponse(await service.to_json(session))

    @json_errors
    async def progress(request: Request) -> Response:
        student_id = student_of(request)
        await students.require_view(await caller_of(request), student_id)
        profile = await service.read_student(student_id)
        points = await service.store.goal_points(student_id)
        goals = profile.goals if profile else {}
        return JSONResponse(
            {
                "student_id": student_id,
                "student_name": profile.name if profile else "",
                "goals": [
                    {
                        "id": goal.id,
                        "title": goal.title,
                        "baseline": goal.baseline,
                        "target": goal.target,
                        "points": [
                            {
                                "at": iso(p.at),
                                "value": p.measurement.value,
                                "unit": p.measurement.unit,
                                "session": p.session_id,
                            }
                            for p in points
                            if p.measurement.goal_id == goal.id
                        ],
                    }
                    for goal in goals.values()
                ],
            }
        )

    @json_errors
    async def create(request: Request) -> Response:
        student_id = student_of(request)
        caller = await caller_of(request)
        await students.require_edit(caller, student_id)
        fields = _Fields(await json_body(request), _DRAFT_FIELDS)
        now = service.clock.now()
        student = await service.read_student(student_id)
        place_kind, place = fields.place()
        session = TherapySession(
            id=service.new_id(),
            student_id=student_id,
            therapist_ids=fields.therapists(),
            starts_at=fields.starts_at(now),
            duration_minutes=fields.duration(),
            place_kind=place_kind,
            place=place,
            kind=fields.kind(policy.kinds),
            goal_ids=fields.goals(student),
            created_by=caller.user_id,
            created_at=now,
            updated_at=now,
        )
        await therapists_may_edit(fields, student_id, session.therapist_ids)
        fields.check()
        try:
            await service.write(
                session,
                "scheduled",
                before=None,
                student=student,
                jobs=service.reminder_jobs(session),
            )
        except Overlap as exc:
            raise ApiError(422, "invalid session", {"therapists": str(exc)}) from None
        return JSONResponse(await service.to_json(session, student.name if student else ""), 201)

    @json_errors
    async def patch(request: Request) -> Response:
        caller = await caller_of(request)
        before = await session_of(request)
        await students.require_edit(caller, before.student_id)
        fields = _Fields(await json_body(request), _PATCH_FIELDS)
        now = service.clock.now()
        student = await service.read_student(before.student_id)
        version = fields.version()
        if version is not None and version != before.version:
            raise ApiError(409, f"the session changed meanwhile (now version {before.version})")
        changes: dict[str, Any] = {}
        if fields.has("therapists"):
            changes["therapist_ids"] = fields.therapists()
            await therapists_may_edit(fields, before.student_id, changes["therapist_ids"])
        if fields.has("starts_at"):
            starts_at = fields.starts_at(now)
            if starts_at != before.starts_at:
                changes["starts_at"] = starts_at
        if fields.has("duration_minutes"):
            changes["duration_minutes"] = fields.duration()
        if fields.has("place"):
            changes["place_kind"], changes["place"] = fields.place()
        if fields.has("kind"):
            changes["kind"] = fields.kind(policy.kinds)
        if fields.has("goals"):
            changes["goal_ids"] = fields.goals(student)
        status = fields.status() if fields.has("status") else before.status
        if fields.has("note"):
            changes["note"] = fields.note()
        if fields.has("measurements"):
            changes["measurements"] = fields.measurements(student)
        fields.check()
        problems: dict[str, str] = {}
        if status is not None and status is not before.status:
            if status not in TRANSITIONS[before.status]:
                problems["status"] = f"a {before.status.value} session cannot become {status.value}"
            changes["status"] = status
        schedule_fields = {"therapist_ids", "starts_at", "duration_minutes", "place_kind", "kind"}
        if schedule_fields & changes.keys() and not before.status.upcoming:
            problems["status"] = f"a {before.status.value} session cannot be rescheduled"
        if "measurements" in changes and status is not SessionStatus.COMPLETED:
            problems["measurements"] = "only a completed session has measurements"
        if problems:
            raise ApiError(422, "invalid session", problems)
        moved = "starts_at" in changes
        if moved:
            # A new time needs a new confirmation.
            changes.setdefault("status", SessionStatus.SCHEDULED)
            changes["attention"] = None
        if changes.get("status") is SessionStatus.CONFIRMED:
            changes["attention"] = None
        after = dataclasses.replace(before, **changes, version=before.version + 1, updated_at=now)
        jobs: list[NewJob] = []
        cancel = False
        if moved:
            change, cancel = "moved", True
            jobs = [*service.reminder_jobs(after), service.moved_job(after, before)]
        elif after.status is not before.status:
            change = after.status.value
            cancel = not after.status.upcoming
        else:
            change = "updated"
        if (
            after.status is SessionStatus.COMPLETED
            and after.measurements
            and (
                before.status is not SessionStatus.COMPLETED
                or after.measurements != before.measurements
            )
        ):
            jobs += await service.progress_jobs(after)
        try:
            await service.write(
                after, change, before=before, student=student, jobs=jobs, cancel_jobs=cancel
            )
        except Overlap as exc:
            raise ApiError(422, "invalid session", {"therapists": str(exc)}) from None
        except StaleVersion as exc:
            raise ApiError(409, str(exc)) from None
        return JSONResponse(await service.to_json(after, student.name if student else ""))

    return [
        Route("/api/session-kinds", kinds, methods=["GET"]),
        Route("/api/students/{student_id:path}/sessions", list_student, methods=["GET"]),
        Route("/api/students/{student_id:path}/sessions", create, methods=["POST"]),
        Route("/api/students/{student_id:path}/progress", progress, methods=["GET"]),
        Route("/api/sessions", list_therapist, methods=["GET"]),
        Route("/api/sessions/{session_id}", get_session, methods=["GET"]),
        Route("/api/sessions/{session_id}", patch, methods=["PATCH"]),
    ]
