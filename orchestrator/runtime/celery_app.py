"""Build the Celery app from settings: JSON only, one queue per agent, priorities on the Redis transport.

Why a factory: the API, the CLI, the workers and the tests each build an app from *their* settings (a test
points at its own Redis db) instead of sharing a module-level global configured at import time.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.app.amqp import AMQP
from celery.backends.redis import RedisBackend
from kombu import Queue

from orchestrator import keys
from orchestrator.runtime.capture import capturing
from orchestrator.runtime.step_push import captured_task_push
from orchestrator.settings import AGENT_IDS, Settings

# Redis has no native priorities; kombu emulates them with one list per step (0 is served first).
PRIORITY_STEPS = list(range(10))
# kombu's Redis transport, able to fold a start's publish into the transaction that records it
REDIS_TRANSPORT = "orchestrator.runtime.transport:Transport"


def is_amqp(broker_url: str) -> bool:
    return broker_url.startswith(("amqp://", "amqps://", "pyamqp://"))


def broker_priority(priority: int, broker_url: str) -> int:
    """Our priorities read like Redis's (0 is served first); AMQP serves the highest number first: flip them."""
    return PRIORITY_STEPS[-1] - priority if is_amqp(broker_url) else priority


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery's lower-case settings, derived from ours (``celeryconfig.py`` exposes the same dict)."""
    broker = settings.broker_url or settings.redis_url
    retention = settings.retention
    # RabbitMQ needs per-queue priority support declared; Redis emulates priorities with sub-queues.
    arguments = {"x-max-priority": PRIORITY_STEPS[-1]} if is_amqp(broker) else None
    names = [keys.agent_queue(agent_id) for agent_id in AGENT_IDS] + [keys.ORCHESTRATOR_QUEUE]
    queues = [Queue(name, routing_key=name, queue_arguments=arguments) for name in names]
    transport = {"broker_transport": REDIS_TRANSPORT} if broker.startswith(("redis://", "rediss://")) else {}
    return {
        "broker_url": broker,
        **transport,
        "result_backend": settings.redis_url,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "task_queues": queues,
        "task_default_queue": keys.ORCHESTRATOR_QUEUE,
        "task_create_missing_queues": False,
        "worker_prefetch_multiplier": 1,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_track_started": False,
        "result_expires": retention.celery_result_ttl_seconds,
        "result_extended": True,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {
            "priority_steps": PRIORITY_STEPS,
            "sep": ":",
            "queue_order_strategy": "priority",
            # Longer than the longest step (24 h cap in the step model) so acks_late never double-runs a step.
            "visibility_timeout": 26 * 3600,
        },
        "result_backend_transport_options": {"retry_policy": {"timeout": 5.0}},
        "worker_hijack_root_logger": False,
        # Task events cost a publish per state change; Flower switches worker events on when it connects.
        "worker_send_task_events": False,
        "task_send_sent_event": False,
        "enable_utc": True,
    }


def chord_size_key(backend: Any, group_id: str) -> str:
    """The key where Celery's Redis result backend keeps a chord's size (``celery-taskset-meta-<group>.s``)."""
    key = backend.get_key_for_group(group_id, ".s")
    return key.decode() if isinstance(key, bytes) else str(key)


class CapturingRedisBackend(RedisBackend):  # type: ignore[misc]
    """Celery's Redis result backend; inside ``captured_publishes`` the chord size it writes when a chord is
    applied is captured with the chord's messages, so the transaction or script that pushes them writes it too."""

    def set_chord_size(self, group_id: str, chord_size: int) -> None:
        commands = capturing()
        if commands is None:
            super().set_chord_size(group_id, chord_size)
            return
        commands.append(("CHORDSIZE", chord_size_key(self, group_id), int(chord_size), int(self.chord_expires or 0)))


class ClientRedisBackend(CapturingRedisBackend):
    """The Redis result backend for processes that only *send* work (API, CLI).

    Celery subscribes the sender to every task's result channel it publishes, so a long-running API would
    accumulate one pub/sub subscription per run. The orchestrator follows runs through run state and events,
    never through Celery results, so the client backend does not subscribe.
    """

    def on_task_call(self, producer: Any, task_id: str) -> None:
        return None

    def add_pending_result(self, result: Any, weak: bool = False, start_drainer: bool = True) -> Any:
        """Not tracked: Celery does this for every task of a group it applies (a chord's header), which held each
        result object and one pub/sub subscription in the process for good (a fan-out of 100: 100 of each per
        start, never released, since nothing here waits for them)."""
        return result

    def add_pending_results(self, results: Any, weak: bool = False) -> list[Any]:
        return list(results)

    def remove_pending_result(self, result: Any) -> Any:
        """Nothing is pending here; without this, an ``AsyncResult`` collected at interpreter exit would try to
        unsubscribe from Redis while Python shuts down and print a traceback."""
        return result


# Parameters of Celery's ``send_task_message`` that say how to publish (retries, declares, timeouts, the sent
# event's dispatcher), not what: everything else it is given ends up in the message.
_SENDER_MECHANICS = frozenset({"event_dispatcher", "retry", "retry_policy", "declare", "timeout", "confirm_timeout"})


class CapturingAMQP(AMQP):  # type: ignore[misc]
    """Celery's AMQP helper; inside ``captured_publishes`` a task message Celery built is turned into its push
    directly (``step_push.captured_task_push``) instead of through kombu's producer, which nothing would send.

    Why: a start captures all its messages before its transaction, so the worker waits for the last one to be
    built; Celery's route through kombu's producer (``ensure``, ``maybe_declare``, ``_prepare``) was more than half
    of each message's cost. Outside a capture, or for anything but the plain case, Celery's own sender runs.
    """

    def _create_task_sender(self) -> Any:
        send = super()._create_task_sender()
        app = self.app

        def send_task_message(
            producer: Any,
            name: str,
            message: Any,
            exchange: Any = None,
            routing_key: Any = None,
            queue: Any = None,
            serializer: Any = None,
            delivery_mode: Any = None,
            compression: Any = None,
            headers: Any = None,
            exchange_type: Any = None,
            **kwargs: Any,
        ) -> Any:
            commands = capturing()
            if commands is not None:
                extra = {k: v for k, v in kwargs.items() if k not in _SENDER_MECHANICS}
                push = captured_task_push(
                    app,
                    getattr(producer, "channel", None),
                    message,
                    queue=queue,
                    exchange=exchange,
                    routing_key=routing_key,
                    serializer=serializer,
                    compression=compression,
                    delivery_mode=delivery_mode,
                    headers=headers,
                    exchange_type=exchange_type,
                    extra=extra,
                )
                if push is not None:
                    commands.append(push)
                    return None
            return send(
                producer,
                name,
                message,
                exchange=exchange,
                routing_key=routing_key,
                queue=queue,
                serializer=serializer,
                delivery_mode=delivery_mode,
                compression=compression,
                headers=headers,
                exchange_type=exchange_type,
                **kwargs,
            )

        return send_task_message


def create_celery(settings: Settings, name: str = "itom-orchestrator", *, client: bool = False) -> Celery:
    """A configured Celery app; tasks are registered by the worker package, the core sends by name.

    ``client=True`` for processes that only send (the service): see ``ClientRedisBackend``.
    """
    app = Celery(name, amqp=CapturingAMQP)
    config = celery_config(settings)
    if config["result_backend"].startswith(("redis://", "rediss://")):
        backend = "ClientRedisBackend" if client else "CapturingRedisBackend"
        config["result_backend"] = f"{__name__}:{backend}+{config['result_backend']}"
    app.config_from_object(config)
    return app
