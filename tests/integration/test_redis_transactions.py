"""A run's creation transaction on a real Redis: sent again, once, when the server dropped its connection."""

from __future__ import annotations

import uuid
from typing import Any

import redis

from orchestrator.runtime.redis_client import execute_transaction


def test_a_transaction_on_a_dropped_connection_is_sent_again_once(redis_url: str, rclient: Any) -> None:
    """The server closed the pooled connection (a restart, an idle timeout): redis-py's retry reconnects and the
    transaction goes out again on the new connection, and only the new one commits it."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)  # its own pool: one connection to drop
    key = f"test:tx:{uuid.uuid4().hex}"
    try:
        dropped = client.client_id()
        assert rclient.client_kill_filter(_id=dropped) == 1
        pipe = client.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, 60)
        assert execute_transaction(pipe) == [1, 1]
        assert rclient.get(key) == "1"
        assert client.client_id() != dropped
    finally:
        rclient.delete(key)
        client.close()


def test_a_script_sent_straight_on_a_dropped_connection_runs_once(redis_url: str, rclient: Any) -> None:
    """``run_script`` keeps the client's retry: the dropped connection is replaced and the script runs once."""
    from orchestrator.runtime.redis_client import run_script

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    key = f"test:script:{uuid.uuid4().hex}"
    try:
        counter = client.register_script("return redis.call('INCR', KEYS[1])")
        dropped = client.client_id()
        assert rclient.client_kill_filter(_id=dropped) == 1
        assert run_script(client, counter, [key], []) == 1
        assert rclient.get(key) == "1"
    finally:
        rclient.delete(key)
        client.close()
