"""The shipped base data, loaded once per process and moved forward in time to today.

Why shift dates: the data set is generated against a fixed reference day. Read as-is, every CI would turn
"stale" and every warranty "expired" a few months after release. Moving every date by the whole days
between the reference day and today keeps the relative picture (this CI was updated 400 days ago, that
server reaches end of life in 90 days) the same on any day the sample instance is used.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from importlib import resources
from typing import Any

DATE_FIELDS: frozenset[str] = frozenset(
    {
        "completed",
        "created_at",
        "end_date",
        "eol",
        "install_date",
        "last_run",
        "last_seen",
        "purchased",
        "start_date",
        "started",
        "sys_created_on",
        "updated_on",
        "warranty_end",
    }
)


@lru_cache(maxsize=1)
def _raw() -> dict[str, Any]:
    text = resources.files("workers.sample").joinpath("data/instance.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def _shift_value(value: str, delta: timedelta) -> str:
    if len(value) == 10:
        return (date.fromisoformat(value) + delta).isoformat()
    return (datetime.fromisoformat(value) + delta).isoformat()


def _shift_row(row: dict[str, Any], delta: timedelta) -> dict[str, Any]:
    return {k: _shift_value(v, delta) if k in DATE_FIELDS and isinstance(v, str) else v for k, v in row.items()}


@lru_cache(maxsize=1)
def _shifted(today: date) -> dict[str, Any]:
    raw = _raw()
    reference = datetime.fromisoformat(raw["meta"]["reference_time"]).date()
    delta = timedelta(days=(today - reference).days)
    data: dict[str, Any] = {"meta": {**raw["meta"], "shifted_by_days": delta.days}}
    for name, rows in raw.items():
        if name != "meta":
            data[name] = [_shift_row(row, delta) for row in rows]
    return data


def load_base(today: date | None = None) -> dict[str, Any]:
    """Every base table (``cmdb_ci``, ``cmdb_rel_ci``, ...) with dates moved to ``today``. Treat as read-only."""
    return _shifted(today or datetime.now(UTC).date())
