"""Proof that the test suite leaves the machine's own Redis and RabbitMQ untouched (run by ``.ci/run``).

``before``: writes a sentinel key in each of the machine Redis's databases 0-15, declares a sentinel queue
on RabbitMQ's default vhost, and records every key that has no expiry. ``after``: fails if a sentinel or a
recorded key is gone, or if a key the product would write (``orch:*``, Celery's and kombu's) appeared; then
removes the sentinels it created. A service that is not running is reported and skipped.

    python -m tests.machine_guard before STATE_FILE
    python -m tests.machine_guard after STATE_FILE
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Any

import redis

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"
PRODUCT_PATTERNS = ("orch:*", "celery*", "_kombu*", "unacked*", "agent.*", "orchestrator*", "chord-unlock*")
MAX_RECORDED_KEYS = 50_000


def _client(db: int) -> Any:
    return redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db, decode_responses=True, socket_connect_timeout=2)


def _persistent_keys(client: Any) -> list[str]:
    found: list[str] = []
    for key in client.scan_iter(count=1000):
        if client.ttl(key) == -1:
            found.append(key)
            if len(found) >= MAX_RECORDED_KEYS:
                break
    return found


def _product_keys(client: Any) -> set[str]:
    return {key for pattern in PRODUCT_PATTERNS for key in client.scan_iter(match=pattern, count=1000)}


def before(state_file: Path) -> None:
    token = uuid.uuid4().hex[:12]
    state: dict[str, Any] = {"token": token, "redis": None, "queue": None}
    try:
        _client(0).ping()
    except (redis.RedisError, OSError) as exc:
        print(f"machine guard: no Redis on {REDIS_HOST}:{REDIS_PORT} ({exc}); nothing to guard there")
    else:
        dbs: dict[str, Any] = {}
        for db in range(16):
            client = _client(db)
            sentinel = f"machine-guard:{token}"
            client.set(sentinel, "must survive the test suite")
            dbs[str(db)] = {
                "sentinel": sentinel,
                "keys": _persistent_keys(client),
                "product_keys": sorted(_product_keys(client)),
            }
        state["redis"] = dbs
    state["queue"] = _declare_queue(f"machine-guard-{token}")
    state_file.write_text(json.dumps(state))
    print(f"machine guard: sentinels set (token {token})")


def _declare_queue(name: str) -> str | None:
    from kombu import Connection

    try:
        with Connection(AMQP_URL, connect_timeout=2) as connection:
            connection.default_channel.queue_declare(queue=name, durable=True, auto_delete=False)
    except Exception as exc:  # RabbitMQ absent: nothing to guard
        print(f"machine guard: no RabbitMQ at the default vhost ({exc}); nothing to guard there")
        return None
    return name


def _queue_exists(name: str) -> bool:
    from kombu import Connection

    with Connection(AMQP_URL, connect_timeout=2) as connection:
        try:
            connection.default_channel.queue_declare(queue=name, passive=True)
        except Exception:
            return False
    return True


def _delete_queue(name: str) -> None:
    from kombu import Connection

    with Connection(AMQP_URL, connect_timeout=2) as connection:
        connection.default_channel.queue_delete(name)


def after(state_file: Path) -> int:
    state = json.loads(state_file.read_text())
    problems: list[str] = []
    for db, recorded in (state.get("redis") or {}).items():
        client = _client(int(db))
        if not client.exists(recorded["sentinel"]):
            problems.append(f"db {db}: the sentinel key {recorded['sentinel']} was deleted")
        gone = [key for key in recorded["keys"] if not client.exists(key)]
        if gone:
            problems.append(f"db {db}: {len(gone)} keys without expiry disappeared, e.g. {gone[:5]}")
        new = sorted(_product_keys(client) - set(recorded["product_keys"]))
        if new:
            problems.append(f"db {db}: the suite wrote {len(new)} keys into the machine's Redis, e.g. {new[:5]}")
        client.delete(recorded["sentinel"])
    queue = state.get("queue")
    if queue:
        if not _queue_exists(queue):
            problems.append(f"RabbitMQ: the sentinel queue {queue} on the default vhost was deleted")
        else:
            _delete_queue(queue)
    for problem in problems:
        print(f"machine guard: {problem}", file=sys.stderr)
    if not problems:
        print("machine guard: the machine's Redis databases 0-15 and RabbitMQ default vhost are untouched")
    return 1 if problems else 0


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("before", "after"):
        print(__doc__, file=sys.stderr)
        return 2
    state_file = Path(argv[1])
    if argv[0] == "before":
        before(state_file)
        return 0
    return after(state_file)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
