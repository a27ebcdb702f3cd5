"""Outcome metrics: counted in Redis where each state change happens, read back by ``/metrics``.

Why in Redis: runs start in the API, the CLI, MCP over stdio and the beat; steps end in the workers; repairs
happen in whichever process leads the reconciler. A counter in one process would miss the others (runs
started from the CLI were never counted). So every change is counted by the code that makes it, in the same
round trip: the Lua scripts that start, finish, cancel, fail and resume runs add to the counters themselves
(``LUA``, appended to their helpers), and the few Python writers (a denial at dispatch, dead letters written
outside the scripts, the reconciler's pass) add a command to the pipeline they already send. Each event is
counted exactly once, by the one place that makes it happen.

Layout: one hash ``keys.METRICS``; a field is ``<family>|<label>|<label>...`` (label values are identifiers,
templates, sources, agents and actions, none of which can hold ``|``), its value the count. Step durations are
a histogram kept as one counter per bucket (non-cumulative, cumulated when read) and a float sum.
"""

from __future__ import annotations

from typing import Any

from orchestrator import keys

SEP = "|"

# Upper bounds (seconds) of the step-duration buckets; the last bucket is +Inf.
STEP_SECONDS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)

# Families (the first part of a field) and their labels, after the family name.
RUNS_STARTED = "runs_started"  # template, source
RUNS_FINISHED = "runs_finished"  # template, source, status (completed | failed | cancelled)
RUNS_RESUMED = "runs_resumed"  # template, source
STEP_ATTEMPTS = "step_attempts"  # agent, action, outcome (completed | failed | retried | cancelled | denied)
STEP_SECONDS = "step_seconds"  # agent, action, bucket index
STEP_SECONDS_SUM = "step_seconds_sum"  # agent, action
POLICY_DENIALS = "policy_denials"  # where (dispatch | worker), action
DEAD_LETTERS = "dead_letters"  # reason
RECONCILER = "reconciler"  # kind of repair

# Lua helpers for the run scripts. A script that counts passes ``keys.METRICS`` as its LAST key. ``COUNT_LUA`` is
# what a run's start needs (it is sent as text with every start, and Redis hashes the text each time; the start's
# labels come with it, from ``run_labels``); ``LUA`` adds the helpers the other scripts use: a run's labels read
# from its ``meta``, and the step helpers. Outcome JSON and dead letters are written by ``RunStore.finish_step`` /
# ``step_records`` with ``json.dumps`` (so ``"key": value``); planned steps by pydantic (``"key":value``, ``action``
# and ``agent_id`` before ``parameters``, so the first match is the step's own field).
COUNT_LUA = """
local function count(field, by)
  redis.call('HINCRBY', KEYS[#KEYS], field, by or 1)
end
"""
LUA = (
    COUNT_LUA
    + """
local function run_labels(run, decoded)
  local meta = decoded or cjson.decode(redis.call('HGET', run, 'meta') or '{}')
  local template, source = meta['template_id'], meta['source']
  if type(template) ~= 'string' then template = 'inline' end
  if type(source) ~= 'string' then source = 'unknown' end
  return template .. '|' .. source
end
local METRIC_BUCKETS = {"""
    + ", ".join(repr(b) for b in STEP_SECONDS_BUCKETS)
    + """}
local function spec_labels(spec)
  return (string.match(spec, '"agent_id":"([^"]*)"') or 'unknown') .. '|'
    .. (string.match(spec, '"action":"([^"]*)"') or 'unknown')
end
local function step_labels(run, sid)
  return spec_labels(redis.call('HGET', run, 'p:' .. sid) or '')
end
local function count_step(run, sid, status, effect, outcome, letter, spec)
  local labels = spec and spec_labels(spec) or step_labels(run, sid)
  count('step_attempts|' .. labels .. '|' .. (effect == 'retry' and 'retried' or status))
  local ms = tonumber(string.match(outcome, '^{"finished_at": [^,]*, "duration_ms": ([-%d.eE+]+)'))
  if ms then
    local seconds, bucket = ms / 1000, #METRIC_BUCKETS
    for i, bound in ipairs(METRIC_BUCKETS) do
      if seconds <= bound then bucket = i - 1 break end
    end
    count('step_seconds|' .. labels .. '|' .. bucket)
    redis.call('HINCRBYFLOAT', KEYS[#KEYS], 'step_seconds_sum|' .. labels, seconds)
  end
  if letter ~= '' then count('dead_letters|' .. (string.match(letter, '"reason": "([^"]*)"') or 'unknown')) end
  if status == 'denied' then count('policy_denials|worker|' .. string.match(labels, '[^|]*$')) end
end
"""
)


def run_labels(template_id: str | None, source: str | None) -> tuple[str, str]:
    """A run's labels as the scripts' ``run_labels`` reads them from its ``meta``: no template is ``inline``."""
    return (template_id if isinstance(template_id, str) else "inline", source if isinstance(source, str) else "unknown")


def field(family: str, *labels: str) -> str:
    return SEP.join((family, *labels))


def count_to(pipe: Any, family: str, *labels: str, by: int = 1) -> None:
    """Queue one count on a pipeline the caller sends anyway (no extra round trip)."""
    pipe.hincrby(keys.METRICS, field(family, *labels), by)
