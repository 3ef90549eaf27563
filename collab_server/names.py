"""Document names: 1-255 of letters, digits and . _ - : /, not starting with / or ., and
every `/`-separated segment a real one (no empty, `.` or `..` segment): `a//b`, `a/./b` and
`a/b/` would otherwise open other documents than `a/b` and split one IEP across names."""

from __future__ import annotations

import re

from collab_server.errors import InvalidDocumentName

_NAME = re.compile(r"[A-Za-z0-9._:/-]{1,255}")


def validate_document_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise InvalidDocumentName(
            "document names are 1-255 characters of letters, digits and . _ - : /"
        )
    if name[0] in "/.":
        raise InvalidDocumentName("document names may not start with '/' or '.'")
    if any(segment in ("", ".", "..") for segment in name.split("/")):
        raise InvalidDocumentName(
            "document names may not contain empty, '.' or '..' segments, nor end with '/'"
        )
    return name
