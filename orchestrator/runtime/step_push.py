"""The broker push of a step message, built straight from Celery's message builder and kombu's envelope.

Why: a start puts its first message on the queue inside the transaction that records the run
(``dispatch.outbox.capture_start``), and a finished step hands its next chain link to its finish script
(``workers.chain_handoff``: the push Celery's tracer would make, ``signature(link).apply_async(...)``). Both need
the push as a Redis command. Celery's whole publish path (option merging, routing, the producer pool, kombu's
``ensure``, ``maybe_declare``, ``_prepare``) cost about as much as the step's own Python, and it sits on a chain's
serial path and on every start.

For the signatures our compiler writes (an immutable ``run_step`` signature carrying a known set of options, on a
direct-exchange queue) only four things make the message: Celery's headers and body (``amqp.as_task_v2``, called
here as ``send_task`` calls it), the JSON body, kombu's envelope and the priority list's key. The JSON is written
with orjson: a chain link's body carries the rest of the chain, so it grows with the chain, and the standard
encoder spent more on it than everything else here. The result is the message the capture of Celery's path gives
(the same JSON values; only whitespace, the escaping of non-ASCII text and the delivery tag kombu draws for each
message differ); the integration test ``test_transport`` holds the two side by side. Anything else (other
options, publish signals someone listens to, another exchange type, values orjson cannot write) returns ``None``
and the caller takes Celery's path.
"""

from __future__ import annotations

import weakref
from typing import Any, NamedTuple

import orjson
from celery import Celery, signals
from kombu.entity import maybe_delivery_mode
from kombu.utils.uuid import uuid

from orchestrator import keys
from orchestrator.runtime.capture import Command, captured_publishes

# What ``as_task_v2`` would work out with ``saferepr`` (and a configuration lookup) for a step's empty arguments.
NO_ARGS_REPR = "()"
# The options our compiler (and Celery's freeze) put on a step's signature; any other one takes Celery's path.
KNOWN_OPTIONS = frozenset(
    {"queue", "task_id", "priority", "soft_time_limit", "time_limit", "kwargsrepr", "ignore_result", "reply_to"}
)


def step_push(
    app: Celery,
    link: dict[str, Any],
    *,
    chain: list[Any] | None = None,
    parent_id: str | None = None,
    root_id: str | None = None,
    priority: int | None = None,
    group_id: str | None = None,
    group_index: int | None = None,
    chord: dict[str, Any] | None = None,
) -> Command | None:
    """``("LPUSH", queue key, envelope)`` for the step signature ``link`` (in its JSON form) sent with ``chain``
    after it, as a task with ``parent_id`` and ``root_id`` sends it (none: as a client sends it), as part
    ``group_index`` of chord header ``group_id`` whose body is ``chord`` when those are given; ``None`` when
    Celery's path must build it."""
    options = link.get("options") or {}
    if not _plain(link, options):
        return None
    queue = app.amqp.queues.get(options["queue"])
    channel = _channel(app)
    if queue is None or channel is None:
        return None
    message = app.amqp.as_task_v2(
        options["task_id"],
        link["task"],
        (),
        link.get("kwargs") or {},
        argsrepr=NO_ARGS_REPR,
        reply_to=options.get("reply_to") or app.thread_oid,
        time_limit=options.get("time_limit"),
        soft_time_limit=options.get("soft_time_limit"),
        root_id=root_id,
        parent_id=parent_id,
        chain=chain,
        group_id=group_id,
        group_index=group_index,
        chord=chord,
        ignore_result=options.get("ignore_result"),
        kwargsrepr=options.get("kwargsrepr"),
    )
    # What ``send_task`` passes on to the sender beside the message: the options it did not use itself.
    extra = {"kwargsrepr": options["kwargsrepr"]} if "kwargsrepr" in options else {}
    extra["priority"] = options.get("priority") if priority is None else priority
    return captured_task_push(app, channel, message, queue=queue, extra=extra)


# What Celery's tracer passes when it sends the next link of a chain (``apply_async`` beside the arguments).
_SENT_WITH = frozenset({"chain", "parent_id", "root_id", "priority", "add_to_parent"})
# What Celery's freeze of a chain leaves on a chord's header: the group's id, and no root or parent yet.
_FROZEN_HEADER = frozenset({"task_id", "root_id", "parent_id"})


