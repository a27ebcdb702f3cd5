"""Schedules in Redis, as celery-redbeat entries: one hash per schedule under ``orch:schedule:<id>``.

Why celery-redbeat: it keeps beat's schedule in Redis (entries added or removed by the API are picked up on
the beat's next tick, no restart), guards it with a lock so only one beat fires while others stand by, and
evaluates Celery's own ``crontab``. We keep our definition in the entry's ``kwargs`` and our bookkeeping
(last run, failures) in one more field of the same hash, so removing the entry removes everything.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from celery import Celery
from redbeat.schedulers import RedBeatSchedulerEntry, ensure_conf

from orchestrator import keys
from orchestrator.errors import InputInvalidError, NotFoundError
from orchestrator.models.common import iso_now, utcnow
from orchestrator.models.schedule import ScheduleSpec, ScheduleView
from orchestrator.runtime.redis_client import RedisClient
from orchestrator.schedules import cron

STATUS_FIELD = "orch"


def configure_redbeat(
    app: Celery, redis_url: str, *, client: RedisClient | None = None, max_interval: float = 5.0
) -> None:
    """Point celery-redbeat at our Redis and key prefix; ``client`` shares an existing connection (and fakeredis)."""
    app.conf.redbeat_redis_url = redis_url
    app.conf.redbeat_key_prefix = keys.SCHEDULE_PREFIX
    app.conf.redbeat_redis_options = {}  # ours, not the broker's transport options
    app.conf.redbeat_lock_timeout = int(max_interval * 5)
    app.conf.beat_max_interval = max_interval
    if client is not None:
        app.redbeat_redis = client
    ensure_conf(app)


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else None


class ScheduleStore:
    """Create, read, list, remove schedules and record what happened when they fired."""

    def __init__(self, app: Celery, redis: RedisClient) -> None:
        self.app = app
        self.redis = redis

    def key(self, schedule_id: str) -> str:
        return keys.schedule_key(schedule_id)

    def create(self, spec: ScheduleSpec, *, created_by: str) -> None:
        """Store a new schedule; its first run is the next cron match from now (never at once)."""
        if not self.redis.hsetnx(self.key(spec.schedule_id), STATUS_FIELD, json.dumps({})):
            raise InputInvalidError(
                f"Schedule '{spec.schedule_id}' already exists; remove it first or choose another schedule_id",
                {"schedule_id": spec.schedule_id},
            )
        definition = {**spec.model_dump(mode="json"), "created_by": created_by, "created_at": iso_now()}
        entry = RedBeatSchedulerEntry(
            spec.schedule_id, keys.TASK_SCHEDULED_START, cron.parse(spec.cron), kwargs=definition, app=self.app
        )
        entry.last_run_at = utcnow()
        entry.save()

    def remove(self, schedule_id: str) -> None:
        if not self.redis.exists(self.key(schedule_id)):
            raise self._missing(schedule_id)
        RedBeatSchedulerEntry(schedule_id, app=self.app).delete()

    def get(self, schedule_id: str) -> ScheduleView:
        data = self.redis.hgetall(self.key(schedule_id))
        view = self._view(data) if data else None
        if view is None:
            raise self._missing(schedule_id)
        return view

    def list(self) -> list[ScheduleView]:
        """Every schedule, by id."""
        names = self.redis.zrange(keys.SCHEDULE_INDEX, 0, -1)
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.hgetall(name)
        views = [self._view(data) for data in pipe.execute() if data]
        return sorted((v for v in views if v is not None), key=lambda v: v.schedule_id)

    def record_fired(self, schedule_id: str, run_id: str) -> None:
        self._update(schedule_id, last_run_id=run_id, last_fired_at=iso_now(), last_error=None, count="runs_started")

    def record_failed(self, schedule_id: str, error: dict[str, Any]) -> None:
        self._update(schedule_id, last_fired_at=iso_now(), last_error=error, count="failures")

    def _update(self, schedule_id: str, *, count: str, **fields: Any) -> None:
        key = self.key(schedule_id)
        raw = self.redis.hget(key, STATUS_FIELD)
        if raw is None:
            return  # removed meanwhile: do not bring it back
        status = json.loads(raw)
        status.update(fields)
        status[count] = int(status.get(count, 0)) + 1
        self.redis.hset(key, STATUS_FIELD, json.dumps(status))

    def _view(self, data: dict[str, str]) -> ScheduleView | None:
        if "definition" not in data:
            return None
        definition = RedBeatSchedulerEntry.decode_definition(data["definition"])
        meta = RedBeatSchedulerEntry.decode_meta(data.get("meta"))
        status = json.loads(data.get(STATUS_FIELD) or "{}")
        body = dict(definition.get("kwargs") or {})
        last_run_at = meta.get("last_run_at")
        error = status.get("last_error")
        return ScheduleView(
            **body,
            next_run_at=_iso(cron.next_run(body["cron"], last_run_at if isinstance(last_run_at, datetime) else None)),
            last_fired_at=status.get("last_fired_at"),
            last_run_id=status.get("last_run_id"),
            runs_started=int(status.get("runs_started", 0)),
            failures=int(status.get("failures", 0)),
            state="failing" if error else "ok",
            problem=error,
        )

    @staticmethod
    def _missing(schedule_id: str) -> NotFoundError:
        return NotFoundError(
            f"Schedule '{schedule_id}' not found; list them with `itom-orch schedule list` or GET /api/schedules",
            {"schedule_id": schedule_id},
        )
