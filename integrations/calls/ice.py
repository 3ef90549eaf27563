"""ICE servers a browser may use for a call: STUN as configured, and TURN with credentials we
mint from a secret shared with the TURN server (the TURN REST API scheme coturn implements with
`use-auth-secret`): the username is `<expiry unix time>:<user id>`, the password the base64 of
HMAC-SHA1(secret, username). The TURN server refuses them after the expiry; nothing is stored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class IceConfig:
    stun_urls: tuple[str, ...] = ()
    turn_urls: tuple[str, ...] = ()
    turn_secret: str = ""
    turn_ttl_seconds: int = 4 * 3600  # a call's credentials last as long as a long meeting
    relay_only: bool = False  # all audio through TURN: no one learns another's address

    @property
    def transport_policy(self) -> str:
        return "relay" if self.relay_only else "all"


def turn_credentials(secret: str, user_id: str, expires_at: int) -> tuple[str, str]:
    username = f"{expires_at}:{user_id}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def ice_servers(config: IceConfig, user_id: str, now: float) -> list[dict[str, Any]]:
    """RTCIceServer entries for one person joining a call now."""
    servers: list[dict[str, Any]] = []
    if config.stun_urls:
        servers.append({"urls": list(config.stun_urls)})
    if config.turn_urls and config.turn_secret:
        username, credential = turn_credentials(
            config.turn_secret, user_id, int(now) + config.turn_ttl_seconds
        )
        servers.append(
            {"urls": list(config.turn_urls), "username": username, "credential": credential}
        )
    return servers
