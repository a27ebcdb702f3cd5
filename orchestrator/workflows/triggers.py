"""The triggers of a compiled plan, kept as columns: one list per field, not one record per trigger.

Why columns: a random 10,000-step DAG compiles to ~6,600 triggers, nearly all of one step. A record, a tuple of
waited-for names and an index entry per trigger were most of what compiling left for the garbage collector to
track (and what made its full collections come round during a start). Here a trigger is a position in a few
lists of ints and strings: ``ids[k]`` names trigger ``k`` (its first step), it waits for the steps at positions
``waits[starts[k]:starts[k + 1]]`` (distinct, in no particular order), and it applies its own step alone unless
``canvases`` holds a multi-step canvas spec for it.

No trigger carries Celery signatures: the run stores each multi-step canvas as its spec (``spec_json``: shape and
step ids), and the runtime builds the signatures from the steps' planned specs when the trigger fires, as it does
for a one-step trigger. A start thus encodes no signature for a step that waits in a trigger (in a random
10,000-step DAG that is ~3,300 steps in ~930 multi-step triggers, besides ~5,700 one-step ones), and a trigger that
never fires (a run that fails or is cancelled first) costs no more than its spec.

The table is also a read-only ``Mapping`` of trigger id to ``Trigger`` (built on each lookup) for tools and tests
that want records; the runtime reads the columns (``rows``, ``index``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from orchestrator.workflows.spec import CanvasSpec, Step, spec_json

_step = tuple.__new__  # ``Step(name)`` without the named tuple's keyword handling


class Trigger(NamedTuple):
    """A canvas applied once every step in ``waits_for`` is done (a view of one row of a ``TriggerTable``).

    ``spec`` is ``Step(trigger_id)`` for a one-step trigger; ``CompiledPlan.trigger_canvas`` gives the canvas in
    Celery's dict form.
    """

    trigger_id: str
    waits_for: tuple[str, ...]
    spec: CanvasSpec


@dataclass(frozen=True, slots=True, eq=False)
class TriggerTable(Mapping[str, Trigger]):
    """Triggers in the order the decomposition found them (see the module docstring)."""

    names: Sequence[str]  # step names by plan position: ``waits`` holds positions
    ids: list[str] = field(default_factory=list)
    starts: list[int] = field(default_factory=lambda: [0])
    waits: list[int] = field(default_factory=list)
    canvases: dict[int, CanvasSpec] = field(default_factory=dict)  # row -> its multi-step canvas
    _rows: dict[str, int] = field(default_factory=dict, repr=False)  # id -> row, filled on the first lookup

    # -- the Mapping view -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.ids)

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids)

    def __getitem__(self, trigger_id: str) -> Trigger:
        k = self._row(trigger_id)
        names = self.names
        waits_for = tuple(names[p] for p in sorted(self.waits[self.starts[k] : self.starts[k + 1]]))
        multi = self.canvases.get(k)
        return Trigger(trigger_id, waits_for, _step(Step, (trigger_id,)) if multi is None else multi)

    # -- what the runtime stores ------------------------------------------------------------------------
    def rows(self) -> Iterator[tuple[str, int, str | None]]:
        """Per trigger, in order: its id, how many steps it waits for, and its canvas spec as stored (``spec_json``;
        None: one step)."""
        starts, canvases = self.starts, self.canvases
        for k, trigger_id in enumerate(self.ids):
            multi = canvases.get(k)
            yield trigger_id, starts[k + 1] - starts[k], None if multi is None else spec_json(multi)

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

    def canvas_spec(self, trigger_id: str) -> CanvasSpec | None:
        """A multi-step trigger's canvas spec; None for a one-step trigger."""
        return self.canvases.get(self._row(trigger_id)) if self.canvases else None

    def _row(self, trigger_id: str) -> int:
        """The row of ``trigger_id`` (KeyError if unknown); the id -> row map is built on the first lookup."""
        rows = self._rows
        if not rows and self.ids:
            rows.update(zip(self.ids, range(len(self.ids)), strict=True))
        return rows[trigger_id]
