"""Cluster mode's transport: the core's `Bus` over Redis (`COLLAB_REDIS_URL`).

Imports only the core's public names; the composition root builds it when Redis is set.
"""

from __future__ import annotations

from cluster.redis_bus import RedisBus

__all__ = ["RedisBus"]
