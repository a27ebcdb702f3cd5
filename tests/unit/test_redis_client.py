"""Scripts run by SHA on pipelines, and a NOSCRIPT (Redis restarted) is recovered without losing the call."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

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


def test_a_transaction_returns_the_raw_replies_without_callbacks(fake_redis: Any) -> None:
    """``execute_transaction`` reads EXEC's replies as Redis sent them (redis-py would turn SET's OK into True)."""
    from orchestrator.runtime.redis_client import execute_transaction

    pipe = fake_redis.pipeline(transaction=True)
    pipe.set("tx:a", "1")
    pipe.hset("tx:h", mapping={"f": "v", "g": "w"})
    pipe.incr("tx:a")
    assert execute_transaction(pipe) == ["OK", 2, 2]
    assert fake_redis.hgetall("tx:h") == {"f": "v", "g": "w"}
    assert pipe.command_stack == []  # the pipeline is reset, as after redis-py's execute


def test_a_refused_command_is_raised_as_redis_py_raises_it(fake_redis: Any) -> None:
    """A command Redis refuses when EXEC runs it raises (what ran before it stays written, as with MULTI); one
    refused while queued aborts the whole transaction and raises that refusal."""
    from orchestrator.runtime.redis_client import execute_transaction

    fake_redis.set("tx:text", "x")
    pipe = fake_redis.pipeline(transaction=True)
    pipe.set("tx:first", "1")
    pipe.incr("tx:text")
    with pytest.raises(redis.ResponseError, match="Command # 2"):
        execute_transaction(pipe)
    assert fake_redis.get("tx:first") == "1"
    pipe = fake_redis.pipeline(transaction=True)
    pipe.set("tx:never", "1")
    pipe.execute_command("HSET", "tx:h")  # wrong number of arguments: refused while queued
    with pytest.raises(redis.ResponseError, match="wrong number of arguments"):
        execute_transaction(pipe)
    assert fake_redis.get("tx:never") is None


def test_a_plain_pipeline_takes_redis_pys_own_path(fake_redis: Any) -> None:
    from orchestrator.runtime.redis_client import execute_transaction

    pipe = fake_redis.pipeline(transaction=False)
    pipe.set("tx:plain", "1")
    assert execute_transaction(pipe) == [True]


def test_a_script_sent_straight_reloads_itself_after_noscript_and_raises_its_errors(fake_redis: Any) -> None:
    """``run_script``: a flushed script cache (Redis restarted) is answered by loading the script again, once;
    a script's own error is raised, and the connection goes on serving."""
    from orchestrator.runtime.redis_client import run_script

    counter = fake_redis.register_script(SCRIPT)
    assert run_script(fake_redis, counter, ["tx:counter"], []) == "1"
    fake_redis.script_flush()
    assert run_script(fake_redis, counter, ["tx:counter"], []) == "2"
    failing = fake_redis.register_script("return redis.error_reply('ORCH test refusal')")
    with pytest.raises(redis.ResponseError, match="ORCH test refusal"):
        run_script(fake_redis, failing, [], [])
    assert run_script(fake_redis, counter, ["tx:counter"], []) == "3"


_ARGUMENTS = st.lists(
    st.one_of(
        st.text(),
        st.binary(),
        st.binary().map(bytearray),
        st.binary().map(memoryview),
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.floats(allow_nan=False, allow_infinity=False),
    ),
    max_size=8,
)


@settings(max_examples=200, deadline=None)
@given(
    commands=st.lists(
        st.tuples(st.sampled_from(["HSET", "ZADD", "EVALSHA", "LPUSH", "SCRIPT LOAD", b"CLIENT SETNAME"]), _ARGUMENTS),
        max_size=4,
    )
)
def test_packed_commands_are_the_bytes_redis_py_would_send(commands: list[tuple[str, list[Any]]]) -> None:
    """``packed`` skips redis-py's per-argument pass where it changes nothing: text (any Unicode), bytes, buffers,
    integers and floats, under one-word and several-word command names, go out exactly as redis-py writes them."""
    from orchestrator.runtime import redis_client

    client = redis_client.get_redis("redis://127.0.0.1:1/0")  # never connects: packing needs no server
    connection = client.connection_pool.connection_class(**client.connection_pool.connection_kwargs)
    tuples = [(name, *arguments) for name, arguments in commands]
    assert b"".join(redis_client.packed(tuples)) == b"".join(connection.pack_commands(tuples))


def test_an_argument_redis_cannot_take_is_refused_as_redis_py_refuses_it() -> None:
    from orchestrator.runtime.redis_client import packed

    with pytest.raises(redis.DataError):
        packed([("HSET", "k", "f", None)])


def test_a_watching_transaction_takes_redis_pys_own_path(fake_redis: Any) -> None:
    """A pipeline that watched a key needs redis-py's check of that key: it is not sent straight."""
    from orchestrator.runtime.redis_client import execute_transaction

    fake_redis.set("tx:watched", "1")
    pipe = fake_redis.pipeline(transaction=True)
    pipe.watch("tx:watched")
    pipe.multi()
    pipe.set("tx:watched", "2")
    fake_redis.set("tx:watched", "changed")
    with pytest.raises(redis.WatchError):
        execute_transaction(pipe)
    assert fake_redis.get("tx:watched") == "changed"
