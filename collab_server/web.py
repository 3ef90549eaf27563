"""The browser editor: its pages, its built assets and the two small endpoints it reads.

`/` (the document list), `/doc/{name}` (one IEP) and `/ack/{id}` (a parent's acknowledgement of
a version) serve the same page; the bundle routes on the path. `/sessions` (therapy sessions)
is its own small bundle. The assets are built from
`static/` by `make bundle` into `collab_server/static/` and ship inside the package, so an
installed server needs no Node.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import structlog
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from collab_server.credentials import request_credentials
from collab_server.errors import InvalidDocumentName, Rejected
from collab_server.identity import Authenticator
from collab_server.names import validate_document_name
from collab_server.protocol import CloseCode
from collab_server.settings import Settings

log = structlog.get_logger("collab.web")

ASSETS_DIR = Path(__file__).resolve().parent / "static"
# The page and its unhashed assets must be revalidated, or a deploy leaves stale editors.
_REVALIDATE = {"cache-control": "no-cache"}
_HTTP_STATUS: dict[int, int] = {CloseCode.UNAUTHORIZED: 401, CloseCode.FORBIDDEN: 403}


class SignInMode(StrEnum):
    DEVELOPMENT = "development"
    SUPABASE = "supabase"


@dataclass(frozen=True, slots=True)
class WebConfig:
    """What the page needs to sign people in; the anon key is public by Supabase's design."""

    mode: SignInMode
    supabase_url: str | None = None
    supabase_anon_key: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> WebConfig:
        if not settings.auth_configured:
            return cls(SignInMode.DEVELOPMENT)
        return cls(SignInMode.SUPABASE, settings.supabase_url, settings.supabase_anon_key)

    def to_json(self) -> dict[str, str | None]:
        body: dict[str, str | None] = {"mode": self.mode.value}
        if self.mode is SignInMode.SUPABASE:
            body["supabaseUrl"] = self.supabase_url
            body["supabaseAnonKey"] = self.supabase_anon_key
        return body


class EditorPages:
    def __init__(self, config: WebConfig, assets: Path = ASSETS_DIR) -> None:
        self.config = config
        self.assets = assets

    async def page(self, request: Request) -> Response:
        return FileResponse(self.assets / "index.html", headers=_REVALIDATE)

    async def service_worker(self, request: Request) -> Response:
        """The offline app shell (static/src/offline.js), served from `/` so its scope is
        every page."""
        return FileResponse(
            self.assets / "offline.js", media_type="text/javascript", headers=_REVALIDATE
        )

    async def sessions_page(self, request: Request) -> Response:
        return FileResponse(self.assets / "sessions.html", headers=_REVALIDATE)

    async def config_endpoint(self, request: Request) -> Response:
        return JSONResponse(self.config.to_json(), headers=_REVALIDATE)

    async def access(self, request: Request) -> Response:
        """The caller's role on one document, so the page can start read-only for viewers.

        The sync socket enforces the same decision; this only saves a refused first write.
        """
        try:
            name = validate_document_name(request.path_params["name"])
        except InvalidDocumentName as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        authenticator: Authenticator = request.app.state.collab.authenticator
        try:
            identity = await authenticator.authenticate(
                request_credentials(request), name, opening=False
            )
        except Rejected as exc:
            status = _HTTP_STATUS.get(exc.code, 403)
            return JSONResponse({"error": exc.reason}, status_code=status)
        return JSONResponse(
            {"role": identity.role.value, "canWrite": identity.can_write},
            headers=_REVALIDATE,
        )


def web_routes(config: WebConfig, assets: Path = ASSETS_DIR) -> list[BaseRoute]:
    if not (assets / "app.js").is_file():
        # A source checkout before `make bundle`: the API still works, say why pages 404.
        log.warning("editor_bundle_missing", path=str(assets))
    pages = EditorPages(config, assets)
    return [
        Route("/", pages.page, methods=["GET", "HEAD"]),
        Route("/doc/{name:path}", pages.page, methods=["GET", "HEAD"]),
        Route("/ack/{ack_id}", pages.page, methods=["GET", "HEAD"]),
        Route("/sessions", pages.sessions_page, methods=["GET", "HEAD"]),
        Route("/settings", pages.page, methods=["GET", "HEAD"]),
        Route("/offline.js", pages.service_worker, methods=["GET"]),
        Route("/api/config", pages.config_endpoint, methods=["GET"]),
        Route("/api/access/{name:path}", pages.access, methods=["GET"]),
        Mount("/assets", StaticFiles(directory=assets, check_dir=False), name="assets"),
    ]
