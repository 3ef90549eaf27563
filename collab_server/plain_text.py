"""Text people type where it enters: names, e-mail addresses, ids.

Control characters have no place in them: a NUL cannot even be stored in Postgres text, and
a bidi override or a line break inside a name misleads whoever reads it. JSON bodies may not
carry a NUL anywhere (the escape is the only way one gets in; raw control characters are
already invalid JSON).
"""

from __future__ import annotations

import re

# C0 and C1 controls, bidi embeddings and overrides (the marks U+200E/F stay: Arabic uses
# them), and surrogates.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\ud800-\udfff]")
_JSON_NUL = re.compile(rb"\\u0000", re.IGNORECASE)


def has_control_characters(text: str) -> bool:
    return _CONTROL.search(text) is not None


def json_holds_nul(raw: bytes) -> bool:
    return _JSON_NUL.search(raw) is not None
