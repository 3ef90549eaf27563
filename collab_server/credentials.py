"""What a client presented, read the same way from a WebSocket upgrade and an HTTP request.

A bearer token in the `Authorization` header wins over `?token=` (browsers cannot set headers
on a WebSocket, so the editor uses the query). `?name=` only matters to the development-mode
authenticator; verified users get their name from the people records or their token.
"""

from __future__ import annotations

from starlette.requests import HTTPConnection

from collab_server.identity import Credentials


def request_credentials(connection: HTTPConnection) -> Credentials:
    header = connection.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    token = value.strip() if scheme.lower() == "bearer" else ""
    return Credentials(
        token or connection.query_params.get("token") or None,
        connection.query_params.get("name") or None,
    )
