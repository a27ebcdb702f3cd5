"""Which step ends hand their next chain link to the finish script (``workers.chain_handoff``), and which leave it
to Celery's tracer. The handoff itself, on a real broker and workers, is in the integration tests (MONITOR)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from orchestrator import keys
from workers import chain_handoff
from workers.chain_handoff import capture_next_link


def link(task: str = keys.TASK_RUN_STEP, **extra: Any) -> dict[str, Any]:
    return {"task": task, "args": [], "kwargs": {"run_id": "r", "step_id": "b"}, "options": {}, **extra}


def request(**fields: Any) -> Any:
    base = {"chain": [link()], "callbacks": None, "is_eager": False, "id": "t1", "root_id": None, "delivery_info": {}}
    return SimpleNamespace(**{**base, **fields})


@pytest.fixture
def shared(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether the broker counts as the state Redis (asked at most once per step)."""
    asked: list[bool] = []

    def shares(rt: Any) -> bool:
        asked.append(True)
        return False

    monkeypatch.setattr(chain_handoff, "_shares_state_redis", shares)
    return asked


@pytest.mark.parametrize(
    "fields",
    [
        {"chain": None},
        {"chain": []},
        {"callbacks": [link()]},  # Celery sends links before the chain: keep its order
        {"is_eager": True},
        {"chain": [link("celery.group")]},
        {"chain": [link(subtask_type="chord")]},
    ],
    ids=["no-chain", "empty-chain", "callbacks", "eager", "group-next", "chord-next"],
)
def test_celery_keeps_what_is_not_a_plain_step_then_a_plain_step(fields: dict[str, Any], shared: list[bool]) -> None:
    assert capture_next_link(SimpleNamespace(), request(**fields), {"status": "completed"}) is None
    assert not shared  # decided before looking at the broker


def test_celery_keeps_the_publish_on_another_broker(shared: list[bool]) -> None:
    assert capture_next_link(SimpleNamespace(), request(), {"status": "completed"}) is None
    assert shared == [True]


def test_a_chord_next_is_captured_like_a_step_and_a_group_is_not() -> None:
    chord = {"task": "celery.chord", "args": [], "kwargs": {}, "options": {}, "subtask_type": "chord"}
    assert chain_handoff._plain_step_or_chord(chord)
    assert chain_handoff._plain_step_or_chord(link())
    assert not chain_handoff._plain_step_or_chord({**chord, "task": "celery.group", "subtask_type": "group"})
    assert not chain_handoff._plain_step_or_chord({**chord, "task": keys.TASK_RUN_STEP})  # a forged kind


def test_a_link_joins_the_steps_children_only_when_its_push_is_used() -> None:
    from workers.chain_handoff import NextLink

    req = request(children=[])
    next_link = NextLink([("LPUSH", "q", "{}")], result="child-result")
    assert req.children == []  # built while the begin ran: nothing recorded yet
    next_link.adopt(req)
    assert req.children == ["child-result"]
    assert req.chain is None  # the tracer publishes nothing more


def test_a_link_that_cannot_be_built_is_left_to_celerys_tracer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Built while the begin script's reply is pending: an error here must not escape (the step would end before
    reading that reply); Celery's tracer then publishes the link as usual."""

    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise KeyError("options")

    monkeypatch.setattr(chain_handoff, "_shares_state_redis", lambda rt: True)
    monkeypatch.setattr(chain_handoff, "step_push", broken)
    monkeypatch.setattr(chain_handoff, "captured_publishes", broken)
    assert capture_next_link(SimpleNamespace(), request(), {"status": "completed"}) is None
