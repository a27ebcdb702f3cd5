"""Lua scripts that move run state atomically (one round trip each, safe across many workers).

Per-step fields in the run hash ``orch:run:<id>``: ``p:<step>`` planned spec (JSON), ``st:<step>`` status,
``at:<step>`` attempts, ``t0:<step>`` first start time, ``r:<step>`` outcome JSON (finished_at, duration,
result, error). Run fields: ``status``, ``meta`` (JSON), ``total``, ``done``, ``started_at``, ``finished_at``,
``error`` (JSON), ``generation``. Statuses are plain strings so Lua never round-trips JSON.
"""

from __future__ import annotations

DONE_STATES = "completed failed skipped"

# Emits a pre-encoded event (ARGV[n]) on the stream and channel, adding the attempt number to its payload.
_EMIT = """
local function emit(stream, event_json, maxlen, channel, attempt)
  if event_json == '' then return end
  if attempt then
    local event = cjson.decode(event_json)
    event['payload']['attempt'] = attempt
    event_json = cjson.encode(event)
  end
  redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'e', event_json)
  redis.call('PUBLISH', channel, event_json)
end
"""

# KEYS: run, cancel, events-stream   ARGV: step_id, now, started-event-json, events-maxlen, events-channel
BEGIN_STEP = (
    _EMIT
    + """
local sid = ARGV[1]
local spec = redis.call('HGET', KEYS[1], 'p:' .. sid)
if not spec then return {'missing', ''} end
local cur = redis.call('HGET', KEYS[1], 'st:' .. sid)
if cur == 'completed' or cur == 'failed' or cur == 'skipped' or cur == 'denied' then return {'done', spec} end
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HSET', KEYS[1], 'st:' .. sid, 'cancelled')
  return {'cancelled', spec}
end
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'running' then return {status, spec} end
redis.call('HSET', KEYS[1], 'st:' .. sid, 'running')
redis.call('HSETNX', KEYS[1], 't0:' .. sid, ARGV[2])
local attempt = redis.call('HINCRBY', KEYS[1], 'at:' .. sid, 1)
emit(KEYS[3], ARGV[3], ARGV[4], ARGV[5], attempt)
return {'run', spec, tostring(attempt)}
"""
)

# KEYS: run, triggers, active-set, events-stream
# ARGV: step_id, step_status, outcome_json, effect, now, run_error, ttl, run_id, event_json, events-maxlen, channel
# effect: 'done' (counts toward completion, fires triggers), 'stop' (fails the run), 'none' (just records)
# returns {'ok'|'dup', ended-status-or-'', closing-summary-json-or-'', fired-trigger-canvas...}
# The closing summary, so the worker need not re-read the run: step ids are restricted to [A-Za-z0-9_.-],
# so they need no JSON escaping (and cjson would encode an empty list as {}).
_SUMMARY = """
local function json_list(items)
  if #items == 0 then return '[]' end
  return '["' .. table.concat(items, '","') .. '"]'
end
local function summary(run)
  local order = cjson.decode(redis.call('HGET', run, 'meta'))['order']
  local completed, failed, remaining = {}, {}, {}
  for _, id in ipairs(order) do
    local st = redis.call('HGET', run, 'st:' .. id)
    if st == 'completed' then table.insert(completed, id)
    elseif st == 'failed' then table.insert(failed, id)
    elseif st ~= 'skipped' then table.insert(remaining, id) end
  end
  return '{"steps_completed":' .. json_list(completed) .. ',"steps_remaining":' .. json_list(remaining)
    .. ',"steps_failed":' .. json_list(failed) .. '}'
end
"""

FINISH_STEP = (
    _EMIT
    + _SUMMARY
    + """
local sid = ARGV[1]
local cur = redis.call('HGET', KEYS[1], 'st:' .. sid)
if cur == 'completed' or cur == 'failed' or cur == 'skipped' then return {'dup', ''} end
redis.call('HSET', KEYS[1], 'st:' .. sid, ARGV[2], 'r:' .. sid, ARGV[3])
emit(KEYS[4], ARGV[9], ARGV[10], ARGV[11], nil)
local status = redis.call('HGET', KEYS[1], 'status')
local out = {'ok', '', ''}
if ARGV[4] == 'stop' then
  if status == 'running' then
    redis.call('HSET', KEYS[1], 'status', 'failed', 'finished_at', ARGV[5], 'error', ARGV[6])
    out[2] = 'failed'
  end
elseif ARGV[4] == 'done' then
  local done = redis.call('HINCRBY', KEYS[1], 'done', 1)
  local total = tonumber(redis.call('HGET', KEYS[1], 'total'))
  if status == 'running' then
    if done >= total then
      redis.call('HSET', KEYS[1], 'status', 'completed', 'finished_at', ARGV[5])
      out[2] = 'completed'
    end
    local idx = redis.call('HGET', KEYS[2], 'idx:' .. sid)
    if idx then
      for tid in string.gmatch(idx, '[^,]+') do
        if redis.call('HINCRBY', KEYS[2], 'wait:' .. tid, -1) == 0 then
          table.insert(out, redis.call('HGET', KEYS[2], 'sig:' .. tid))
        end
      end
    end
  end
end
if out[2] ~= '' then
  out[3] = summary(KEYS[1])
  local ttl = tonumber(ARGV[7])
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
  redis.call('SREM', KEYS[3], ARGV[8])
end
return out
"""
)

# KEYS: run   ARGV: to, now, error_json_or_empty, from1, from2, ...
TRANSITION = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'missing', ''} end
for i = 4, #ARGV do
  if status == ARGV[i] then
    redis.call('HSET', KEYS[1], 'status', ARGV[1])
    if ARGV[1] == 'running' then
      redis.call('HSETNX', KEYS[1], 'started_at', ARGV[2])
      redis.call('HDEL', KEYS[1], 'finished_at', 'error')
    else
      redis.call('HSET', KEYS[1], 'finished_at', ARGV[2])
      if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'error', ARGV[3]) end
    end
    return {'ok', status}
  end
end
return {'illegal', status}
"""
