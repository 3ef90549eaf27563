"""Importing a store loads a store: not the web app, the composition root or the digests."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "module",
    ["persistence.sqlite", "persistence.postgres", "persistence.sqlite_notifications"],
)
def test_a_store_imports_without_the_server(module: str) -> None:
    probe = (
        f"import sys, {module}; "
        "loaded = [m for m in ('collab_server.app', 'collab_server.registry', 'iep_collab', "
        "'integrations.notifications', 'uvicorn') if m in sys.modules]; "
        "print(','.join(loaded))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == ""
