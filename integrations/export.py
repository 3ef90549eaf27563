"""A version as a PDF (A4, the IEP's language for headings, Arabic shaped and laid out right to
left, a header with student, version name and date, a signature block) or as JSON.

The PDF is HTML and CSS laid out by WeasyPrint, which shapes text with HarfBuzz through Pango:
Arabic letters join, bidirectional lines follow the Unicode algorithm, and the fonts it uses
are embedded (subsets). Fonts with Arabic glyphs (Noto) are installed by the Makefile's set-up.
Each field's direction follows its first strong character, as `dir="auto"` would in a browser.
"""

from __future__ import annotations

import datetime as dt
import html
import unicodedata
from collections.abc import Mapping
from typing import Any

from integrations.iep_content import (
    ITEM_FIELD_ORDER,
    ITEM_SECTIONS,
    STUDENT_FIELD_ORDER,
    display,
    item_id,
)
from integrations.record_contracts import Version

LABELS: dict[str, dict[str, str]] = {
    "en": {
        "iep": "Individualized Education Program",
        "student": "Student",
        "goals": "Goals",
        "accommodations": "Accommodations",
        "services": "Services",
        "notes": "Notes",
        "version": "Version",
        "date": "Date",
        "hash": "Content SHA-256",
        "signatures": "Signatures",
        "parent": "Parent / guardian",
        "therapist": "Therapist",
        "coordinator": "IEP coordinator",
        "signature": "Signature",
        "none": "None recorded.",
        "page": "Page",
        "name": "Name",
        "dateOfBirth": "Date of birth",
        "grade": "Grade",
        "school": "School",
        "primaryLanguage": "Primary language",
        "diagnosis": "Diagnosis",
        "guardianName": "Guardian",
        "title": "Title",
        "area": "Area",
        "baseline": "Baseline",
        "target": "Target",
        "status": "Status",
        "details": "Details",
        "provider": "Provider",
        "frequency": "Frequency",
        "minutesPerSession": "Minutes per session",
        "status_not_started": "Not started",
        "status_in_progress": "In progress",
        "status_met": "Met",
        "status_discontinued": "Discontinued",
    },
    "ar": {
        "iep": "الخطة التربوية الفردية",
        "student": "الطالب",
        "goals": "الأهداف",
        "accommodations": "التسهيلات",
        "services": "الخدمات",
        "notes": "ملاحظات",
        "version": "النسخة",
        "date": "التاريخ",
        "hash": "بصمة المحتوى SHA-256",
        "signatures": "التواقيع",
        "parent": "ولي الأمر",
        "therapist": "المعالج",
        "coordinator": "منسق الخطة",
        "signature": "التوقيع",
        "none": "لا يوجد.",
        "page": "صفحة",
        "name": "الاسم",
        "dateOfBirth": "تاريخ الميلاد",
        "grade": "الصف",
        "school": "المدرسة",
        "primaryLanguage": "اللغة الأم",
        "diagnosis": "التشخيص",
        "guardianName": "ولي الأمر",
        "title": "العنوان",
        "area": "المجال",
        "baseline": "المستوى الحالي",
        "target": "المستوى المستهدف",
        "status": "الحالة",
        "details": "التفاصيل",
        "provider": "مقدم الخدمة",
        "frequency": "التكرار",
        "minutesPerSession": "دقائق الجلسة",
        "status_not_started": "لم يبدأ",
        "status_in_progress": "قيد التنفيذ",
        "status_met": "تحقق",
        "status_discontinued": "متوقف",
    },
}

CSS = """
@page {
  size: A4;
  margin: 26mm 18mm 20mm 18mm;
  @top-center { content: element(header); width: 100%; }
  @bottom-center { content: counter(page) " / " counter(pages); font-size: 8pt; color: #555; }
}
html { font-family: "Noto Sans", "Noto Naskh Arabic", "Noto Sans Arabic", "DejaVu Sans", sans-serif;
       font-size: 10.5pt; color: #1f2933; line-height: 1.45; }
header.running { position: running(header); font-size: 8.5pt; color: #444;
                 border-bottom: 0.6pt solid #999; padding-bottom: 2mm; display: flex; }
header.running span { margin-inline-end: 6mm; }
h1 { font-size: 16pt; margin: 0 0 2mm; }
h2 { font-size: 12.5pt; margin: 6mm 0 2mm; border-bottom: 0.6pt solid #ccc; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: start; vertical-align: top; padding: 1.2mm 2mm; border: 0.4pt solid #ddd; }
th { width: 32%; background: #f3f5f8; font-weight: 600; }
.item { margin: 0 0 3mm; page-break-inside: avoid; }
.item h3 { font-size: 11pt; margin: 0 0 1mm; }
.notes { white-space: pre-wrap; }
.meta { color: #555; font-size: 9pt; margin-bottom: 4mm; }
.hash { font-family: "DejaVu Sans Mono", monospace; font-size: 7.5pt; direction: ltr;
        unicode-bidi: isolate; }
.signatures { margin-top: 10mm; page-break-inside: avoid; }
.signatures td { height: 14mm; }
[dir] { unicode-bidi: isolate; }
"""


