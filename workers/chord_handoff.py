"""A chord header step's part of its join, counted by the finish script that records the step completed.

Why: after a chord header step, Celery's tracer stores the step's result (a GET, then SETEX and PUBLISH) and runs
its chord script to count the part: three more Redis round trips per header step, on top of the finish script,
where the join needs only a count. When the broker and the result backend are the Redis that holds run state,
the worker hands the count to the finish script instead: it adds one to the chord's counter in the run hash
(``jn:<generation>:<group>``), reads the chord's size where Celery's canvas stored it when it applied the chord,
and the part that completes the count writes the body's canvas into the run's outbox (``join:<generation>:<group>``)
in that same atomic step. The worker drains it at once, as it drains released triggers; a crash in between
leaves it to the reconciler, which drains what nobody confirmed. The tracer is then told there is no chord and
no result to store.

Only a plain step completing in a running run is handed off. A failure, a retry, a link, a step that still has a
chain to run, or another broker keep Celery's own behaviour; so does a completion the script does not record (a
duplicate, a run no longer running, an older generation): the delivery that recorded it counted it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from celery import current_app

from orchestrator.runtime.celery_app import chord_size_key
from workers.runtime import WorkerRuntime


@dataclass(frozen=True)
class ChordJoin:
    """One header part of a chord: its group, where Celery keeps the chord's size, and the body to apply."""

    group_id: str
    size_key: str
    body: str  # the body signature's dict form, as JSON

    def command(self) -> tuple[str, str, str]:
        """The pseudo broker command the finish script understands (``JOIN``, size key, group and body)."""
        return ("JOIN", self.size_key, f"{self.group_id}\n{self.body}")


def chord_join(rt: WorkerRuntime, request: Any) -> ChordJoin | None:
    """The chord part this completed step would report to Celery, for the finish script to count instead;
    ``None`` when Celery must count it (no chord, a chain or link still to run, another broker)."""
    chord, group_id = getattr(request, "chord", None), getattr(request, "group", None)
    if not chord or not group_id or not isinstance(chord, dict):
        return None
    if getattr(request, "chain", None) or getattr(request, "callbacks", None) or getattr(request, "is_eager", False):
        return None
    if not rt.outbox.shares_state_redis:
        return None
    backend = current_app._get_current_object().backend
    if not hasattr(backend, "get_key_for_group"):
        return None
    return ChordJoin(str(group_id), chord_size_key(backend, group_id), json.dumps(chord))


def handed_off(request: Any) -> None:
    """After the finish script ran: the tracer neither stores the result nor reports the chord part again."""
    request.chord = None
    request.ignore_result = True