def chord_pushes(
    app: Celery, canvas: dict[str, Any], *, sent_with: dict[str, Any] | None = None
) -> list[Command] | None:
    """What Celery's ``chord.apply_async(**sent_with)`` pushes for a chord of plain step signatures (a fan-out
    and its join), under a capture: each header step's message, and the chord size before the last one, as
    Celery's group apply orders them. A start sends it with nothing (``sent_with`` None); a finished step sends
    the chord that follows it in its chain with the tracer's options (``workers.chain_handoff``). ``None`` for
    any other canvas (Celery's path builds it).

    Why: Celery's chord apply clones, freezes and sends every header task through its canvas machinery, ~0.1 ms
    each on top of the message itself; a fan-out of 100 spent 14 ms in its start, and its steps wait for the
    start's transaction. Here each header message comes from ``step_push`` with the group's id and index and
    the body as Celery embeds it: its options, updated with what the chord was sent with (all but the parent,
    as ``chord.run`` does), plus its ``reply_to`` and ``group_id``. ``test_transport`` holds every message and
    command against Celery's own.
    """
    sent = dict(sent_with or {})
    own = canvas.get("options") or {}
    if canvas.get("subtask_type") != "chord" or canvas.get("args") or not sent.keys() <= _SENT_WITH:
        return None
    arguments = canvas.get("kwargs") or {}
    header, body = arguments.get("header"), arguments.get("body")
    if arguments.get("kwargs") or not own.keys() <= {"task_id"} or type(body) is not dict:
        return None
    group_id = None
    if type(header) is dict:  # frozen by a chain: a group carrying the chord's group id
        frozen = header.get("options") or {}
        if header.get("subtask_type") != "group" or header.get("args") or not frozen.keys() <= _FROZEN_HEADER:
            return None
        if frozen.get("root_id") or frozen.get("parent_id") or (header.get("kwargs") or {}).keys() != {"tasks"}:
            return None
        group_id, header = frozen.get("task_id"), header["kwargs"]["tasks"]
    if type(header) is not list or not header or not all(type(task) is dict for task in header):
        return None
    parts = [{**task, "options": _without_group(task.get("options") or {})} for task in header]
    if not all(_plain(task, task["options"]) for task in (*parts, body)):
        return None
    group_id = group_id or uuid()
    body_options = dict(body["options"])
    if own or sent:  # ``chord.run``: what it was sent with goes to the body too, but for the parent
        body_options.update({key: value for key, value in sent.items() if key != "parent_id"})
    body_options.setdefault("reply_to", app.thread_oid)
    embedded = {**body, "options": {**body_options, "group_id": group_id}}
    pushes: list[Command] = []
    for index, task in enumerate(parts):
        if index == len(parts) - 1:
            with captured_publishes() as size:
                app.backend.set_chord_size(group_id, len(parts))
            if len(size) != 1:
                return None  # a backend that does not capture its chord size
            pushes.extend(size)
        push = step_push(
            app,
            task,
            group_id=group_id,
            group_index=index,
            chord=embedded,
            parent_id=sent.get("parent_id"),
            root_id=sent.get("root_id"),
            priority=sent.get("priority"),
        )
        if push is None:
            return None
        pushes.append(push)
    return pushes


def _without_group(options: dict[str, Any]) -> dict[str, Any]:
    """A header task's options without the group id and index a freeze wrote (the push passes them itself)."""
    return {key: value for key, value in options.items() if key not in ("group_id", "group_index")}


def envelope_push(
    channel: Any, body: Any, headers: dict[str, Any], properties: dict[str, Any], priority: Any, queue_name: str
) -> Command | None:
    """kombu's envelope of a Celery message (what ``Producer.publish`` then the Redis channel's ``_put`` make of
    it) as the push onto ``queue_name``'s list for the priority; ``None`` when orjson cannot write the body."""
    try:
        encoded = orjson.dumps(body)
    except orjson.JSONEncodeError:
        return None  # something only kombu's encoder knows how to write
    envelope = channel.prepare_message(encoded, priority, "application/json", "utf-8", headers, properties)
    channel._inplace_augment_message(envelope, "", queue_name)
    key = channel._q_for_pri(queue_name, channel._get_message_priority(envelope, reverse=False))
    return ("LPUSH", key, orjson.dumps(envelope).decode())


