"""Every request body is capped before it is read, whether its length is declared or not."""

from __future__ import annotations

import httpx
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from collab_server.app import create_app
from collab_server.body_limit import DEFAULT_MAX_BODY_BYTES, BodyLimits
from collab_server.settings import Settings
from persistence import store_from_settings
from tests.support.rawhttp import declare_body, stream_body
from tests.support.servers import serve_in_process


async def body_size(request: Request) -> Response:
    return PlainTextResponse(str(len(await request.body())))


async def test_bodies_past_their_paths_cap_get_413_and_the_rest_are_served(
    store_settings: Settings,
) -> None:
    routes = [
        Route("/api/echo", body_size, methods=["POST"]),
        Route("/big/echo", body_size, methods=["POST"]),
    ]
    app = create_app(
        store_settings,
        store=store_from_settings(store_settings),
        extra_routes=routes,
        body_limits=BodyLimits(by_path_prefix={"/big/": 1024 * 1024}),
    )
    async with serve_in_process(app) as server, httpx.AsyncClient() as client:
        fits = await client.post(f"{server.http}/api/echo", content=b"x" * DEFAULT_MAX_BODY_BYTES)
        over = await client.post(
            f"{server.http}/api/echo", content=b"x" * (DEFAULT_MAX_BODY_BYTES + 1)
        )
        declared = await declare_body(server.port, "/api/echo", 1 << 30)
        streamed, _ = await stream_body(server.port, "/api/echo", 16 * 1024, max_chunks=64)
        big = await client.post(f"{server.http}/big/echo", content=b"x" * 512 * 1024)
        still_served = await client.get(f"{server.http}/healthz")
    assert (fits.status_code, fits.text) == (200, str(DEFAULT_MAX_BODY_BYTES))
    assert over.status_code == declared == streamed == 413
    assert (big.status_code, big.text) == (200, str(512 * 1024))
    assert still_served.status_code == 200
