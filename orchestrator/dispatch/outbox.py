"""The outbox: enqueues a state change implied, applied after the change committed and confirmed after.

Why: Redis state and the broker are two systems; a crash between "the run is recorded" and "its canvas is on
the broker" (or "a join was released" and "its canvas is on the broker") would leave a run that waits for
nothing. The state scripts write the enqueue as an outbox entry in the same atomic step; whoever made the
change drains it at once, and the reconciler drains what nobody confirmed. An entry is removed only after the
broker took it, so a crash can only duplicate a message, never lose one; duplicates are harmless because a
step refuses to run twice (its begin script checks status, generation and lease).
"""

from __future__ import annotations

import json
import logging
import threading
from functools import cached_property
from typing import Any

from celery import Celery
from redis.connection import parse_url

from orchestrator import keys
from orchestrator.dispatch.enqueue import enqueue
from orchestrator.models.workflow import PlannedStep
from orchestrator.runtime.canvas_results import drop_unused_results, drop_unused_results_json, map_priorities
from orchestrator.runtime.capture import Command, captured_publishes
from orchestrator.runtime.celery_app import REDIS_TRANSPORT, broker_priority
from orchestrator.runtime.step_push import chord_pushes, step_push
from orchestrator.state.runs import RunStore
from orchestrator.workflows.compiler import step_signature_dict, to_canvas_dict
from orchestrator.workflows.spec import CanvasSpec, Step, step_ids

log = logging.getLogger(__name__)

DEFAULTS: dict[str, Any] = {"host": "localhost", "port": 6379, "db": 0, "path": None}


class PendingConfirms:
    """Start entries whose canvases the broker took, not yet removed from their outboxes.

    Why deferred: confirming each start on its own was a third round trip per start (record, publish, confirm)
    where bare Celery makes one. A confirmation only has to come after the publish, not at once: it rides on the
    next run's creation transaction (``RunStore.create(confirm=...)``), or, when no start follows, a timer
    confirms what is left ``DELAY_SECONDS`` later in one round trip (a non-daemon thread, so a process that exits
    normally confirms first). The crash windows are unchanged: an entry is removed only after its publish, and
    an entry a crash left behind is applied by the reconciler after its grace (the reconciler confirms this
    process's pending entries before it looks), a duplicate at worst, which the begin script refuses.
    """

    DELAY_SECONDS = 0.02

    def __init__(self, runs: RunStore) -> None:
        self.runs = runs
        self._lock = threading.Lock()
        self._items: list[tuple[str, str]] = []
        self._timer: threading.Timer | None = None

    def add(self, run_id: str, entry: str) -> None:
        self.put_back([(run_id, entry)])

    def put_back(self, items: list[tuple[str, str]]) -> None:
        """Queue confirmations (also those a failed write took and could not deliver)."""
        if not items:
            return
        with self._lock:
            self._items.extend(items)
            if self._timer is None:
                self._timer = threading.Timer(self.DELAY_SECONDS, self._on_timer)
                self._timer.start()

    def take(self) -> list[tuple[str, str]]:
        """Everything queued, for a write that carries the confirmations (``put_back`` them if it fails)."""
        with self._lock:
            items, self._items = self._items, []
        return items

    def flush(self) -> None:
        """Confirm what is queued now (one round trip); on a Redis error the reconciler drains them later."""
        items = self.take()
        try:
            self.runs.confirm_starts(items)
        except Exception:
            log.warning("%d start confirmations left to the reconciler (Redis unavailable?)", len(items), exc_info=True)

    def close(self) -> None:
        """Confirm what is queued now and stop the timer (a process or test that is done with this dispatcher)."""
        with self._lock:
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        self.flush()

    def _on_timer(self) -> None:
        with self._lock:
            self._timer = None
        self.flush()


