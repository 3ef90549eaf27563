"""What sessions need from a student's IEP: the name and the goals.

The IEP schema is read here only (`student_profile`), so a new schema version changes this
file and nothing else of the sessions feature.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from pycrdt import Array, Doc, Text

from integrations.iep import Layout, Section, item_ref

_NUMBER = re.compile(r"[-+]?\d+(?:[.,]\d+)?")


@dataclass(frozen=True, slots=True)
class Goal:
    id: str
    title: str
    baseline: float | None  # the first number in the goal's baseline text, if any
    target: float | None


@dataclass(frozen=True, slots=True)
class StudentProfile:
    name: str
    goals: dict[str, Goal]


def first_number(text: str) -> float | None:
    """`"35 words per minute"` -> 35.0; Arabic-Indic digits count too; None without one."""
    normalised = "".join(
        str(unicodedata.digit(c)) if c.isdigit() else c for c in text.replace("\u066b", ".")
    )
    match = _NUMBER.search(normalised)
    return float(match.group().replace(",", ".")) if match else None


def _text(value: Any) -> str:
    return str(value) if isinstance(value, str | Text) else ""


def student_profile(doc: Doc[Any]) -> StudentProfile:
    """The student's name and goals from an IEP document (either schema, docs/iep-schema.md)."""
    layout = Layout(doc)
    name = layout.student_name()
    goals: dict[str, Goal] = {}
    array = layout.section(Section.GOALS)
    if isinstance(array, Array):
        for item in array:
            ref = item_ref(item)
            if ref is None:
                continue
            goals[ref.id] = Goal(
                ref.id,
                ref.title,
                first_number(_text(item.get("baseline"))),
                first_number(_text(item.get("target"))),
            )
    return StudentProfile(name.strip(), goals)
