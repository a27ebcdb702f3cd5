"""Where an orchestrated step's time goes: Redis commands per step, counted with ``MONITOR``.

Why commands: on a no-op step nearly all of the overhead is Redis traffic (run state scripts, events,
audit, Celery's own result and chain messages). One small chain of each variant runs under ``MONITOR``
after the timed shapes (MONITOR slows Redis, so it never overlaps a timing); commands are counted by name,
split into those a client sent and those run inside Lua scripts. The bench's completion polling uses its own
connection, which is left out of the counts. The worker's idle polling (``BRPOP``) and
heartbeats are counted too, so read small differences with care.

Round trips: a client command is one round trip, except that a MULTI ... EXEC block counts once (a Lua script
is one round trip, whatever it runs inside). Commands sent as a non-transactional pipeline cannot be told
apart in MONITOR's output, so they count one each: the figure is an upper bound.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

from orchestrator.runtime.redis_client import RedisClient


@dataclass
class CommandCount:
    """Commands seen while one shape ran, per step."""

    steps: int
    client: Counter[str] = field(default_factory=Counter)
    lua: Counter[str] = field(default_factory=Counter)
    round_trips: int = 0

    def as_json(self) -> dict[str, Any]:
        def per_step(counter: Counter[str]) -> dict[str, float]:
            return {name: round(n / self.steps, 2) for name, n in counter.most_common()}

        return {
            "steps": self.steps,
            "client_commands_per_step": round(sum(self.client.values()) / self.steps, 2),
            "lua_commands_per_step": round(sum(self.lua.values()) / self.steps, 2),
            "round_trips_per_step": round(self.round_trips / self.steps, 2),
            "client_by_command": per_step(self.client),
            "lua_by_command": per_step(self.lua),
        }


def count_commands(client: RedisClient, steps: int, run: Callable[[], Any], *, exclude_addr: str) -> CommandCount:
    """Run ``run()`` (it must return once its work is done) while MONITOR counts every command.

    Commands from ``exclude_addr`` (``host:port`` of the bench's own completion poller) are not counted.
    """
    marker = f"bench-monitor-stop-{uuid4().hex}"
    counts = CommandCount(steps)
    started = threading.Event()

    in_multi: set[str] = set()

    def watch() -> None:
        with client.monitor() as monitor:
            started.set()
            for command in monitor.listen():
                text = str(command["command"])
                if marker in text:
                    return
                address = f"{command['client_address']}:{command['client_port']}"
                if address == exclude_addr:
                    continue
                name = text.split(" ", 1)[0].upper()
                if command["client_type"] == "lua":
                    counts.lua[name] += 1
                    continue
                counts.client[name] += 1
                if address not in in_multi:
                    counts.round_trips += 1
                if name == "MULTI":
                    in_multi.add(address)
                elif name in ("EXEC", "DISCARD"):
                    in_multi.discard(address)

    thread = threading.Thread(target=watch, name="bench-monitor", daemon=True)
    thread.start()
    started.wait(timeout=10)
    try:
        run()
    finally:
        client.echo(marker)
        thread.join(timeout=10)
    return counts
