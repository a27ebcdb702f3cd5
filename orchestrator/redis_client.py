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


# -- Lua scripts on pipelines ---------------------------------------------------------------------------------
# Pipelines call scripts by SHA (no script text on the wire per call). redis-py would otherwise check
# SCRIPT EXISTS before every such pipeline; instead, the rare NOSCRIPT reply (Redis restarted or flushed its
# script cache) is answered by re-running exactly that command with EVAL, which also re-caches the script.
_SCRIPTS: dict[str, str] = {}


def script_sha(source: str) -> str:
    """The SHA-1 Redis names ``source`` by; remembers the source for NOSCRIPT recovery."""
    import hashlib

    sha = hashlib.sha1(source.encode()).hexdigest()  # noqa: S324 - Redis identifies scripts by SHA-1
    _SCRIPTS[sha] = source
    return sha


def execute_pipeline(client: RedisClient, pipe: Any) -> list[Any]:
    """Run ``pipe`` and recover any EVALSHA that hit NOSCRIPT; other errors are raised as usual."""
    from redis.exceptions import NoScriptError

    stack = [args for args, _options in pipe.command_stack]
    replies: list[Any] = pipe.execute(raise_on_error=False)
    for index, reply in enumerate(replies):
        if isinstance(reply, NoScriptError):
            args = stack[index]
            source = _SCRIPTS.get(str(args[1]))
            if source is None:
                raise reply
            replies[index] = client.eval(source, *args[2:])
        elif isinstance(reply, Exception):
            raise reply
    return replies
