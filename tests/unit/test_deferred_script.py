"""A script sent now and read later (``runtime.deferred``): the same reply as a direct call, its connection back
in the pool, and a lost reply or a forgotten script answered by running the script again."""

from __future__ import annotations

from typing import Any

import fakeredis
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from orchestrator.runtime.deferred import DeferredScript

COUNT = "redis.call('INCR', KEYS[1]); return {ARGV[1], redis.call('GET', KEYS[1])}"


@pytest.fixture
def client() -> Any:
    return fakeredis.FakeRedis(decode_responses=True)


def in_use(client: Any) -> int:
    return len(client.connection_pool._in_use_connections)


def test_the_reply_is_read_later_and_the_connection_returns_to_the_pool(client: Any) -> None:
    script = client.register_script(COUNT)
    deferred = DeferredScript(client, script, ["n"], ["first"])
    assert deferred.sent
    assert in_use(client) == 1  # held until its reply is read: nobody else can read it
    client.set("other", "1")  # other callers go on meanwhile, on other connections
    assert deferred.result() == ["first", "1"]
    assert in_use(client) == 0
    assert client.get("n") == "1"  # ran once


def test_a_script_redis_forgot_is_loaded_and_run_again(client: Any) -> None:
    script = client.register_script(COUNT)
    client.script_flush()  # as after a Redis restart
    deferred = DeferredScript(client, script, ["n"], ["again"])
    assert deferred.result() == ["again", "1"]
    assert client.get("n") == "1"
    assert in_use(client) == 0


def test_a_lost_reply_runs_the_script_again_on_a_new_connection(client: Any, monkeypatch: Any) -> None:
    script = client.register_script(COUNT)
    deferred = DeferredScript(client, script, ["n"], ["lost"])
    connection = client.connection_pool._in_use_connections.copy().pop()
    read = connection.read_response

    def lost_once(*args: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(connection, "read_response", read)
        raise RedisConnectionError("Connection closed by server.")

    monkeypatch.setattr(connection, "read_response", lost_once)
    reply = deferred.result()  # answered by a second run (a real Redis ran the first too: repeat-safe scripts only)
    assert reply[0] == "lost"
    assert reply[1] == client.get("n")
    assert in_use(client) == 0


def test_a_command_that_could_not_be_sent_runs_when_its_reply_is_asked_for(client: Any, monkeypatch: Any) -> None:
    script = client.register_script(COUNT)

    def refused(*_args: Any, **_kwargs: Any) -> Any:
        raise RedisConnectionError("Error 111 connecting. Connection refused.")

    monkeypatch.setattr(client.connection_pool, "get_connection", refused)
    deferred = DeferredScript(client, script, ["n"], ["later"])
    assert not deferred.sent
    monkeypatch.undo()
    assert client.get("n") is None  # nothing ran yet
    assert deferred.result() == ["later", "1"]


def test_a_script_error_is_raised_and_the_connection_is_reusable(client: Any) -> None:
    script = client.register_script("return redis.error_reply('ORCH bad input')")
    deferred = DeferredScript(client, script, [], [])
    with pytest.raises(ResponseError, match="bad input"):
        deferred.result()
    assert in_use(client) == 0
    assert client.ping()
