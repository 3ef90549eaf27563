"""Reminders, "session moved" notices and progress updates, in Arabic and English.

Times are shown in the recipient's time zone, numbers and dates with Arabic-Indic digits when
the person prefers them, counts with CLDR plural rules. Each message has a full text (email,
in-app, WhatsApp free-form) and the parameters of its approved WhatsApp template:

    reminder       student, therapists, local date and time, place   buttons: confirm, decline
    session moved  student, old local date and time, new one, place
    progress       student, the day's summary on one line
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale
from babel.dates import format_datetime
from babel.lists import format_list
from babel.numbers import format_decimal

from integrations.contracts import Language, Message, Person
from integrations.digest import RLM, flatten, isolate
from integrations.sessions.records import PlaceKind, TherapySession

CONFIRM_PAYLOAD = "session-confirm:"
DECLINE_PAYLOAD = "session-decline:"

_ARABIC_DIGITS = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")

KIND_NAMES: dict[Language, dict[str, str]] = {
    Language.ENGLISH: {
        "speech": "speech therapy",
        "occupational": "occupational therapy",
        "behavioural": "behavioural therapy",
        "physical": "physiotherapy",
        "psychological": "psychological support",
    },
    Language.ARABIC: {
        "speech": "علاج النطق",
        "occupational": "العلاج الوظيفي",
        "behavioural": "العلاج السلوكي",
        "physical": "العلاج الطبيعي",
        "psychological": "الدعم النفسي",
    },
}

SESSIONS: dict[Language, dict[str, str]] = {
    Language.ENGLISH: {"one": "{n} session", "other": "{n} sessions"},
    Language.ARABIC: {
        "zero": "لا جلسات",
        "one": "جلسة واحدة",
        "two": "جلستان",
        "few": "{n} جلسات",
        "many": "{n} جلسةً",
        "other": "{n} جلسة",
    },
}

PHRASES: dict[Language, dict[str, str]] = {
    Language.ENGLISH: {
        "reminder_subject": "Session reminder: {student}",
        "reminder": (
            "Reminder: {student} has {kind} with {therapists} on {when}, {place}.\n"
            "Reply Confirm, or Can't come if {student} cannot attend."
        ),
        "moved_subject": "Session moved: {student}",
        "moved": "{student}'s {kind} session has moved from {before} to {after}, {place}.",
        "progress_subject": "Progress today: {student}",
        "progress_header": "{student} today ({sessions}):",
        "progress_line": "{goal}: {value}{comparison}{target}",
        "up": ", up from {value} on {date}",
        "down": ", down from {value} on {date}",
        "same": ", the same as on {date}",
        "target": " — goal: {value}",
        "room": "in {place}",
        "online": "online: {place}",
        "student": "your child",
    },
    Language.ARABIC: {
        "reminder_subject": "تذكير بجلسة: {student}",
        "reminder": (
            "تذكير: لدى {student} جلسة {kind} مع {therapists} يوم {when}، {place}.\n"
            "أجيبوا «تأكيد»، أو «لا أستطيع الحضور» إن تعذّر الحضور."
        ),
        "moved_subject": "تغيّر موعد جلسة: {student}",
        "moved": "تغيّر موعد جلسة {kind} لـ{student} من {before} إلى {after}، {place}.",
        "progress_subject": "تقدّم اليوم: {student}",
        "progress_header": "{student} اليوم ({sessions}):",
        "progress_line": "{goal}: {value}{comparison}{target}",
        "up": "، ارتفاعًا من {value} في {date}",
        "down": "، انخفاضًا من {value} في {date}",
        "same": "، كما كان في {date}",
        "target": " — الهدف: {value}",
        "room": "في {place}",
        "online": "عبر الإنترنت: {place}",
        "student": "طفلكم",
    },
}


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def digits(person: Person, text: str) -> str:
    return text.translate(_ARABIC_DIGITS) if person.arabic_digits else text


def number(person: Person, value: float) -> str:
    # babel gives the Arabic separators for `arab` but keeps the digits Latin.
    system = "arab" if person.arabic_digits else "latn"
    text = format_decimal(value, locale=person.language.value, numbering_system=system)
    return digits(person, str(text))


def local_time(person: Person, at: float) -> str:
    """`Tue 24 Nov, 16:00` / `الثلاثاء 24 نوفمبر، 16:00` in the person's time zone."""
    moment = dt.datetime.fromtimestamp(at, zone(person.timezone))
    if person.language is Language.ARABIC:
        text = format_datetime(moment, "EEEE d MMMM، HH:mm", locale="ar")
    else:
        text = format_datetime(moment, "EEE d MMM, HH:mm", locale="en")
    return digits(person, text)