# ``Producer.publish``'s own parameters: a Celery property by one of these names is not a message property.
_PUBLISH_PARAMETERS = frozenset(
    {
        "body",
        "routing_key",
        "delivery_mode",
        "mandatory",
        "immediate",
        "priority",
        "content_type",
        "content_encoding",
        "serializer",
        "headers",
        "compression",
        "exchange",
        "retry",
        "retry_policy",
        "declare",
        "expiration",
        "timeout",
        "confirm_timeout",
    }
)


def captured_task_push(
    app: Celery,
    channel: Any,
    message: Any,
    *,
    queue: Any,
    extra: dict[str, Any],
    exchange: Any = None,
    routing_key: Any = None,
    serializer: Any = None,
    compression: Any = None,
    delivery_mode: Any = None,
    headers: Any = None,
    exchange_type: Any = None,
) -> Command | None:
    """What Celery's ``send_task_message`` followed by kombu's publish would push on ``channel``, for a message
    Celery built (``CapturingAMQP``, under a capture) or ``step_push`` built with Celery's builder; ``extra`` is
    what ``send_task`` passes on beside it. ``None`` for anything but the plain case (JSON, no compression, a
    direct-exchange queue named by the router, no sent event, no publish signal receivers, kombu's Redis channel).
    """
    headers2, properties, body, sent_event = message
    if sent_event is not None or exchange or routing_key or exchange_type not in (None, "direct"):
        return None
    defaults = _sender_defaults(app)
    if (serializer or defaults.serializer) != "json" or compression or defaults.compression:
        return None
    if signals.before_task_publish.receivers or signals.after_task_publish.receivers:
        return None
    queue = app.amqp.queues.get(queue) if isinstance(queue, str) else queue
    if queue is None or queue.exchange.type != "direct" or not hasattr(channel, "_q_for_pri"):
        return None
    if queue.name in (getattr(channel, "_expires", None) or {}):
        return None  # a queue with an expiry kombu would refresh on each push
    if headers:
        headers2.update(headers)
    properties = {**properties, **extra}
    priority, expiration = properties.pop("priority", None), properties.pop("expiration", None)
    if expiration is not None or properties.keys() & _PUBLISH_PARAMETERS:
        return None
    properties["delivery_mode"] = maybe_delivery_mode(
        delivery_mode or queue.exchange.delivery_mode or defaults.delivery_mode
    )
    return envelope_push(channel, body, headers2, properties, priority, queue.name)


def _plain(link: dict[str, Any], options: dict[str, Any]) -> bool:
    """An immutable ``run_step`` signature with no arguments of its own, an id and a queue, and no other option."""
    return (
        link.get("task") == keys.TASK_RUN_STEP
        and not link.get("subtask_type")
        and bool(link.get("immutable"))
        and not link.get("args")
        and options.keys() <= KNOWN_OPTIONS
        and bool(options.get("task_id"))
        and bool(options.get("queue"))
    )


class _SenderDefaults(NamedTuple):
    serializer: str
    compression: str | None
    delivery_mode: Any


_defaults: weakref.WeakKeyDictionary[Any, _SenderDefaults] = weakref.WeakKeyDictionary()


def _sender_defaults(app: Celery) -> _SenderDefaults:
    """The configuration Celery's task sender reads once, when it is created (``AMQP._create_task_sender``), read
    once per ``app.amqp`` here too: a lookup in Celery's configuration costs ~3.6 us, and a push made four."""
    amqp = app.amqp
    found = _defaults.get(amqp)
    if found is None:
        conf = app.conf
        found = _SenderDefaults(conf.task_serializer, conf.task_compression, conf.task_default_delivery_mode)
        _defaults[amqp] = found
    return found


_channels: weakref.WeakKeyDictionary[Celery, Any] = weakref.WeakKeyDictionary()


def _channel(app: Celery) -> Any:
    """A channel of the app's broker transport, for its envelope methods (it never sends anything here)."""
    channel = _channels.get(app)
    if channel is None:
        with app.producer_or_acquire() as producer:
            channel = producer.channel
        if not hasattr(channel, "_q_for_pri"):
            return None  # not kombu's Redis channel
        _channels[app] = channel
    return channel
