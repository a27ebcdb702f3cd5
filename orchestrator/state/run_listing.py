"""Runs by creation time: the run index is a sorted set scored by creation time, so a window is a range read.

Why beside ``runs.py`` rather than in it: the workflow view filters runs by time; reading only the window's
slice of the index keeps that cheap without touching the run store's own listing.
"""

from __future__ import annotations

import json
from datetime import datetime

from orchestrator import keys
from orchestrator.models.run import RunView
from orchestrator.runtime.redis_client import RedisClient
from orchestrator.state.runs import view_from_hash

BATCH = 500


def list_runs_between(
    redis: RedisClient,
    *,
    status: str | None = None,
    template_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[RunView], int]:
    """Runs created in ``[since, until]``, newest first, filtered and paged; ``total`` counts every match."""
    high = "+inf" if until is None else until.timestamp()
    low = "-inf" if since is None else since.timestamp()
    ids: list[str] = redis.zrevrangebyscore(keys.RUNS_INDEX, high, low)
    views: list[RunView] = []
    matched = 0
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        pipe = redis.pipeline(transaction=False)
        for run_id in chunk:
            pipe.hgetall(keys.run_key(run_id))
        for data in pipe.execute():
            if not data or (status and data.get("status") != status):
                continue
            if template_id and json.loads(data["meta"]).get("template_id") != template_id:
                continue
            if offset <= matched < offset + limit:
                views.append(view_from_hash(data))
            matched += 1
    return views, matched
