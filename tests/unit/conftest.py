"""Unit-test fixtures: fakeredis with the Lua helpers our scripts use."""

from __future__ import annotations

import hashlib
from typing import Any

import fakeredis
import pytest


def make_fake_server() -> fakeredis.FakeServer:
    """A Redis 7 fake whose Lua runtime has ``redis.sha1hex`` (fakeredis 2.40 lacks it; the audit chain uses it)."""
    server = fakeredis.FakeServer(version=(7,))
    fakeredis.FakeRedis(server=server).eval("return 1", 0)
    lua = server._lua_runtime.globals()[b"redis"]
    if lua[b"sha1hex"] is None:
        lua[b"sha1hex"] = lambda data: hashlib.sha1(data).hexdigest().encode()
    return server


@pytest.fixture
def fake_redis() -> Any:
    """A decode_responses fakeredis client on a fresh server."""
    return fakeredis.FakeRedis(server=make_fake_server(), decode_responses=True)
