"""The embedded default loads only what it uses: no Postgres driver, no token libraries."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_PROBE = """
import sys
from iep_collab.composition import build_app
from collab_server.settings import load_settings
build_app(load_settings({{}}, database_url="sqlite:///{path}"))
print(",".join(m for m in ("asyncpg", "jwt", "cryptography") if m in sys.modules))
"""


def test_a_development_server_on_sqlite_does_not_load_postgres_or_token_libraries(
    tmp_path: Path,
) -> None:
    # ~11 MB of resident memory between them; a server configured for them loads them.
    probe = _PROBE.format(path=tmp_path / "collab.db")
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    assert loaded == ""
