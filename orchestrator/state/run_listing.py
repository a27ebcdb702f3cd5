"""Run listings from indexes: a page of runs is one range read of a sorted set plus one hash read per run shown.

Why indexes: reading every run hash to show fifty of them cost seconds and hundreds of megabytes at a few
thousand runs. Each index is a sorted set ``run_id -> created epoch``: all runs (``keys.RUNS_INDEX``), per
status, per template, and per template and status. A run enters them when it is created (``index_new``, in
the creation transaction); the Lua scripts that change a run's status move it between the status indexes in
the same script (``reindex`` in ``run_scripts``), so the indexes never drift from the hashes. Runs whose hash
expired are pruned from the indexes by age on creation (at most once a minute per process) and when a listing
meets them.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from orchestrator import keys
from orchestrator.models.common import RunStatus
from orchestrator.models.run import RunView
from orchestrator.runtime.redis_client import RedisClient
from orchestrator.state.run_views import view_from_hash

log = logging.getLogger(__name__)
STATUSES = tuple(s.value for s in RunStatus)
BACKFILL_BATCH = 500


def index_new(
    pipe: Any,
    run_id: str,
    status: str,
    template_id: str | None,
    epoch: float,
    *,
    cutoff: float,
    prune: bool = True,
    prune_template: bool = True,
) -> None:
    """Queue a new run's index entries (and, when asked, age-pruning of the indexes it joins) on the creation
    pipeline. Pruning is asked for now and then (``PruneClock``), not on every creation: its cutoff is a day
    past the run TTL, so a minute's delay changes nothing, and six range deletions per start were a third of
    the creation transaction's commands."""
    pipe.zadd(keys.RUNS_INDEX, {run_id: epoch})
    pipe.zadd(keys.runs_by_status(status), {run_id: epoch})
    if prune:
        pipe.zremrangebyscore(keys.RUNS_INDEX, "-inf", cutoff)
        for name in STATUSES:
            pipe.zremrangebyscore(keys.runs_by_status(name), "-inf", cutoff)
    if template_id:
        pipe.zadd(keys.runs_by_template(template_id), {run_id: epoch})
        pipe.zadd(keys.runs_by_template_status(template_id, status), {run_id: epoch})
        if prune_template:
            pipe.zremrangebyscore(keys.runs_by_template(template_id), "-inf", cutoff)


class PruneClock:
    """When a process last pruned the indexes by age (overall, and per template): at most once a minute each.

    Per process, so every API process still prunes regularly; a listing prunes what it meets in any case."""

    EVERY_SECONDS = 60.0

    def __init__(self) -> None:
        self.last: dict[str, float] = {}

    def due(self, name: str, now: float) -> bool:
        """True (and restarts the clock of ``name``) when ``name`` was not pruned within the interval."""
        if now - self.last.get(name, float("-inf")) < self.EVERY_SECONDS:
            return False
        self.last[name] = now
        return True


def index_key(status: str | None, template_id: str | None) -> str:
    """The one index that answers a filter exactly."""
    if status and template_id:
        return keys.runs_by_template_status(template_id, status)
    if template_id:
        return keys.runs_by_template(template_id)
    if status:
        return keys.runs_by_status(status)
    return keys.RUNS_INDEX


def forget(redis: RedisClient, run_ids: list[str], template_ids: set[str]) -> None:
    """Remove expired runs from every index they may be in."""
    pipe = redis.pipeline(transaction=False)
    pipe.zrem(keys.RUNS_INDEX, *run_ids)
    for name in STATUSES:
        pipe.zrem(keys.runs_by_status(name), *run_ids)
        for template_id in template_ids:
            pipe.zrem(keys.runs_by_template_status(template_id, name), *run_ids)
    for template_id in template_ids:
        pipe.zrem(keys.runs_by_template(template_id), *run_ids)
    pipe.execute()


def backfill(redis: RedisClient) -> int:
    """Index runs created before the status and template indexes existed (once per Redis); returns how many."""
    if redis.exists(keys.RUNS_INDEXED_MARK):
        return 0
    entries: list[tuple[str, float]] = redis.zrange(keys.RUNS_INDEX, 0, -1, withscores=True)
    done = 0
    for start in range(0, len(entries), BACKFILL_BATCH):
        chunk = entries[start : start + BACKFILL_BATCH]
        read = redis.pipeline(transaction=False)
        for run_id, _ in chunk:
            read.hmget(keys.run_key(run_id), "status", "meta", "ct")
        write = redis.pipeline(transaction=False)
        for (run_id, epoch), (status, meta, ct) in zip(chunk, read.execute(), strict=True):
            if not status or not meta or ct:
                continue
            template_id = json.loads(meta).get("template_id") or ""
            write.hset(keys.run_key(run_id), mapping={"ct": epoch, "tpl": template_id})
            write.zadd(keys.runs_by_status(status), {run_id: epoch})
            if template_id:
                write.zadd(keys.runs_by_template(template_id), {run_id: epoch})
                write.zadd(keys.runs_by_template_status(template_id, status), {run_id: epoch})
            done += 1
        write.execute()
    redis.set(keys.RUNS_INDEXED_MARK, "1")
    if done:
        log.info("indexed %d runs created before the listing indexes existed", done)
    return done


def list_runs(
    redis: RedisClient,
    *,
    status: str | None = None,
    template_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[RunView], int]:
    """Runs created in ``[since, until]`` (default: any time), newest first, filtered, one page.

    Reads ``limit`` run hashes (a few more only when some of them expired meanwhile); ``total`` counts the
    index entries in the window.
    """
    backfill(redis)
    key = index_key(status, template_id)
    high: Any = "+inf" if until is None else until.timestamp()
    low: Any = "-inf" if since is None else since.timestamp()
    total = int(redis.zcount(key, low, high))
    views: list[RunView] = []
    stale: list[str] = []
    start = offset
    while len(views) < limit and start < total:
        ids: list[str] = redis.zrevrangebyscore(key, high, low, start=start, num=limit - len(views))
        if not ids:
            break
        start += len(ids)
        pipe = redis.pipeline(transaction=False)
        for run_id in ids:
            pipe.hgetall(keys.run_key(run_id))
        for run_id, data in zip(ids, pipe.execute(), strict=True):
            if not data or "meta" not in data:
                stale.append(run_id)
                continue
            if (status and data.get("status") != status) or (template_id and data.get("tpl") != template_id):
                continue  # moved index in the instant between the two reads
            views.append(view_from_hash(data, run_id))
    if stale:
        forget(redis, stale, {template_id} if template_id else set())
        total -= len(stale)
    return views, max(total, 0)
