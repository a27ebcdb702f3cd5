"""Which completed chord header steps hand their part of the join to the finish script
(``workers.chord_handoff``), and which leave it to Celery. The count itself is in ``test_runs``; on real workers
and a real Redis (MONITOR, a crash before the body is applied) in ``test_self_healing``."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
from celery import Celery

from workers.chord_handoff import ChordJoin, chord_join, handed_off

BODY = {"task": "orch.run_step", "args": [], "kwargs": {"run_id": "r", "step_id": "j"}, "options": {}}


def request(**fields: Any) -> Any:
    base = {"chord": dict(BODY), "group": "g1", "chain": None, "callbacks": None, "is_eager": False}
    return SimpleNamespace(**{**base, **fields})


def runtime(shared: bool = True) -> Any:
    return SimpleNamespace(outbox=SimpleNamespace(shares_state_redis=shared))


@pytest.fixture(autouse=True)
def app() -> Any:
    celery = Celery("chord-handoff-test", backend="redis://127.0.0.1:1/0", set_as_current=True)
    yield celery
    celery.close()


@pytest.mark.parametrize(
    "fields",
    [
        {"chord": None},
        {"group": None},
        {"chain": [BODY]},  # the chord belongs to the chain's last step, not to this one
        {"callbacks": [BODY]},
        {"is_eager": True},
    ],
    ids=["no-chord", "no-group", "chain-left", "callbacks", "eager"],
)
def test_celery_keeps_what_is_not_a_plain_header_part(fields: dict[str, Any]) -> None:
    assert chord_join(runtime(), request(**fields)) is None


def test_celery_keeps_the_part_on_another_broker() -> None:
    assert chord_join(runtime(shared=False), request()) is None


def test_a_header_part_rides_on_the_finish_with_celerys_size_key_and_the_body() -> None:
    join = chord_join(runtime(), request())
    assert join == ChordJoin("g1", "celery-taskset-meta-g1.s", json.dumps(BODY))
    assert join.command() == ("JOIN", "celery-taskset-meta-g1.s", "g1\n" + json.dumps(BODY))


def test_once_handed_off_the_tracer_neither_stores_the_result_nor_reports_the_part() -> None:
    req = request(ignore_result=False)
    handed_off(req)
    assert req.chord is None and req.ignore_result is True
