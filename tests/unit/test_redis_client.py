"""Scripts run by SHA on pipelines, and a NOSCRIPT (Redis restarted) is recovered without losing the call."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from orchestrator.runtime.redis_client import execute_pipeline, script_sha

SCRIPT = "redis.call('INCR', KEYS[1]); return redis.call('GET', KEYS[1])"


def test_noscript_is_recovered_once_and_other_commands_are_kept(fake_redis: Any) -> None:
    sha = script_sha(SCRIPT)
    fake_redis.script_flush()
    pipe = fake_redis.pipeline(transaction=False)
    pipe.set("before", "1")
    pipe.evalsha(sha, 1, "counter")
    pipe.get("before")
    assert execute_pipeline(fake_redis, pipe) == [True, "1", "1"]
    pipe = fake_redis.pipeline(transaction=False)
    pipe.evalsha(sha, 1, "counter")  # cached now: no recovery needed
    assert execute_pipeline(fake_redis, pipe) == ["2"]


def test_other_errors_are_raised(fake_redis: Any) -> None:
    fake_redis.set("text", "x")
    pipe = fake_redis.pipeline(transaction=False)
    pipe.incr("text")
    with pytest.raises(redis.ResponseError):
        execute_pipeline(fake_redis, pipe)


def test_a_pipeline_goes_out_in_one_write_on_tcp_urls() -> None:
    """A run's creation transaction is larger than redis-py's 6 KB write pieces: it must still be one write."""
    from orchestrator.runtime import redis_client

    client = redis_client.get_redis("redis://127.0.0.1:1/0")  # never connects: packing needs no server
    connection = client.connection_pool.connection_class(**client.connection_pool.connection_kwargs)
    assert isinstance(connection, redis_client.OneWriteConnection)
    commands = [("HSET", "k", f"f{i}", "v" * 1000) for i in range(20)]
    assert len(connection.pack_commands(commands)) == 1
    tls = redis_client.get_redis("rediss://127.0.0.1:1/0")
    assert not issubclass(tls.connection_pool.connection_class, redis_client.OneWriteConnection)
