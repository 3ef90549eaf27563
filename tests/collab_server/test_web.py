"""The editor's pages, assets and config endpoint; and the committed bundle is current."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from collab_server.settings import Settings, load_settings
from collab_server.web import ASSETS_DIR
from iep_collab.composition import build_app

ROOT = Path(__file__).resolve().parents[2]
BUNDLE_FILES = ("app.js", "app.css", "index.html", "sessions.js", "offline.js")


def client(settings: Settings) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=build_app(settings))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.fixture
def dev_settings(tmp_path: Path) -> Settings:
    return load_settings({}, database_url=f"sqlite:///{tmp_path}/collab.db")


async def test_pages_and_assets_are_served(dev_settings: Settings) -> None:
    async with client(dev_settings) as http:
        for path in ("/", "/doc/centre/student-42/iep-2026"):
            page = await http.get(path)
            assert page.status_code == 200
            assert '<script type="module" src="/assets/app.js">' in page.text
        script = await http.get("/assets/app.js")
        assert script.status_code == 200
        assert "javascript" in script.headers["content-type"]
        assert (await http.get("/assets/app.css")).status_code == 200
        assert (await http.get("/assets/missing.js")).status_code == 404
        # The offline shell's worker, from the root: its scope is every page.
        worker = await http.get("/offline.js")
        assert worker.status_code == 200 and "javascript" in worker.headers["content-type"]


async def test_config_in_development_mode(dev_settings: Settings) -> None:
    async with client(dev_settings) as http:
        config = (await http.get("/api/config")).json()
    assert config == {"mode": "development"}


async def test_config_in_supabase_mode_gives_url_and_anon_key(dev_settings: Settings) -> None:
    settings = dev_settings.model_copy(
        update={
            "supabase_url": "https://project.supabase.co",
            "supabase_anon_key": "public-anon-key",
            "supabase_jwt_secret": SecretStr("x" * 40),
        }
    )
    async with client(settings) as http:
        config = (await http.get("/api/config")).json()
    assert config == {
        "mode": "supabase",
        "supabaseUrl": "https://project.supabase.co",
        "supabaseAnonKey": "public-anon-key",
    }
    assert "x" * 40 not in str(config)


async def test_access_answers_the_role_and_refuses_without_a_token(
    dev_settings: Settings,
) -> None:
    async with client(dev_settings) as http:
        access = await http.get("/api/access/centre/a/iep-2026")
        assert access.json() == {"role": "editor", "canWrite": True}
        assert (await http.get("/api/access/centre/bad%20name")).status_code == 400
    settings = dev_settings.model_copy(update={"supabase_jwt_secret": SecretStr("y" * 40)})
    async with client(settings) as http:
        assert (await http.get("/api/access/centre/a/iep-2026")).status_code == 401


def test_committed_bundle_matches_its_sources(tmp_path: Path) -> None:
    """Rebuild with the pinned esbuild and compare bytes: run `make bundle` when this fails."""
    node = shutil.which("node")
    assert node, "Node is needed to check the bundle (make node-deps)"
    assert (ROOT / "static" / "node_modules" / "esbuild").is_dir(), "run `make node-deps`"
    subprocess.run(
        [node, str(ROOT / "static" / "build.mjs"), str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    stale = [
        name
        for name in BUNDLE_FILES
        if (tmp_path / name).read_bytes() != (ASSETS_DIR / name).read_bytes()
    ]
    assert not stale, f"collab_server/static/{stale} is stale against static/: run `make bundle`"
