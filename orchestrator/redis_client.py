"""Redis connections: one pool per URL and process, re-created after fork.

Why: every Celery prefork child and every API process needs its own sockets; sharing a pool across a fork
corrupts it. Keyed by pid so a forked child transparently gets fresh connections.
"""

from __future__ import annotations

import os
from typing import Any

import redis

# redis-py 8 types every reply as a union of bytes/str/awaitables; our clients always decode to str, so the
# boundary type is Any rather than casts at every call site.
RedisClient = Any

_clients: dict[tuple[int, str], RedisClient] = {}


def get_redis(url: str) -> RedisClient:
    """A shared client with ``decode_responses=True`` for this process and URL."""
    key = (os.getpid(), url)
    client = _clients.get(key)
    if client is None:
        client = redis.Redis.from_url(url, decode_responses=True, health_check_interval=30)
        _clients[key] = client
    return client


def ping(url: str, timeout: float = 0.5) -> bool:
    """True when a Redis answers at ``url`` (used to decide whether to start an embedded one)."""
    try:
        client: RedisClient = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError):
        return False