def text_direction(text: str) -> str:
    """`rtl` if the first strong character is right-to-left, else `ltr` (HTML's dir=auto)."""
    for char in text:
        kind = unicodedata.bidirectional(char)
        if kind in ("R", "AL"):
            return "rtl"
        if kind == "L":
            return "ltr"
    return "ltr"


def _value(text: str) -> str:
    return f'<span dir="{text_direction(text)}">{html.escape(text)}</span>'


def document_language(data: Mapping[str, Any]) -> str:
    meta = data.get("meta")
    language = meta.get("language") if isinstance(meta, dict) else None
    return language if language in LABELS else "en"


def render_html(data: Mapping[str, Any], version: Version, *, document: str) -> str:
    lang = document_language(data)
    label = LABELS[lang]
    found_meta, found_student = data.get("meta"), data.get("student")
    meta: dict[str, Any] = found_meta if isinstance(found_meta, dict) else {}
    student: dict[str, Any] = found_student if isinstance(found_student, dict) else {}
    title = display(meta.get("title")) or document
    student_name = display(student.get("name"))
    date = dt.datetime.fromtimestamp(version.created_at, tz=dt.UTC).strftime("%Y-%m-%d")
    parts = [
        f'<!doctype html><html lang="{lang}" dir="{"rtl" if lang == "ar" else "ltr"}"><head>',
        f'<meta charset="utf-8"><title>{html.escape(title)}</title><style>{CSS}</style></head>',
        '<body><header class="running">',
        f"<span>{label['student']}: {_value(student_name)}</span>",
        f"<span>{label['version']}: {_value(version.name)}</span>",
        f"<span>{label['date']}: {date}</span></header>",
        f"<h1>{_value(title)}</h1>",
        f'<p class="meta">{label["iep"]} · {label["version"]}: {_value(version.name)} · ',
        f"{label['date']}: {date}<br>{label['hash']}: ",
        f'<span class="hash">{version.content_sha256}</span></p>',
        f"<h2>{label['student']}</h2><table>",
    ]
    keys = [k for k in STUDENT_FIELD_ORDER if k in student] + sorted(
        k for k in student if k not in STUDENT_FIELD_ORDER
    )
    for key in keys:
        parts.append(f"<tr><th>{label.get(key, html.escape(key))}</th>")
        parts.append(f"<td>{_value(display(student[key]))}</td></tr>")
    parts.append("</table>")
    for section in ITEM_SECTIONS:
        parts.append(f"<h2>{label[section]}</h2>")
        items = [i for i in data.get(section) or [] if item_id(i) is not None]
        if not items:
            parts.append(f"<p>{label['none']}</p>")
        for index, item in enumerate(items, start=1):
            parts.append(
                f'<div class="item"><h3>{index}. {_value(display(item.get("title")))}</h3><table>'
            )
            order = ITEM_FIELD_ORDER.get(section, ())
            fields = [k for k in order if k in item and k != "title"] + sorted(
                k for k in item if k not in order and k not in ("id", "title")
            )
            for key in fields:
                value = display(item[key])
                if key == "status":
                    value = label.get(f"status_{value}", value)
                parts.append(f"<tr><th>{label.get(key, html.escape(key))}</th>")
                parts.append(f"<td>{_value(value)}</td></tr>")
            parts.append("</table></div>")
    notes = display(data.get("notes"))
    parts.append(f"<h2>{label['notes']}</h2>")
    parts.append(
        f'<div class="notes" dir="{text_direction(notes)}">{html.escape(notes)}</div>'
        if notes
        else f"<p>{label['none']}</p>"
    )
    parts.append(f'<div class="signatures"><h2>{label["signatures"]}</h2><table>')
    for who in ("parent", "therapist", "coordinator"):
        parts.append(
            f"<tr><th>{label[who]}</th><td>{label['name']}:</td>"
            f"<td>{label['signature']}:</td><td>{label['date']}:</td></tr>"
        )
    parts.append("</table></div></body></html>")
    return "".join(parts)


def render_pdf(data: Mapping[str, Any], version: Version, *, document: str) -> bytes:
    """CPU-bound (about a second for a full IEP): run it in a worker thread."""
    from weasyprint import HTML  # heavy import, loaded with the first export

    pdf: bytes = HTML(string=render_html(data, version, document=document)).write_pdf()
    return pdf


def export_json(data: Mapping[str, Any], version: Version) -> dict[str, Any]:
    return {"version": version.to_json(), "content": dict(data)}
