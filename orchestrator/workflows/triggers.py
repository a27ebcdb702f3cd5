"""The triggers of a compiled plan, kept as columns: one list per field, not one record per trigger.

Why columns: a random 10,000-step DAG compiles to ~6,600 triggers, nearly all of one step. A record, a tuple of
waited-for names and an index entry per trigger were most of what compiling left for the garbage collector to
track (and what made its full collections come round during a start). Here a trigger is a position in a few
lists of ints and strings: ``ids[k]`` names trigger ``k`` (its first step), it waits for the steps at positions
``waits[starts[k]:starts[k + 1]]`` (distinct, in no particular order), and it applies its own step alone unless
``canvases`` holds a multi-step canvas for it (its spec, and its canvas in Celery's dict form as JSON text).

The table is also a read-only ``Mapping`` of trigger id to ``Trigger`` (built on each lookup) for tools and tests
that want records; the runtime reads the columns (``rows``, ``index``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from orchestrator.workflows.spec import CanvasSpec, Step

_step = tuple.__new__  # ``Step(name)`` without the named tuple's keyword handling


class Trigger(NamedTuple):
    """A canvas applied once every step in ``waits_for`` is done (a view of one row of a ``TriggerTable``).

    ``canvas`` is None for a one-step trigger (its canvas is the signature of its own step, ``trigger_id``, built
    when it fires); multi-step triggers carry their canvas in Celery's dict form.
    """

    trigger_id: str
    waits_for: tuple[str, ...]
    canvas: dict[str, Any] | None
    spec: CanvasSpec | None = None


@dataclass(frozen=True, slots=True, eq=False)
class TriggerTable(Mapping[str, Trigger]):
    """Triggers in the order the decomposition found them (see the module docstring)."""

    names: Sequence[str]  # step names by plan position: ``waits`` holds positions
    ids: list[str] = field(default_factory=list)
    starts: list[int] = field(default_factory=lambda: [0])
    waits: list[int] = field(default_factory=list)
    canvases: dict[int, tuple[CanvasSpec, str]] = field(default_factory=dict)  # row -> (spec, canvas JSON)
    _rows: dict[str, int] = field(default_factory=dict, repr=False)  # id -> row, filled on the first lookup

    # -- the Mapping view -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.ids)

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids)

    def __getitem__(self, trigger_id: str) -> Trigger:
        rows = self._rows
        if not rows and self.ids:
            rows.update(zip(self.ids, range(len(self.ids)), strict=True))
        k = rows[trigger_id]
        names = self.names
        waits_for = tuple(names[p] for p in sorted(self.waits[self.starts[k] : self.starts[k + 1]]))
        multi = self.canvases.get(k)
        if multi is None:
            return Trigger(trigger_id, waits_for, None, _step(Step, (trigger_id,)))
        spec, canvas = multi
        return Trigger(trigger_id, waits_for, json.loads(canvas), spec)

    # -- what the runtime stores ------------------------------------------------------------------------
    def rows(self) -> Iterator[tuple[str, int, str | None]]:
        """Per trigger, in order: its id, how many steps it waits for, and its canvas as JSON (None: one step)."""
        starts, canvases = self.starts, self.canvases
        for k, trigger_id in enumerate(self.ids):
            multi = canvases.get(k)
            yield trigger_id, starts[k + 1] - starts[k], None if multi is None else multi[1]

    def index(self) -> Iterator[tuple[str, list[str]]]:
        """Per step that some trigger waits for: its name and those triggers (in trigger order); steps come in
        the order they are first waited for."""
        waits, starts, ids, names = self.waits, self.starts, self.ids, self.names
        released: dict[int, list[str]] = {}
        for k, trigger_id in enumerate(ids):
            for p in waits[starts[k] : starts[k + 1]]:
                found = released.get(p)
                if found is None:
                    released[p] = [trigger_id]
                else:
                    found.append(trigger_id)
        for p, trigger_ids in released.items():
            yield names[p], trigger_ids

    def canvas_json(self, trigger_id: str) -> str | None:
        """A multi-step trigger's canvas as JSON text; None for a one-step trigger."""
        multi = self.canvases.get(self.ids.index(trigger_id)) if self.canvases else None
        return None if multi is None else multi[1]

    def with_canvases(self, convert: Callable[[str], str]) -> TriggerTable:
        """The same triggers with every multi-step canvas JSON passed through ``convert`` (dispatch prepares them
        for the broker); the columns are shared, not copied."""
        if not self.canvases:
            return self
        canvases = {k: (spec, convert(canvas)) for k, (spec, canvas) in self.canvases.items()}
        return TriggerTable(self.names, self.ids, self.starts, self.waits, canvases)
