"""Digest windows per (document, recipient), quiet hours, and rendering in Arabic and English.

A window opens at a recipient's first relevant change and closes `debounce` after the last one,
at most `max_wait` after the first; a window due in the recipient's quiet hours waits for their
morning. Each window keeps its merged digest (which items, fields and text changed, and who),
saved with the document's watermark in one transaction as changes are recorded, so a restart
needs no log to close it. Closing a window writes the digest to the outbox in the same
transaction.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog
from babel import Locale
from babel.lists import format_list

from integrations.contracts import (
    Checkpoint,
    Clock,
    DigestWindow,
    Language,
    Message,
    MessageKind,
    NotificationStore,
    OutboxEntry,
    Person,
    RecipientDirectory,
)
from integrations.iep import SECTION_ORDER, ChangeSet, Section

log = structlog.get_logger("collab.integrations.digest")

# Unicode isolates keep a Latin name inside Arabic text (and the reverse) in its own direction.
FSI = "\u2068"
PDI = "\u2069"
RLM = "\u200f"


@dataclass(frozen=True, slots=True)
class QuietHours:
    start: dt.time
    end: dt.time

    @classmethod
    def parse(cls, spec: str) -> QuietHours | None:
        """`"21:00-08:00"`; empty disables. Raises ValueError for anything else."""
        spec = spec.strip()
        if not spec:
            return None
        match = re.fullmatch(r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})", spec)
        if not match:
            raise ValueError("expected HH:MM-HH:MM, e.g. 21:00-08:00, or empty to disable")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        return cls(dt.time(h1, m1), dt.time(h2, m2))

    def contains(self, local: dt.time) -> bool:
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def release(self, at: float, timezone: str) -> float:
        """`at`, or the end of the quiet period it falls in, in the person's time zone."""
        zone = _zone(timezone)
        local = dt.datetime.fromtimestamp(at, zone)
        if not self.contains(local.time().replace(tzinfo=None)):
            return at
        end = dt.datetime.combine(local.date(), self.end, zone)
        if end <= local:
            end += dt.timedelta(days=1)
        return end.timestamp()


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def quiet_hours_of(person: Person, centre: QuietHours | None) -> QuietHours | None:
    """The person's own quiet hours ("off": none), else the centre's."""
    if person.quiet_hours is None:
        return centre
    if person.quiet_hours.strip().lower() == "off":
        return None
    return QuietHours.parse(person.quiet_hours)


@dataclass(frozen=True, slots=True)
class DigestPolicy:
    debounce_seconds: float = 600.0
    max_wait_seconds: float = 3600.0
    quiet_hours: QuietHours | None = None
    public_url: str = "http://127.0.0.1:8000"

    def due_ignoring_quiet_hours(self, window: DigestWindow) -> float:
        return min(window.last_at + self.debounce_seconds, window.first_at + self.max_wait_seconds)

    def due_at(self, window: DigestWindow, person: Person) -> float:
        due = self.due_ignoring_quiet_hours(window)
        quiet = quiet_hours_of(person, self.quiet_hours)
        return quiet.release(due, person.timezone) if quiet else due

    def link(self, document: str) -> str:
        # The editor's page for one document (collab_server/web.py: /doc/{name}).
        return f"{self.public_url.rstrip('/')}/doc/{quote(document, safe='/:')}"


# -- merging ----------------------------------------------------------------------------------


@dataclass
class SectionDigest:
    added: dict[str, str] = field(default_factory=dict)
    edited: dict[str, str] = field(default_factory=dict)
    removed: dict[str, str] = field(default_factory=dict)
    fields: set[str] = field(default_factory=set)
    inserted_chars: int = 0
    deleted_chars: int = 0
    editors: list[str] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not (
            self.added
            or self.edited
            or self.removed
            or self.fields
            or self.inserted_chars
            or self.deleted_chars
        )


@dataclass
class Digest:
    document: str
    title: str
    sections: dict[Section, SectionDigest]

    @property
    def editors(self) -> list[str]:
        names: list[str] = []
        for section in self.sections.values():
            names.extend(n for n in section.editors if n not in names)
        return names

    def in_order(self) -> Digest:
        """The sections that say something, in the IEP's order."""
        sections = self.sections
        return Digest(
            self.document,
            self.title,
            {s: sections[s] for s in SECTION_ORDER if s in sections and not sections[s].is_empty()},
        )