def local_date(person: Person, at: float) -> str:
    moment = dt.datetime.fromtimestamp(at, zone(person.timezone))
    return digits(person, format_datetime(moment, "d MMM", locale=person.language.value))


def local_day(person: Person, at: float) -> str:
    """The ISO date of `at` in the person's time zone (progress updates are per day)."""
    return dt.datetime.fromtimestamp(at, zone(person.timezone)).date().isoformat()


def sessions_count(language: Language, n: int) -> str:
    forms = SESSIONS[language]
    return forms.get(Locale.parse(language.value).plural_form(n), forms["other"]).format(n=n)


def _kind(language: Language, kind: str) -> str:
    return KIND_NAMES[language].get(kind, kind)


def _place(language: Language, session: TherapySession) -> str:
    key = "online" if session.place_kind is PlaceKind.ONLINE else "room"
    return PHRASES[language][key].format(place=isolate(session.place))


def _student(language: Language, name: str) -> str:
    return isolate(name) if name else PHRASES[language]["student"]


def _rtl(language: Language, text: str) -> str:
    if language is not Language.ARABIC:
        return text
    return "\n".join(RLM + line for line in text.split("\n"))


def reminder(
    session: TherapySession,
    student: str,
    therapists: list[str],
    person: Person,
    template: str,
) -> Message:
    language = person.language
    phrases = PHRASES[language]
    names = format_list([isolate(n) for n in therapists], locale=language.value)
    when = local_time(person, session.starts_at)
    place = _place(language, session)
    text = phrases["reminder"].format(
        student=_student(language, student),
        kind=_kind(language, session.kind),
        therapists=names,
        when=when,
        place=place,
    )
    return Message(
        language,
        phrases["reminder_subject"].format(student=student or phrases["student"]),
        _rtl(language, text),
        (flatten(_student(language, student)), flatten(names), when, flatten(place)),
        template=template,
        buttons=(CONFIRM_PAYLOAD + session.id, DECLINE_PAYLOAD + session.id),
    )


def moved(
    session: TherapySession, before: float, student: str, person: Person, template: str
) -> Message:
    language = person.language
    phrases = PHRASES[language]
    old, new = local_time(person, before), local_time(person, session.starts_at)
    place = _place(language, session)
    text = phrases["moved"].format(
        student=_student(language, student),
        kind=_kind(language, session.kind),
        before=old,
        after=new,
        place=place,
    )
    return Message(
        language,
        phrases["moved_subject"].format(student=student or phrases["student"]),
        _rtl(language, text),
        (flatten(_student(language, student)), old, new, flatten(place)),
        template=template,
    )


@dataclass(frozen=True, slots=True)
class GoalProgress:
    """One goal's latest measurement today, against its previous one and its target."""

    title: str
    value: float
    unit: str
    previous: tuple[float, float] | None  # (value, at) of the measurement before today's
    target: float | None


def progress(
    student: str,
    sessions: int,
    goals: list[GoalProgress],
    person: Person,
    *,
    template: str,
    link: str,
) -> Message:
    language = person.language
    phrases = PHRASES[language]
    lines = []
    for goal in goals:
        unit = f" {isolate(goal.unit)}" if goal.unit else ""
        comparison = ""
        if goal.previous is not None:
            before, at = goal.previous
            key = "up" if goal.value > before else "down" if goal.value < before else "same"
            comparison = phrases[key].format(
                value=number(person, before), date=local_date(person, at)
            )
        target = (
            phrases["target"].format(value=number(person, goal.target))
            if goal.target is not None
            else ""
        )
        lines.append(
            phrases["progress_line"].format(
                goal=isolate(goal.title),
                value=number(person, goal.value) + unit,
                comparison=comparison,
                target=target,
            )
        )
    count = digits(person, sessions_count(language, sessions))
    header = phrases["progress_header"].format(student=_student(language, student), sessions=count)
    text = "\n".join([header, *(f"• {line}" for line in lines), "", link])
    return Message(
        language,
        phrases["progress_subject"].format(student=student or phrases["student"]),
        _rtl(language, text),
        (flatten(_student(language, student)), flatten(" · ".join(lines))),
        link,
        template=template,
    )
