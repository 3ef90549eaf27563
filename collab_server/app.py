"""The app factory: `create_app` wires the core from objects it is given (store, extensions,
authenticator, routes, services). Turning settings into those objects is the composition
root's job (`iep_collab.composition`), above the core.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from collab_server.body_limit import BodyLimits, serve_capped
from collab_server.cluster import Bus, DocumentOwnership
from collab_server.errors import StoreError
from collab_server.hooks import Extension, Hooks
from collab_server.identity import AnonymousAuthenticator, Authenticator
from collab_server.join_budget import JoinBudget
from collab_server.limits import RateLimits
from collab_server.metrics import Metrics
from collab_server.protocol import CloseCode
from collab_server.registry import DocumentUpgrade, Registry, RegistryLimits
from collab_server.replication import ClusterStore
from collab_server.settings import Settings
from collab_server.store import DocumentStore
from collab_server.sync_endpoint import SyncEndpoint, SyncLimits, sync_document_path

log = structlog.get_logger("collab.app")

READY_TIMEOUT_SECONDS = 2.0


class Service(Protocol):
    """Something that runs beside the server: started once the store is open, closed after
    the registry (e.g. the notification outbox)."""

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...


@dataclass
class CollabServer:
    """What the routes and the process entry point share; lives on `app.state.collab`."""

    settings: Settings
    store: DocumentStore
    hooks: Hooks
    registry: Registry
    metrics: Metrics
    authenticator: Authenticator
    startup_error: str | None = None  # why the store could not be opened, for the command

    async def drain(self) -> None:
        """SIGTERM: refuse new sockets, store everything, close sockets with 1001."""
        self.registry.closing = True
        flushed = await self.registry.flush()
        await self.registry.close_connections(CloseCode.GOING_AWAY, "server shutting down")
        log.info("drained", flushed=flushed)


def create_app(
    settings: Settings,
    *,
    store: DocumentStore,
    extensions: Sequence[Extension] = (),
    authenticator: Authenticator | None = None,
    extra_routes: Sequence[BaseRoute] = (),
    services: Sequence[Service] = (),
    ownership: DocumentOwnership | None = None,
    bus: Bus | None = None,
    cluster_store: ClusterStore | None = None,
    body_limits: BodyLimits | None = None,
    upgrade: DocumentUpgrade | None = None,
) -> Starlette:
    metrics = Metrics()
    hooks = Hooks(extensions)
    limits = RegistryLimits(
        unload_grace_seconds=settings.unload_grace_seconds,
        compact_max_updates=settings.compact_max_updates,
        compact_max_bytes=settings.compact_max_bytes,
        group_commit_window_seconds=settings.group_commit_window_ms / 1000,
        store_retry_max_seconds=settings.store_retry_max_seconds,
        max_unstored_bytes=settings.max_unstored_bytes,
    )
    join_budget = JoinBudget(settings.join_budget_bytes, settings.join_patience_seconds)
    registry = Registry(
        store,
        hooks,
        metrics,
        limits,
        ownership=ownership,
        bus=bus,
        cluster_store=cluster_store,
        join_budget=join_budget,
        upgrade=upgrade,
    )
    server = CollabServer(
        settings, store, hooks, registry, metrics, authenticator or AnonymousAuthenticator()
    )
    sync = SyncEndpoint(
        registry,
        hooks,
        server.authenticator,
        metrics,
        SyncLimits(
            settings.max_message_bytes,
            settings.send_backlog_bytes,
            RateLimits(
                settings.rate_messages_per_second,
                settings.rate_message_burst,
                settings.rate_bytes_per_second,
                settings.rate_byte_burst,
                settings.max_connections_per_user,
            ),
        ),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            await store.open()
        except StoreError as exc:
            server.startup_error = str(exc)
            log.error("store_unavailable", error=str(exc))
            raise
        await registry.start()
        for service in services:
            await service.start()
        log.info("serving", store=type(store).__name__)
        try:
            yield
        finally:
            if not registry.closing:
                await server.drain()
            await registry.aclose()
            await join_budget.aclose()
            for service in reversed(services):
                await service.aclose()
            await hooks.aclose()
            await store.aclose()

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def readyz(request: Request) -> Response:
        problems = []
        if not registry.store_healthy:
            problems.append(f"store writes are failing ({registry.store_error})")
        conflicts = registry.recent_conflicts()
        if conflicts:
            problems.append(f"log conflicts in the last 5 minutes: {conflicts}")
        try:
            await asyncio.wait_for(store.ping(), READY_TIMEOUT_SECONDS)
        except Exception as exc:
            problems.append(f"store unreachable: {type(exc).__name__}")
        if bus is not None:
            try:
                if not bus.connected:
                    raise ConnectionError("down")
                await asyncio.wait_for(bus.ping(), READY_TIMEOUT_SECONDS)
            except Exception as exc:
                problems.append(f"redis unreachable: {type(exc).__name__}")
            try:
                await asyncio.wait_for(registry.ownership.ping(), READY_TIMEOUT_SECONDS)
            except Exception as exc:
                problems.append(f"ownership locks unreachable: {type(exc).__name__}")
        if registry.closing:
            problems.append("shutting down")
        status = 503 if problems else 200
        return JSONResponse({"ready": not problems, "problems": problems}, status_code=status)

    metrics_token = settings.metrics_token.get_secret_value() if settings.metrics_token else None

    async def metrics_endpoint(request: Request) -> Response:
        if metrics_token is not None and not hmac.compare_digest(
            request.headers.get("authorization", "").encode(), f"Bearer {metrics_token}".encode()
        ):
            return Response(
                "metrics need COLLAB_METRICS_TOKEN as a bearer token",
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    routes: list[BaseRoute] = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics_endpoint),
        *extra_routes,
    ]
    app = CollabApp(sync, body_limits or BodyLimits(), routes=routes, lifespan=lifespan)
    app.state.collab = server
    return app


class CollabApp(Starlette):
    """Starlette, with `WS /sync/{name}` served straight from the ASGI entry.

    A socket that went through the middleware stack and router kept their coroutine frames
    for its whole life; the sync endpoint needs neither, and an idle socket should hold as
    little as possible. Everything else is routed as usual.
    """

    def __init__(self, sync: SyncEndpoint, body_limits: BodyLimits, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._sync = sync
        self._body_limits = body_limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and sync_document_path(scope) is not None:
            scope["app"] = self
            await self._sync.serve(scope, receive, send)
            return
        if scope["type"] == "http":
            await serve_capped(super().__call__, self._body_limits, scope, receive, send)
            return
        await super().__call__(scope, receive, send)