def add_change(digest: Digest, change: ChangeSet) -> None:
    """Merge one ChangeSet into `digest`, section by section."""
    digest.title = change.title or digest.title
    for part in change.sections:
        merged = digest.sections.setdefault(part.section, SectionDigest())
        if change.editor.name not in merged.editors:
            merged.editors.append(change.editor.name)
        for item in part.added:
            merged.added[item.id] = item.title
            merged.removed.pop(item.id, None)
        for item in part.edited:
            if item.id in merged.added:
                merged.added[item.id] = item.title
            else:
                merged.edited[item.id] = item.title
        for item in part.removed:
            if merged.added.pop(item.id, None) is None:
                merged.edited.pop(item.id, None)
                merged.removed[item.id] = item.title
        merged.fields.update(part.fields)
        merged.inserted_chars += part.inserted_chars
        merged.deleted_chars += part.deleted_chars


def merge(document: str, changes: Sequence[ChangeSet], exclude_user: str | None) -> Digest:
    """Merge ChangeSets by section; the recipient's own edits are left out."""
    digest = Digest(document, "", {})
    for change in changes:
        if exclude_user is None or change.editor.user_id != exclude_user:
            add_change(digest, change)
        else:
            digest.title = change.title or digest.title
    return digest.in_order()


def digest_to_json(digest: Digest) -> str:
    return json.dumps(
        {
            "title": digest.title,
            "sections": {
                section.value: {
                    "added": part.added,
                    "edited": part.edited,
                    "removed": part.removed,
                    "fields": sorted(part.fields),
                    "inserted": part.inserted_chars,
                    "deleted": part.deleted_chars,
                    "editors": part.editors,
                }
                for section, part in digest.sections.items()
            },
        },
        ensure_ascii=False,
    )


def digest_from_json(document: str, raw: str) -> Digest:
    data = json.loads(raw)
    sections = {
        Section(name): SectionDigest(
            added=dict(part["added"]),
            edited=dict(part["edited"]),
            removed=dict(part["removed"]),
            fields=set(part["fields"]),
            inserted_chars=int(part["inserted"]),
            deleted_chars=int(part["deleted"]),
            editors=list(part["editors"]),
        )
        for name, part in data["sections"].items()
    }
    return Digest(document, str(data["title"]), sections)


# -- rendering --------------------------------------------------------------------------------

SECTION_NAMES: dict[Language, dict[Section, str]] = {
    Language.ENGLISH: {
        Section.STUDENT: "Student",
        Section.GOALS: "Goals",
        Section.ACCOMMODATIONS: "Accommodations",
        Section.SERVICES: "Services",
        Section.NOTES: "Notes",
        Section.META: "Plan details",
    },
    Language.ARABIC: {
        Section.STUDENT: "بيانات الطالب",
        Section.GOALS: "الأهداف",
        Section.ACCOMMODATIONS: "التسهيلات",
        Section.SERVICES: "الخدمات",
        Section.NOTES: "الملاحظات",
        Section.META: "بيانات الخطة",
    },
}

# CLDR plural categories: Arabic needs all six, English one/other.
PLURALS: dict[Language, dict[str, dict[str, str]]] = {
    Language.ENGLISH: {
        "items": {"one": "{n} item", "other": "{n} items"},
        "chars": {"one": "{n} character", "other": "{n} characters"},
    },
    Language.ARABIC: {
        "items": {
            "zero": "لا عناصر",
            "one": "عنصر واحد",
            "two": "عنصران",
            "few": "{n} عناصر",
            "many": "{n} عنصرًا",
            "other": "{n} عنصر",
        },
        "chars": {
            "zero": "لا أحرف",
            "one": "حرف واحد",
            "two": "حرفان",
            "few": "{n} أحرف",
            "many": "{n} حرفًا",
            "other": "{n} حرف",
        },
    },
}

PHRASES: dict[Language, dict[str, str]] = {
    Language.ENGLISH: {
        "added": "{count} added",
        "edited": "{count} edited",
        "removed": "{count} removed",
        "fields": "edited: {names}",
        "inserted": "+{chars}",
        "deleted": "-{chars}",
        "text": "edited ({changes})",
        "by": "by {names}",
        "subject": "IEP updated: {title}",
        "header": "Changes to {title}:",
        "open": "Open: {link}",
        "untitled": "your child's IEP",
    },
    Language.ARABIC: {
        "added": "أُضيف {count}",
        "edited": "عُدِّل {count}",
        "removed": "حُذف {count}",
        "fields": "عُدِّل: {names}",
        "inserted": "أُضيف {chars}",
        "deleted": "حُذف {chars}",
        "text": "{changes}",
        "by": "بواسطة {names}",
        "subject": "تحديث على الخطة: {title}",
        "header": "تغييرات على {title}:",
        "open": "للاطلاع: {link}",
        "untitled": "خطة طفلك التربوية",
    },
}


