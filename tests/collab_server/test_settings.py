"""Bad configuration fails at start with a message naming the variable to set."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from collab_server.errors import ConfigError
from collab_server.settings import load_settings


def test_defaults_use_an_sqlite_file_under_data() -> None:
    settings = load_settings({})
    assert settings.database_url == "sqlite:///data/collab.db"
    assert settings.sqlite_path() == Path("data/collab.db")
    assert load_settings({"DATABASE_URL": "sqlite:////var/x.db"}).sqlite_path() == Path("/var/x.db")


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"COLLAB_UNLOAD_GRACE_SECONDS": "soon"}, "COLLAB_UNLOAD_GRACE_SECONDS"),
        ({"COLLAB_DB_SCHEMA": "Bad-Schema"}, "COLLAB_DB_SCHEMA"),
        ({"COLLAB_MAX_MESSAGE_BYTES": "10"}, "COLLAB_MAX_MESSAGE_BYTES"),
    ],
)
def test_bad_values_name_the_variable(environ: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        load_settings(environ)


def test_the_server_refuses_to_start_with_bad_config(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "iep_collab", "--port", "0"],
        env={"DATABASE_URL": "mysql://nope", "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0
    assert "DATABASE_URL" in result.stderr
