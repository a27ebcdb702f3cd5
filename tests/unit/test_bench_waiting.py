"""The bench's waiter: it returns only when every item is done, and what it reads grows with what finishes.

Why the second matters: the waiting client shares the machine's two cores with the worker it measures, so a
poller that re-reads a full window on every move takes CPU from the system under test for as long as a drain
lasts, and weighs more on the slower variant.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from orchestrator.bench.waiting import WINDOW, wait_all
from orchestrator.errors import WorkflowTimeoutError


class Drain:
    """A fake batch whose items finish in a given order, ``per_read`` of them at every probe call."""

    def __init__(self, order: Sequence[str], per_read: int = 1) -> None:
        self.order = list(order)
        self.finished: set[str] = set()
        self.per_read = per_read
        self.calls = 0
        self.items_read = 0

    def probe(self, ids: Sequence[str]) -> list[bool]:
        self.calls += 1
        self.items_read += len(ids)
        for item in self.order[len(self.finished) : len(self.finished) + self.per_read]:
            self.finished.add(item)
        return [item in self.finished for item in ids]


def test_it_returns_only_once_every_item_is_done_whatever_the_order() -> None:
    ids = [f"r{i}" for i in range(500)]
    drain = Drain(list(reversed(ids)), per_read=3)  # the newest finish first: the oldest is the last one
    wait_all(ids, drain.probe, timeout=5.0, interval=0.0, what="runs")
    assert drain.finished == set(ids)


def test_a_trickling_drain_costs_reads_in_proportion_to_the_items() -> None:
    ids = [f"r{i}" for i in range(2000)]
    drain = Drain(ids, per_read=1)  # one item finishes per poll: the worst case for a window poller
    wait_all(ids, drain.probe, timeout=5.0, interval=0.0, what="runs")
    assert drain.finished == set(ids)
    assert drain.items_read <= 3 * len(ids)  # a full-window poller reads ~WINDOW per finished item here
    assert WINDOW * len(ids) > 50 * drain.items_read


def test_a_finished_batch_is_read_in_growing_windows() -> None:
    ids = [f"r{i}" for i in range(1000)]
    drain = Drain(ids, per_read=len(ids))  # all done at the first read
    wait_all(ids, drain.probe, timeout=5.0, interval=0.0, what="runs")
    assert drain.items_read == len(ids)  # each item once
    assert drain.calls <= len(ids) // WINDOW + 9  # 1, 2, 4 ... 128, then windows of WINDOW


def test_it_gives_up_at_its_deadline_naming_what_is_pending() -> None:
    with pytest.raises(WorkflowTimeoutError, match="2 of 2 runs still unfinished"):
        wait_all(["a", "b"], lambda ids: [False] * len(ids), timeout=0.05, interval=0.01, what="runs")
