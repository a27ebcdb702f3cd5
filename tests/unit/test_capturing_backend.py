"""The chord size Celery's result backend writes when a chord is applied is captured with the chord's messages."""

from __future__ import annotations

from typing import Any

import pytest
from celery import Celery

from orchestrator.runtime.capture import captured_publishes, chord_size_commands
from orchestrator.runtime.celery_app import CapturingRedisBackend


@pytest.fixture
def backend() -> Any:
    app = Celery("capture-test")
    app.conf.update(result_expires=600)
    return CapturingRedisBackend(app=app, url="redis://127.0.0.1:1/0")  # never connects under capture


def test_inside_a_capture_the_chord_size_is_a_command_not_a_write(backend: Any) -> None:
    with captured_publishes() as commands:
        backend.set_chord_size("g1", 4)
    assert commands == [("CHORDSIZE", "celery-taskset-meta-g1.s", 4, 600)]


def test_a_captured_size_is_sent_as_celerys_backend_sends_it() -> None:
    assert chord_size_commands(("CHORDSIZE", "celery-taskset-meta-g1.s", 4, 600)) == [
        ("DEL", "celery-taskset-meta-g1.c"),
        ("SET", "celery-taskset-meta-g1.s", 4, "EX", 600),
    ]
    assert chord_size_commands(("CHORDSIZE", "k.s", 2, 0)) == [("DEL", "k.c"), ("SET", "k.s", 2)]


def test_outside_a_capture_the_backend_writes(backend: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    written: list[tuple[str, int]] = []
    monkeypatch.setattr(CapturingRedisBackend.__mro__[1], "set_chord_size", lambda self, g, n: written.append((g, n)))
    backend.set_chord_size("g2", 3)
    assert written == [("g2", 3)]