class Outbox:
    """Applies a run's unconfirmed outbox entries on a Celery app."""

    def __init__(self, runs: RunStore, app: Celery) -> None:
        self.runs = runs
        self.app = app
        self.broker_url = str(app.conf.broker_url or "")
        self.pending = PendingConfirms(runs)

    def drain(self, run_id: str, only: list[str] | None = None) -> list[str]:
        """Apply the run's entries (or just ``only``) and confirm them; returns the entries applied.

        Entries of an older generation, or of a run that no longer runs, are confirmed without being applied.
        A broker error stops the drain: what was not applied stays for the next attempt.
        """
        # One round trip reads the entries, the run's generation and status and, for the triggers named in
        # ``only`` (a worker drains what its finish released), their stored canvases and their steps' specs.
        fired = [name.split(":", 2)[2] for name in only or () if name.startswith("fire:") and name.count(":") == 2]
        pipe = self.runs.redis.pipeline(transaction=False)
        pipe.hgetall(keys.run_outbox_key(run_id))
        pipe.hmget(keys.run_key(run_id), ["generation", "status", *[f"p:{t}" for t in fired]])
        if fired:
            pipe.hmget(keys.run_triggers_key(run_id), ["prio", *[f"sig:{t}" for t in fired]])
        entries, state, *stored = pipe.execute()
        if only is not None:
            entries = {name: value for name, value in entries.items() if name in only}
        if not entries:
            return []
        generation, status = int(state[0] or 0), state[1]
        known = None
        if fired:
            known = (
                self.runs.parse_trigger_canvases(fired, stored[0]),
                self.runs.parse_step_specs(run_id, fired, state[2:]),
            )
        canvases = self._canvases(run_id, entries, generation, status, known)
        settled: list[str] = []
        applied: list[str] = []
        try:
            for name in sorted(entries):
                canvas = canvases.get(name)
                if canvas is not None:
                    enqueue(self.app, canvas)
                    applied.append(name)
                settled.append(name)
        finally:
            self.runs.confirm_outbox(run_id, settled)
        return applied

    def capture_start(self, canvas: dict[str, Any]) -> list[Command] | None:
        """The start canvas's publishes as Redis commands, to run inside the transaction that records the run;
        ``None`` when the broker is not the Redis that holds run state (then ``apply_start`` after the record).

        A start that is one step's signature, or one chord of them (a fan-out and its join), gets its pushes
        built directly (``runtime.step_push``: the messages ``apply_async`` would send); any other canvas is
        applied by Celery with only kombu's final push held back (``runtime.transport``). Recorded and enqueued
        in one transaction, the start needs no outbox entry.
        """
        if not self.shares_state_redis:
            return None
        if type(canvas) is dict:
            push = step_push(self.app, canvas)
            if push is not None:
                return [push]
            pushes = chord_pushes(self.app, canvas)
            if pushes is not None:
                return pushes
        with captured_publishes() as commands:
            enqueue(self.app, canvas)
        return commands or None

    @cached_property
    def shares_state_redis(self) -> bool:
        """The broker is our transport on the very server and database the run state lives in."""
        if self.app.conf.broker_transport != REDIS_TRANSPORT or not self.broker_url.startswith(("redis:", "rediss:")):
            return False
        state = getattr(self.runs.redis, "connection_pool", None)
        if state is None:
            return False
        broker: dict[str, Any] = parse_url(self.broker_url)  # type: ignore[no-untyped-call]
        found = state.connection_kwargs
        fields = ("host", "port", "db", "path")
        return all(broker.get(f, DEFAULTS.get(f)) == found.get(f, DEFAULTS.get(f)) for f in fields)

    def apply_start(self, run_id: str, canvas: dict[str, Any], *, generation: int) -> None:
        """Apply a start canvas its caller just recorded (``start:<generation>``); its entry is confirmed with
        the next write or shortly after (``PendingConfirms``).

        The drain without its read: the caller holds the canvas and knows the run is running. A cancel that
        lands in between only leaves steps that refuse to run (the cancel flag), as it would after a drain.
        """
        enqueue(self.app, canvas)
        self.pending.add(run_id, f"start:{generation}")

    def _canvases(
        self, run_id: str, entries: dict[str, str], generation: int, status: str | None, known: Any = None
    ) -> dict[str, dict[str, Any]]:
        """Entry name -> the canvas to apply (entries left out settle without effect)."""
        found: dict[str, dict[str, Any]] = {}
        fires: dict[str, str] = {}
        for name, value in entries.items():
            kind, _, rest = name.partition(":")
            entry_generation, _, trigger_id = rest.partition(":")
            if status != "running" or not entry_generation.isdigit() or int(entry_generation) != generation:
                log.info(
                    "outbox entry %s of run %s settled without effect (run %s, gen %s)",
                    name,
                    run_id,
                    status,
                    generation,
                )
            elif kind in ("start", "join"):  # a join: a chord body its last header part released
                found[name] = json.loads(value)
            elif kind == "fire":
                fires[trigger_id] = name
            else:
                log.warning("unknown outbox entry %s of run %s dropped", name, run_id)
        if fires:
            for trigger_id, canvas in self._trigger_canvases(run_id, list(fires), generation, known).items():
                found[fires[trigger_id]] = canvas
        return found

    def _trigger_canvases(
        self, run_id: str, trigger_ids: list[str], generation: int, known: Any = None
    ) -> dict[str, dict[str, Any]]:
        """Each trigger's canvas, built from its stored spec (a one-step trigger's is its step) and its steps' planned
        specs, prepared as dispatch prepares a start (no result write, the broker's priority order); a canvas an
        earlier version stored whole is used as it is. ``known``: what the drain's read already fetched (stored
        canvases, specs) for these triggers; the specs of steps behind a multi-step trigger's first take one more
        read."""
        if known is not None and set(trigger_ids) <= set(known[0]) | set(known[1]):
            stored, specs = known
        else:
            stored = self.runs.trigger_canvases(run_id, trigger_ids)
            specs = self.runs.step_specs(run_id, [tid for tid, (canvas, _) in stored.items() if canvas is None])
        missing = [
            step_id
            for canvas, _ in stored.values()
            if canvas is not None and not isinstance(canvas, dict)
            for step_id in step_ids(canvas)
            if step_id not in specs
        ]
        if missing:
            specs = {**specs, **self.runs.step_specs(run_id, missing)}
        found: dict[str, dict[str, Any]] = {}
        for trigger_id, (canvas, priority) in stored.items():
            if isinstance(canvas, dict):
                found[trigger_id] = canvas
                continue
            built = _built_canvas(Step(trigger_id) if canvas is None else canvas, specs, run_id, generation, priority)
            if built is not None:
                found[trigger_id] = prepare_canvas(built, self.broker_url)
        return found


def _built_canvas(
    spec: CanvasSpec, specs: dict[str, PlannedStep], run_id: str, generation: int, priority: int
) -> dict[str, Any] | None:
    """A trigger's canvas in Celery's dict form; None when a step's spec is gone (nothing to apply then)."""
    if not all(step_id in specs for step_id in step_ids(spec)):
        log.warning("trigger canvas of run %s left unapplied: a step's spec is missing", run_id)
        return None
    return to_canvas_dict(spec, lambda step_id: step_signature_dict(specs[step_id], run_id, generation, priority))


def prepare_canvas(canvas: dict[str, Any], broker_url: str) -> dict[str, Any]:
    """A compiled canvas ready for the broker: Celery result writes dropped wherever no chord reads them, and
    priorities in the broker's own order (flipped for AMQP)."""
    return map_priorities(drop_unused_results(canvas), lambda p: broker_priority(p, broker_url))


def prepare_canvas_json(canvas: str, broker_url: str) -> dict[str, Any]:
    """``prepare_canvas`` on a canvas given as JSON text (what the compiler makes): parsed once, no copy."""
    return map_priorities(drop_unused_results_json(canvas), lambda p: broker_priority(p, broker_url))