# Schema field names as a parent reads them; bookkeeping fields are not news.
FIELD_NAMES: dict[Language, dict[str, str]] = {
    Language.ENGLISH: {
        "name": "name",
        "dateOfBirth": "date of birth",
        "grade": "grade",
        "school": "school",
        "primaryLanguage": "primary language",
        "diagnosis": "diagnosis",
        "guardianName": "guardian",
        "title": "title",
        "language": "language",
    },
    Language.ARABIC: {
        "name": "الاسم",
        "dateOfBirth": "تاريخ الميلاد",
        "grade": "الصف",
        "school": "المدرسة",
        "primaryLanguage": "اللغة الأساسية",
        "diagnosis": "التشخيص",
        "guardianName": "ولي الأمر",
        "title": "العنوان",
        "language": "اللغة",
    },
}
HIDDEN = frozenset({"schemaVersion"})


def isolate(text: str) -> str:
    return f"{FSI}{text}{PDI}"


def plural(language: Language, word: str, n: int) -> str:
    forms = PLURALS[language][word]
    category = Locale.parse(language.value).plural_form(n)
    return forms.get(category, forms["other"]).format(n=n)


def _names(language: Language, names: Sequence[str]) -> str:
    return format_list([isolate(n) for n in names], locale=language.value)


def _titled(language: Language, key: str, titles: Sequence[str]) -> str:
    count = plural(language, "items", len(titles))
    named = [t for t in titles if t]
    phrase = PHRASES[language][key].format(count=count)
    if named:
        separator = "، " if language is Language.ARABIC else ", "
        phrase += " (" + separator.join(isolate(t) for t in named) + ")"
    return phrase


def render_section(language: Language, section: Section, part: SectionDigest) -> str | None:
    phrases = PHRASES[language]
    bits: list[str] = []
    if part.added:
        bits.append(_titled(language, "added", list(part.added.values())))
    if part.edited:
        bits.append(_titled(language, "edited", list(part.edited.values())))
    if part.removed:
        bits.append(_titled(language, "removed", list(part.removed.values())))
    separator = "، " if language is Language.ARABIC else ", "
    if part.fields:
        names = [FIELD_NAMES[language].get(f, f) for f in sorted(part.fields) if f not in HIDDEN]
        if names:
            bits.append(phrases["fields"].format(names=_names(language, names)))
    text_changes = []
    if part.inserted_chars:
        chars = plural(language, "chars", part.inserted_chars)
        text_changes.append(phrases["inserted"].format(chars=chars))
    if part.deleted_chars:
        chars = plural(language, "chars", part.deleted_chars)
        text_changes.append(phrases["deleted"].format(chars=chars))
    if text_changes:
        joiner = " و" if language is Language.ARABIC else ", "
        bits.append(phrases["text"].format(changes=joiner.join(text_changes)))
    if not bits:
        return None
    by = phrases["by"].format(names=_names(language, part.editors))
    line = f"{SECTION_NAMES[language][section]}: {separator.join(bits)} — {by}"
    return RLM + line if language is Language.ARABIC else line


def render(digest: Digest, language: Language, link: str) -> Message | None:
    """The digest as one message; None when nothing in it is news to a parent."""
    phrases = PHRASES[language]
    title = isolate(digest.title) if digest.title else phrases["untitled"]
    rendered = (render_section(language, s, part) for s, part in digest.sections.items())
    lines = [line for line in rendered if line]
    if not lines:
        return None
    header = phrases["header"].format(title=title)
    footer = phrases["open"].format(link=link)
    text = "\n".join([header, *(f"• {line}" for line in lines), "", footer])
    return Message(
        language=language,
        subject=phrases["subject"].format(title=digest.title or phrases["untitled"]),
        text=text,
        template_params=(flatten(title), flatten(" · ".join(lines)), link),
        link=link,
    )


def flatten(text: str) -> str:
    """A WhatsApp template parameter: no newlines or tabs, never more than 4 spaces in a row."""
    return re.sub(r"\s+", " ", text).strip()


# -- scheduling -------------------------------------------------------------------------------


@dataclass
class _OpenWindow:
    window: DigestWindow
    digest: Digest
    not_before: float = 0.0  # known not due before this (saves look-ups on every tick)


