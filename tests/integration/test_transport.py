"""The Redis transport that can hold a publish back (``runtime.transport``), on a private redis-server.

Outside a capture it is kombu's own; inside one, nothing reaches Redis and the captured command is exactly the
push kombu would have made (same queue key for the priority, same payload but for the delivery tag kombu draws
per message). A start relies on that to push its messages inside the transaction that records it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery

from orchestrator import keys
from orchestrator.runtime import celery_app
from orchestrator.runtime.celery_app import create_celery
from orchestrator.runtime.transport import Transport, captured_publishes
from orchestrator.settings import RedisSettings, Settings
from tests.plans import planned_step
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


@pytest.fixture
def celerys_own(monkeypatch: pytest.MonkeyPatch) -> Callable[[], AbstractContextManager[list[Any]]]:
    """A capture that goes Celery's own way through kombu's producer (``CapturingAMQP``'s direct path declines):
    the reference every built push is held against."""

    @contextmanager
    def capture() -> Iterator[list[Any]]:
        with monkeypatch.context() as patch:
            patch.setattr(celery_app, "captured_task_push", lambda *args, **kwargs: None)
            with captured_publishes() as commands:
                yield commands

    return capture


def send(app: Celery, task_id: str) -> None:
    app.signature(keys.TASK_NOOP, queue=QUEUE, priority=3, task_id=task_id).apply_async()


def without_tag(payload: str) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(payload)
    message["properties"].pop("delivery_tag")
    return message


def test_a_captured_publish_is_the_push_kombu_would_make_and_sends_nothing(
    app: Celery, server_url: str, celerys_own: Any
) -> None:
    client = redis.Redis.from_url(server_url, decode_responses=True)
    with app.connection_for_write() as connection:
        assert isinstance(connection.default_channel.connection, Transport)  # ours, for a Redis broker
    key = f"{QUEUE}:3"  # kombu's list for priority 3 (separator ":")

    with celerys_own() as commands:
        send(app, "task-fixed-id")
    with captured_publishes() as built:
        send(app, "task-fixed-id")
    assert client.llen(key) == 0  # held back: nothing reached Redis
    ((command, captured_key, captured),) = commands
    ((built_command, built_key, built_payload),) = built

    send(app, "task-fixed-id")  # the same message, really sent
    (sent,) = client.lrange(key, 0, -1)
    assert (command, captured_key) == (built_command, built_key) == ("LPUSH", key)
    assert without_tag(captured) == without_tag(sent)  # kombu's push, byte for byte but for the tag
    assert decoded(built_payload) == decoded(sent)  # the direct build: the same JSON values


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
    app: Celery, options: dict[str, Any], priority: int | None, celerys_own: Any
) -> None:
    from celery import signature

    from orchestrator.runtime.step_push import step_push

    link, rest = step_link("s2", **options), [step_link("s4"), step_link("s3")]
    with celerys_own() as commands:
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
def test_a_built_start_push_is_the_push_a_client_apply_async_would_make(
    app: Celery, options: dict[str, Any], celerys_own: Any
) -> None:
    from celery import signature

    from orchestrator.runtime.step_push import step_push

    start = step_link("s0", **options)
    del start["options"]["reply_to"]  # a start is not frozen: Celery fills in the client's own reply queue
    with celerys_own() as commands:
        signature(start, app=app).apply_async()
    ((command, key, celerys),) = commands
    built = step_push(app, start)
    assert built is not None
    assert built[:2] == (command, key)
    assert decoded(built[2]) == decoded(celerys)


@pytest.mark.parametrize(
    ("setting", "value"),
    [("task_compression", "gzip"), ("task_serializer", "yaml")],
    ids=["compressed", "another-serializer"],
)
def test_a_push_follows_the_configuration_its_app_started_with(server_url: str, setting: str, value: str) -> None:
    """The serializer and compression are read once per app, when its first push is built, as Celery's own task
    sender reads them once: an app configured for anything but plain JSON leaves every push to Celery's path."""
    from orchestrator.runtime.step_push import step_push

    configured = create_celery(Settings(redis=RedisSettings(url=server_url)), client=True)
    configured.conf[setting] = value
    plain = create_celery(Settings(redis=RedisSettings(url=server_url)), client=True)
    try:
        assert step_push(configured, step_link("s1")) is None
        assert step_push(plain, step_link("s1")) is not None
    finally:
        configured.close()
        plain.close()


def test_the_links_of_a_compiled_chain_take_the_built_path(app: Celery) -> None:
    """Every link a worker finds in its message's chain (compiled, then frozen by Celery) is built directly: a new
    option in the compiler or in Celery's freeze would otherwise quietly send every step back to Celery's path."""
    from orchestrator.runtime.step_push import step_push

    ids = ["a", "b", "c", "d"]
    links = chain_of_the_start(app, [planned(s, (ids[i - 1],) if i else ()) for i, s in enumerate(ids)])
    assert [link["kwargs"]["step_id"] for link in links] == ["d", "c", "b"]
    for index in range(len(links)):
        built = step_push(app, links[-1 - index], chain=links[: len(links) - 1 - index], parent_id="p", root_id="r")
        assert built is not None, links[-1 - index]["options"]


def chain_of_the_start(app: Celery, steps: list[Any]) -> list[Any]:
    """The chain (next link last) in the one message the start of these steps pushes, as Celery froze it."""
    from orchestrator.dispatch.enqueue import enqueue

    with captured_publishes() as commands:
        enqueue(app, compiled_start(steps))
    ((_, _, first),) = commands
    chain: list[Any] = decoded(first)["body"][2]["chain"]
    return chain


def planned(step_id: str, deps: tuple[str, ...] = ()) -> Any:
    return planned_step(step_id, deps)


def compiled_start(steps: list[Any]) -> dict[str, Any]:
    """The start canvas dispatch applies for these steps (Celery's dict form)."""
    from orchestrator.models.common import Priority
    from orchestrator.models.workflow import WorkflowPlan
    from orchestrator.workflows.compiler import compile_plan

    plan = WorkflowPlan(template_id=None, name="t", priority=Priority.HIGH, steps=steps)
    main: dict[str, Any] = compile_plan(plan, "run-1").main_dict
    return main


@pytest.mark.parametrize(
    "steps",
    [
        [planned(f"p{i}") for i in range(4)] + [planned("join", tuple(f"p{i}" for i in range(4)))],
        [planned("z"), planned("x", ("z",)), planned("y", ("z",)), planned("j", ("x", "y"))],
        [planned("a"), planned("b", ("a",)), planned("c", ("b",))],
    ],
    ids=["fan-out", "diamond", "chain"],
)
def test_a_captured_start_builds_each_message_as_celery_would(app: Celery, celerys_own: Any, steps: list[Any]) -> None:
    """A start's canvas applied under a capture: every push built directly (``CapturingAMQP``) holds the message
    Celery's own path through kombu's producer holds, and the chord sizes are the same commands."""
    from orchestrator.dispatch.enqueue import enqueue

    start = compiled_start(steps)
    with celerys_own() as reference:
        enqueue(app, json.loads(json.dumps(start)))
    with captured_publishes() as built:
        enqueue(app, json.loads(json.dumps(start)))
    assert [c[0] for c in built] == [c[0] for c in reference]
    assert any(c[0] == "LPUSH" for c in built)
    assert with_ids_in_order(built) == with_ids_in_order(reference)


def with_ids_in_order(commands: list[Any]) -> str:
    """The commands as one text, each message decoded, each random id (a chord's group) replaced by the order in
    which it first appears: two applies of one canvas draw different group ids but must use them alike."""
    import re

    plain = [decoded(c[2]) if c[0] == "LPUSH" else list(c) for c in commands]
    text = json.dumps(plain, sort_keys=True)
    seen: dict[str, str] = {}
    uuid = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    return re.sub(uuid, lambda m: seen.setdefault(m.group(0), f"<id {len(seen)}>"), text)


def test_a_client_applying_a_chord_keeps_no_result_subscriptions(app: Celery, server_url: str) -> None:
    """The API applies every fan-out's chord: Celery's group apply would subscribe the process to each header
    task's result channel and hold each result object, for good (nothing here waits for them)."""
    from orchestrator.dispatch.enqueue import enqueue

    client = redis.Redis.from_url(server_url, decode_responses=True)
    start = compiled_start([planned(f"p{i}") for i in range(5)] + [planned("join", tuple(f"p{i}" for i in range(5)))])
    for _ in range(3):
        enqueue(app, json.loads(json.dumps(start)))
    assert client.llen(f"{QUEUE}:3") == 15  # really sent
    assert client.pubsub_channels("celery-task-meta-*") == []
    concrete, weak = app.backend._pending_results
    assert len(concrete) == len(weak) == 0


def test_one_client_per_pool_serves_every_publish_and_the_qos_across_a_redis_restart(tmp_path: Path) -> None:
    """kombu built a redis-py client for every publish and twice per consumed message; ours keeps one per
    connection pool. It must still deliver, record and forget unacked messages, and survive a Redis crash."""
    with private_redis(tmp_path / "restarted") as server:
        client = redis.Redis.from_url(server.url(), decode_responses=True)
        broker = Celery(broker=server.url(), broker_transport=celery_app.REDIS_TRANSPORT)

        def round_trip(conn: Any, n: int) -> None:
            queue = conn.SimpleQueue("pooled-client-test", no_ack=False)
            queue.put({"n": n})
            message = queue.get(timeout=5)
            assert message.payload == {"n": n}
            assert client.hlen("unacked") == 1  # the QoS recorded the delivery
            message.ack()
            assert client.hlen("unacked") == 0  # and forgot it on ack
            queue.close()

        with broker.connection_for_write() as conn:
            channel = conn.default_channel
            round_trip(conn, 1)
            pooled = channel._pooled_client
            assert pooled is not None and pooled.connection_pool is channel.pool
            round_trip(conn, 2)
            assert channel._pooled_client is pooled  # no new client per call

            channel._disconnect_pools()  # what kombu does after a fork: a new pool, so a new client
            round_trip(conn, 3)
            renewed = channel._pooled_client
            assert renewed is not pooled and renewed.connection_pool is channel.pool

            server.restart(crash=True)  # every pooled connection is now dead
            client.lpush("pooled-client-test", "x")
            assert channel._size("pooled-client-test") == 1  # the same client, on a new connection
            assert channel._pooled_client is renewed
            client.delete("pooled-client-test")
        with broker.connection_for_write() as conn:  # Celery reconnects (and declares again) after a crash
            round_trip(conn, 4)
        broker.close()
        client.close()


@pytest.mark.parametrize("width", [2, 5, 100])
def test_a_fan_out_start_is_built_as_celerys_chord_apply_would_push_it(
    app: Celery, celerys_own: Any, width: int
) -> None:
    """A start that is one chord of steps (a fan-out and its join) is built without Celery's canvas machinery:
    the same messages, the same chord size command, in the order Celery's group apply makes them."""
    from orchestrator.dispatch.enqueue import enqueue
    from orchestrator.runtime.step_push import chord_pushes

    parts = [planned(f"p{i}") for i in range(width)]
    start = compiled_start([*parts, planned("join", tuple(p.step_id for p in parts))])
    assert start["subtask_type"] == "chord"
    with celerys_own() as reference:
        enqueue(app, json.loads(json.dumps(start)))
    built = chord_pushes(app, json.loads(json.dumps(start)))
    assert built is not None
    assert [c[0] for c in built] == [c[0] for c in reference] == ["LPUSH"] * (width - 1) + ["CHORDSIZE", "LPUSH"]
    assert with_ids_in_order(built) == with_ids_in_order(reference)


@pytest.mark.parametrize(
    "steps",
    [
        [planned("z"), planned("x", ("z",)), planned("y", ("z",)), planned("j", ("x", "y"))],
        [planned("a"), planned("b", ("a",))],
        [planned("a"), planned("b")],
    ],
    ids=["diamond", "chain", "group"],
)
def test_other_starts_are_left_to_celery(app: Celery, steps: list[Any]) -> None:
    from orchestrator.runtime.step_push import chord_pushes

    assert chord_pushes(app, compiled_start(steps)) is None


def frozen_chord_after_a_step(app: Celery, join_deps: tuple[str, ...] = ("x", "y"), tail: int = 0) -> Any:
    """The chord a diamond's first step finds in its message's chain (Celery froze it at the start), and the
    links after it."""
    steps = [planned("z"), *(planned(s, ("z",)) for s in join_deps), planned("j", join_deps)]
    steps += [planned(f"t{i}", (f"t{i - 1}" if i else "j",)) for i in range(tail)]
    chain = chain_of_the_start(app, steps)
    assert chain[-1]["subtask_type"] == "chord"
    return chain[-1], chain[:-1]


@pytest.mark.parametrize(
    ("width", "tail", "priority"),
    [(2, 0, None), (2, 0, 3), (5, 2, None)],
    ids=["diamond", "inherited-priority", "wider-with-a-tail"],
)
def test_a_chord_after_a_step_is_built_as_the_tracer_would_send_it(
    app: Celery, celerys_own: Any, width: int, tail: int, priority: int | None
) -> None:
    """The chord that follows a finished step in its chain, sent as Celery's tracer sends the next link: the
    same messages (parent, root, the body carrying the rest of the chain), the frozen group id, the same order."""
    from celery import signature

    from orchestrator.runtime.step_push import chord_pushes

    chord, rest = frozen_chord_after_a_step(app, tuple(f"b{i}" for i in range(width)), tail)
    sent = {"chain": rest, "parent_id": "run-1.0.z", "root_id": "run-1.0.r", "priority": priority}
    with celerys_own() as reference:
        signature(json.loads(json.dumps(chord)), app=app).apply_async(
            ({"step_id": "z", "status": "completed"},), add_to_parent=False, **sent
        )
    built = chord_pushes(app, json.loads(json.dumps(chord)), sent_with={**sent, "add_to_parent": False})
    assert built is not None
    assert [c[0] for c in built] == [c[0] for c in reference] == ["LPUSH"] * (width - 1) + ["CHORDSIZE", "LPUSH"]
    assert [decoded(c[2]) for c in built if c[0] == "LPUSH"] == [decoded(c[2]) for c in reference if c[0] == "LPUSH"]
    group = chord["options"]["task_id"]
    assert [c for c in built if c[0] == "CHORDSIZE"] == [c for c in reference if c[0] == "CHORDSIZE"]
    assert group in next(c for c in built if c[0] == "CHORDSIZE")[1]  # the group id the start froze


def test_a_worker_hands_a_chord_after_its_step_to_the_finish_script_without_celerys_apply(
    app: Celery, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``workers.chain_handoff``: a step followed by a chord of steps (a diamond's first step) gets the chord's
    pushes built directly, for its finish script; Celery's chord apply, made to fail here, is not called."""
    from types import SimpleNamespace

    from celery import canvas

    from workers import chain_handoff

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("Celery's chord apply was used")

    chord, rest = frozen_chord_after_a_step(app)
    monkeypatch.setattr(canvas._chord, "run", refuse)
    monkeypatch.setattr(chain_handoff, "_shares_state_redis", lambda rt: True)
    request = SimpleNamespace(
        chain=[*rest, chord], callbacks=None, is_eager=False, id="run-1.0.z", root_id=None, delivery_info={}
    )
    app.set_current()
    link = chain_handoff.capture_next_link(SimpleNamespace(), request, {"step_id": "z", "status": "completed"})
    assert link is not None
    assert [c[0] for c in link.commands] == ["LPUSH", "CHORDSIZE", "LPUSH"]
    parts = [decoded(c[2]) for c in link.commands if c[0] == "LPUSH"]
    assert [p["headers"]["parent_id"] for p in parts] == ["run-1.0.z", "run-1.0.z"]
    assert [p["body"][1]["step_id"] for p in parts] == ["x", "y"]
    assert link.result.id == "run-1.0.j"  # the body's result, as Celery's apply returns it
