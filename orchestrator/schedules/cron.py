"""Cron expressions for schedules: five fields in UTC, checked field by field so the error names the field.

Why Celery's ``crontab``: beat evaluates it, so what we accept is exactly what will run; we only add the
checks it lacks (field count, which field is wrong, the usual ``@daily`` shorthands).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from celery.schedules import ParseException, crontab

from orchestrator.errors import InputInvalidError
from orchestrator.models.common import utcnow

FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")
RANGES = {
    "minute": "0-59",
    "hour": "0-23",
    "day_of_month": "1-31",
    "month_of_year": "1-12 or jan-dec",
    "day_of_week": "0-6 (0 is Sunday) or sun-sat",
}
SHORTHANDS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
MAX_LENGTH = 200
EXAMPLE = "'0 3 * * *' (03:00 UTC daily) or '*/15 * * * mon-fri'"


def _invalid(expression: str, reason: str) -> InputInvalidError:
    return InputInvalidError(
        f"Invalid cron expression '{expression}': {reason}. Use five fields, minute hour day-of-month month "
        f"day-of-week, in UTC, e.g. {EXAMPLE}",
        {"cron": expression, "reason": reason},
    )


def normalize(expression: str) -> str:
    """The expression with single spaces and shorthands expanded; ORCH_8003 naming what is wrong."""
    text = " ".join(str(expression).split())
    if not text or len(text) > MAX_LENGTH:
        raise _invalid(str(expression)[:MAX_LENGTH], f"it must be 1 to {MAX_LENGTH} characters")
    text = SHORTHANDS.get(text.lower(), text)
    fields = text.split(" ")
    if len(fields) != len(FIELDS):
        raise _invalid(text, f"it has {len(fields)} field(s), not 5")
    for name, value in zip(FIELDS, fields, strict=True):
        try:
            crontab(**{name: value})
        except (ValueError, ParseException, IndexError, KeyError) as exc:
            field = name.replace("_", "-")
            allowed = f"allowed {RANGES[name]}, '*', a-b, a,b, */n"
            raise _invalid(text, f"{field} '{value}' is not valid ({allowed})") from exc
    parse(text)
    return text


def parse(expression: str) -> crontab:
    """Celery's ``crontab`` for an already normalized expression (ORCH_8003 if the fields never meet)."""
    minute, hour, day_of_month, month_of_year, day_of_week = expression.split(" ")
    try:
        return crontab(
            minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month_of_year, day_of_week=day_of_week
        )
    except (ValueError, ParseException) as exc:
        raise _invalid(expression, str(exc).rstrip(".")) from None


def next_run(expression: str, last_run_at: datetime | None = None) -> datetime:
    """When the schedule fires next, given when it last fired (default: now), in UTC; never in the past.

    Celery's ``remaining_estimate`` is measured from now, whatever ``last_run_at`` is.
    """
    now = utcnow()
    remaining: timedelta = parse(expression).remaining_estimate(last_run_at or now)
    when = max(now, now + remaining)
    return datetime.fromtimestamp(round(when.timestamp()), tz=UTC)  # Celery lands a few microseconds early