class DigestScheduler:
    def __init__(
        self,
        store: NotificationStore,
        directory: RecipientDirectory,
        policy: DigestPolicy,
        clock: Clock,
    ) -> None:
        self.store = store
        self.directory = directory
        self.policy = policy
        self.clock = clock
        self._windows: dict[tuple[str, str], _OpenWindow] = {}
        self._lock = asyncio.Lock()

    async def restore(self) -> None:
        async with self._lock:
            for window in await self.store.windows():
                key = (window.document, window.recipient_id)
                if window.summary is None:
                    # Saved by a release that kept no summary: its changes cannot be named.
                    log.warning("digest_window_without_summary", document=window.document)
                    digest = Digest(window.document, "", {})
                else:
                    digest = digest_from_json(window.document, window.summary)
                self._windows[key] = _OpenWindow(window, digest)
        if self._windows:
            log.info("digest_windows_restored", windows=len(self._windows))

    def forget(self) -> None:
        """Drop the windows held in memory (another process leads the jobs now)."""
        self._windows.clear()

    def window(self, document: str, recipient_id: str) -> DigestWindow | None:
        open_window = self._windows.get((document, recipient_id))
        return open_window.window if open_window else None

    async def record(
        self,
        document: str,
        changes: Sequence[ChangeSet],
        through_seq: int,
        checkpoint: Checkpoint | None = None,
    ) -> None:
        """Add `changes` (log entries up to `through_seq`) to their recipients' windows, and
        save those windows, the document's watermark and `checkpoint` in one transaction:
        a change is in a window exactly when the watermark has passed it."""
        recipient_ids = await self.directory.digest_recipient_ids(document) if changes else ()
        now = self.clock.now()
        async with self._lock:
            touched: dict[tuple[str, str], _OpenWindow] = {}
            for change in changes:
                for recipient_id in recipient_ids:
                    if recipient_id == change.editor.user_id:
                        continue  # their own edit: nothing to tell them
                    key = (document, recipient_id)
                    open_window = self._windows.get(key)
                    if open_window is None:
                        window = DigestWindow(
                            document, recipient_id, now, now, change.seq - 1, change.seq
                        )
                        open_window = _OpenWindow(window, Digest(document, "", {}))
                        self._windows[key] = open_window
                    else:
                        open_window.window = replace(
                            open_window.window,
                            last_at=now,
                            through_seq=max(open_window.window.through_seq, change.seq),
                        )
                        open_window.not_before = 0.0
                    add_change(open_window.digest, change)
                    touched[key] = open_window
            saved = [replace(w.window, summary=digest_to_json(w.digest)) for w in touched.values()]
            await self.store.save_windows(document, through_seq, saved, checkpoint)

    async def flush_due(self) -> int:
        """Close every window that is due now; returns how many digests were written."""
        written = 0
        async with self._lock:
            for key, open_window in list(self._windows.items()):
                now = self.clock.now()
                window = open_window.window
                if max(open_window.not_before, self.policy.due_ignoring_quiet_hours(window)) > now:
                    continue  # quiet hours only ever delay: no look-up needed yet
                try:
                    closed, wrote = await self._close_if_due(open_window, now)
                except Exception:
                    # One broken window must not hold up the others.
                    log.exception("digest_close_failed", document=window.document)
                    open_window.not_before = now + 60
                    continue
                written += wrote
                if closed:
                    del self._windows[key]
        return written

    async def _close_if_due(self, open_window: _OpenWindow, now: float) -> tuple[bool, bool]:
        """(closed, a digest was written)."""
        window = open_window.window
        person = await self.directory.person(window.recipient_id)
        if person is None:
            await self.store.close_window(window, None)
            return True, False
        due = self.policy.due_at(window, person)
        if due > now:
            open_window.not_before = due
            return False, False
        return True, await self._close(open_window, person)

    async def _close(self, open_window: _OpenWindow, person: Person) -> bool:
        window = open_window.window
        digest = open_window.digest.in_order()
        channels = person.delivery_channels()
        message = render(digest, person.language, self.policy.link(window.document))
        if message is None or not channels:
            await self.store.close_window(window, None)
            return False
        now = self.clock.now()
        entry = OutboxEntry(
            key=f"digest:{window.document}:{person.user_id}:{window.from_seq}",
            document=window.document,
            recipient_id=person.user_id,
            kind=MessageKind.DIGEST,
            message=message,
            channels=channels,
            next_attempt_at=now,
            created_at=now,
            updated_at=now,
        )
        inserted = await self.store.close_window(window, entry)
        log.info(
            "digest_written",
            document=window.document,
            recipient=person.user_id,
            sections=len(digest.sections),
            editors=len(digest.editors),
            duplicate=not inserted,
        )
        return inserted
