"""The Redis transport that can hold a publish back (``runtime.transport``), on a private redis-server.

Outside a capture it is kombu's own; inside one, nothing reaches Redis and the captured command is exactly the
push kombu would have made (same queue key for the priority, same payload but for the delivery tag kombu draws
per message). A start relies on that to push its messages inside the transaction that records it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery

from orchestrator import keys
from orchestrator.runtime.celery_app import create_celery
from orchestrator.runtime.transport import Transport, captured_publishes
from orchestrator.settings import RedisSettings, Settings
from tests.servers import private_redis

pytestmark = pytest.mark.integration

QUEUE = keys.agent_queue("cmdb-agent")


@pytest.fixture
def server_url(tmp_path: Path) -> Iterator[str]:
    with private_redis(tmp_path) as server:
        yield server.url()


@pytest.fixture
def app(server_url: str) -> Iterator[Celery]:
    app = create_celery(Settings(redis=RedisSettings(url=server_url)), client=True)
    yield app
    app.close()


def send(app: Celery, task_id: str) -> None:
    app.signature(keys.TASK_NOOP, queue=QUEUE, priority=3, task_id=task_id).apply_async()


def without_tag(payload: str) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(payload)
    message["properties"].pop("delivery_tag")
    return message


def test_a_captured_publish_is_the_push_kombu_would_make_and_sends_nothing(app: Celery, server_url: str) -> None:
    client = redis.Redis.from_url(server_url, decode_responses=True)
    with app.connection_for_write() as connection:
        assert isinstance(connection.default_channel.connection, Transport)  # ours, for a Redis broker
    key = f"{QUEUE}:3"  # kombu's list for priority 3 (separator ":")

    with captured_publishes() as commands:
        send(app, "task-fixed-id")
    assert client.llen(key) == 0  # held back: nothing reached Redis
    ((command, captured_key, captured),) = commands

    send(app, "task-fixed-id")  # the same message, really sent
    (sent,) = client.lrange(key, 0, -1)
    assert (command, captured_key) == ("LPUSH", key)
    assert without_tag(captured) == without_tag(sent)


def test_captures_nest_and_end_with_their_block(app: Celery, server_url: str) -> None:
    client = redis.Redis.from_url(server_url, decode_responses=True)
    with captured_publishes() as outer:
        send(app, "outer-1")
        with captured_publishes() as inner:
            send(app, "inner")
        send(app, "outer-2")
    send(app, "after")
    assert [json.loads(c[2])["headers"]["id"] for c in outer] == ["outer-1", "outer-2"]
    assert [json.loads(c[2])["headers"]["id"] for c in inner] == ["inner"]
    assert [json.loads(m)["headers"]["id"] for m in client.lrange(f"{QUEUE}:3", 0, -1)] == ["after"]


def step_link(step_id: str, **options: Any) -> dict[str, Any]:
    """A chain element as the compiler writes it and Celery's freeze completes it."""
    return {
        "task": keys.TASK_RUN_STEP,
        "args": [],
        "kwargs": {"run_id": "run-1", "step_id": step_id, "generation": 0},
        "options": {
            "kwargsrepr": f"{{'action': 'cmdb.ping', 'run_id': 'run-1', 'step_id': '{step_id}', 'generation': 0}}",
            "queue": QUEUE,
            "task_id": f"run-1.0.{step_id}",
            "priority": 5,
            "soft_time_limit": 30.0,
            "time_limit": 35.0,
            "ignore_result": True,
            "reply_to": "reply-1",
            **options,
        },
        "subtask_type": None,
        "immutable": True,
    }


def decoded(payload: str) -> dict[str, Any]:
    """A pushed message with its body decoded and without the delivery tag kombu draws for each message."""
    import base64

    message = without_tag(payload)
    message["body"] = json.loads(base64.b64decode(message["body"]))
    return message


@pytest.mark.parametrize(
    ("options", "priority"),
    [({}, None), ({}, 2), ({"priority": 0}, None), ({"ignore_result": False, "time_limit": 70.0}, None)],
    ids=["as-compiled", "inherited-priority", "priority-0", "other-limits"],
)
def test_a_built_link_push_is_the_push_celery_would_make(
    app: Celery, options: dict[str, Any], priority: int | None
) -> None:
    from celery import signature

    from orchestrator.runtime.step_push import step_push

    link, rest = step_link("s2", **options), [step_link("s4"), step_link("s3")]
    with captured_publishes() as commands:
        signature(link, app=app).apply_async(
            ({"step_id": "s1", "status": "completed"},),
            chain=rest,
            parent_id="run-1.0.s1",
            root_id="run-1.0.s0",
            priority=priority,
            add_to_parent=False,
        )
    ((command, key, celerys),) = commands
    built = step_push(app, link, chain=rest, parent_id="run-1.0.s1", root_id="run-1.0.s0", priority=priority)
    assert built is not None
    assert built[:2] == (command, key)
    assert decoded(built[2]) == decoded(celerys)
    assert list(json.loads(built[2])["properties"]) == list(json.loads(celerys)["properties"])  # same order too


@pytest.mark.parametrize(
    "link",
    [
        {**step_link("s2"), "immutable": False},
        {**step_link("s2"), "task": keys.TASK_NOOP},
        {**step_link("s2"), "options": {**step_link("s2")["options"], "countdown": 5}},
        {**step_link("s2"), "options": {**step_link("s2")["options"], "queue": "no-such-queue"}},
    ],
    ids=["mutable", "other-task", "other-option", "unknown-queue"],
)
def test_links_outside_the_known_shape_are_left_to_celery(app: Celery, link: dict[str, Any]) -> None:
    from orchestrator.runtime.step_push import step_push

    assert step_push(app, link, chain=[], parent_id="p", root_id="r", priority=None) is None


@pytest.mark.parametrize("options", [{}, {"priority": 0}], ids=["as-compiled", "priority-0"])
def test_a_built_start_push_is_the_push_a_client_apply_async_would_make(app: Celery, options: dict[str, Any]) -> None:
    from celery import signature

    from orchestrator.runtime.step_push import step_push

    start = step_link("s0", **options)
    del start["options"]["reply_to"]  # a start is not frozen: Celery fills in the client's own reply queue
    with captured_publishes() as commands:
        signature(start, app=app).apply_async()
    ((command, key, celerys),) = commands
    built = step_push(app, start)
    assert built is not None
    assert built[:2] == (command, key)
    assert decoded(built[2]) == decoded(celerys)
