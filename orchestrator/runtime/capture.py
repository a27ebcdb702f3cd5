"""Publishes held back as Redis commands instead of sent: the capture that ``runtime.transport`` (kombu's final
``LPUSH``) and ``runtime.celery_app.CapturingRedisBackend`` (a chord's size) write into.

Why a module of its own: run state (``state.runs``) sends captured commands inside its own transaction and script,
and must not import kombu's transport to do so (a client command's start-up pays for every import).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_capture = threading.local()


Command = tuple[Any, ...]  # a Redis command and its arguments: ("LPUSH", key, payload)


@contextmanager
def captured_publishes() -> Iterator[list[Command]]:
    """Within the block, this thread's publishes are collected as Redis commands instead of sent."""
    commands: list[Command] = []
    previous = getattr(_capture, "commands", None)
    _capture.commands = commands
    try:
        yield commands
    finally:
        _capture.commands = previous


def capturing() -> list[Command] | None:
    """The commands this thread collects now (inside ``captured_publishes``), else ``None``."""
    commands: list[Command] | None = getattr(_capture, "commands", None)
    return commands


def chord_size_commands(command: Command) -> list[Command]:
    """A captured ``("CHORDSIZE", size key, size, ttl)`` as the Redis commands Celery's backend sends: its
    counter reset (the ``.c`` key beside the ``.s`` one) and the size, expiring as Celery's chord keys do."""
    _, size_key, size, ttl = command
    counter = f"{size_key[:-1]}c"
    return [("DEL", counter), ("SET", size_key, size, "EX", ttl) if ttl else ("SET", size_key, size)]
