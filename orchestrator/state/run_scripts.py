"""Lua scripts that move run state atomically (one round trip each, safe across many workers and repairs).

Why Lua: a state change and everything that must follow from it (its audit entry, its event, its dead letter,
the lease it takes or frees, the outbox entry that will enqueue what it released) commit together or not at
all. A crash between two writes cannot leave a run that no repair can read.

Per-step fields in the run hash ``orch:run:<id>``: ``p:<s>`` planned spec (JSON), ``dp:<s>`` dependencies
(comma list), ``st:<s>`` status, ``at:<s>`` attempts, ``t0:<s>`` first start, ``r:<s>`` outcome JSON,
``ow:<s>`` lease owner (``<worker instance>/<pid>/<delivery tag>``), ``dv:<s>`` deliveries since the last
recorded outcome. Run fields: ``status``, ``meta`` (JSON), ``total``, ``done``, ``generation``,
``started_at``, ``finished_at``, ``error`` (JSON), ``cancelled_by``, ``touched`` (epoch of the last progress),
``regen`` (repairs by re-dispatch). Statuses are plain strings so Lua never round-trips JSON on the hot path.

Members of the lease, retry and touched sorted sets are ``<run>|<step>|<generation>`` or ``<run>``; step ids
are restricted to ``[A-Za-z0-9_.-]``, so they need no escaping anywhere (JSON lists are built by hand).
"""

from __future__ import annotations

from orchestrator import keys
from orchestrator.state import outcome_metrics

# ``emit_all``: append events to the stream and publish each live, then index their stream ids under their
# correlation ids (one push and one expiry per correlation id, however many of its events a script writes).
_EMIT = (
    """
local function emit_all(stream, channel, maxlen, events)
  local ids, cids = {}, {}
  for _, event_json in ipairs(events) do
    if event_json ~= '' then
      local id = redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'e', event_json)
      local cid = string.match(event_json, '"correlation_id":"([^"]*)"')
      if cid and cid ~= '' then
        if not ids[cid] then ids[cid] = {} table.insert(cids, cid) end
        table.insert(ids[cid], id)
      end
      redis.call('PUBLISH', channel, event_json)
    end
  end
  for _, cid in ipairs(cids) do
    local idx = '@@EVIDX@@' .. cid
    if redis.call('RPUSH', idx, unpack(ids[cid])) > @@EVMAX@@ then redis.call('LTRIM', idx, -@@EVMAX@@, -1) end
    redis.call('EXPIRE', idx, @@EVTTL@@)
  end
end
local function emit(stream, channel, maxlen, event_json)
  if event_json ~= nil then emit_all(stream, channel, maxlen, {event_json}) end
end
""".replace("@@EVIDX@@", keys.EVENT_INDEX_PREFIX)
    .replace("@@EVMAX@@", str(keys.EVENT_INDEX_MAX))
    .replace("@@EVTTL@@", str(keys.EVENT_INDEX_TTL_SECONDS))
)

# Publish one event from Python (``EventBus``): KEYS 1 events stream; ARGV 1 channel, 2 maxlen, 3 event JSON.
EMIT_EVENT = _EMIT + "\nemit(KEYS[1], ARGV[1], ARGV[2], ARGV[3])\n"

# Publish a batch of events (``EventBus.publish_many``): ARGV 3.. the events' JSON, in order. One script per batch
# instead of one per event: each run's event index takes one push and one expiry for the whole batch.
EMIT_EVENTS = _EMIT + "\nemit_all(KEYS[1], ARGV[1], ARGV[2], {unpack(ARGV, 3)})\n"

# ``audit_all``: append entries, in order, to the hash-chained audit stream (each digest covers the entry before
# it); the head is read once and moved once, however many entries a script writes.
_AUDIT = """
local function audit_all(stream, head, maxlen, bodies)
  local prev = nil
  for _, body in ipairs(bodies) do
    if body ~= '' then
      if prev == nil then prev = redis.call('GET', head) or '' end
      local digest = redis.sha1hex(prev .. '\\n' .. body)
      redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'entry', body, 'prev_hash', prev, 'hash', digest)
      prev = digest
    end
  end
  if prev ~= nil then redis.call('SET', head, prev) end
end
local function audit(stream, head, maxlen, body)
  if body ~= nil then audit_all(stream, head, maxlen, {body}) end
end
"""

# Shared helpers. ``fill`` replaces a quoted placeholder token (e.g. "@@attempt@@") in pre-encoded JSON.
_HELPERS = """
local function fill(text, token, value)
  local s, e = string.find(text, token, 1, true)
  if not s then return text end
  return string.sub(text, 1, s - 1) .. value .. string.sub(text, e + 1)
end
@@EMIT@@
local function reindex(run, old, new)
  if old == new then return end
  local rid = string.sub(run, @@RUNKEYLEN@@)
  local f = redis.call('HMGET', run, 'ct', 'tpl')
  local ct, tpl = f[1], f[2] or ''
  if not ct then return end
  if old and old ~= '' then redis.call('ZREM', '@@BYST@@' .. old, rid) end
  redis.call('ZADD', '@@BYST@@' .. new, ct, rid)
  if tpl ~= '' then
    if old and old ~= '' then redis.call('ZREM', '@@BYTS@@' .. old .. ':' .. tpl, rid) end
    redis.call('ZADD', '@@BYTS@@' .. new .. ':' .. tpl, ct, rid)
  end
end
@@AUDIT@@
local function dead_letter(stream, maxlen, entry)
  if entry == nil or entry == '' then return end
  redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'd', entry)
end
local function json_list(items)
  if #items == 0 then return '[]' end
  return '["' .. table.concat(items, '","') .. '"]'
end
-- ``redis.call(command, key, ...)`` over ``items``, ``size`` at a time: one call per slice instead of one per item
-- (for the runs of many steps), each argument list short enough for Lua's ``unpack``.
local function in_slices(command, key, items, size)
  for first = 1, #items, size do redis.call(command, key, unpack(items, first, math.min(first + size - 1, #items))) end
end
-- The status of every step of ``order`` (false for none), read in batches: one HMGET per 500 steps, so closing,
-- cancelling or resuming a 10,000-step run holds Redis for 20 reads instead of 10,000.
local function step_states(run, order)
  local states = {}
  for first = 1, #order, 500 do
    local fields = {}
    for i = first, math.min(first + 499, #order) do table.insert(fields, 'st:' .. order[i]) end
    local got = redis.call('HMGET', run, unpack(fields))
    for i = 1, #fields do states[first + i - 1] = got[i] end
  end
  return states
end
-- The first of a comma list of dependencies that has not ended (their statuses read through ``step_states``).
local function first_unfinished(run, deps)
  if not deps or deps == '' then return nil end
  local ids = {}
  for dep in string.gmatch(deps, '[^,]+') do table.insert(ids, dep) end
  local states = step_states(run, ids)
  for i, dep in ipairs(ids) do
    local ds = states[i]
    if not (ds == 'completed' or ds == 'failed' or ds == 'skipped') then return dep end
  end
  return nil
end
local function is_done(st)
  return st == 'completed' or st == 'failed' or st == 'skipped' or st == 'denied'
end
local function alive(workers, owner, now, ttl)
  if not owner or owner == '' then return false end
  local inst = string.match(owner, '^[^/]+')
  local beat = redis.call('ZSCORE', workers, inst)
  return beat ~= false and beat ~= nil and tonumber(beat) > now - ttl
end
local function summary_lists(run, decoded)
  local order = (decoded or cjson.decode(redis.call('HGET', run, 'meta')))['order']
  local states = step_states(run, order)
  local completed, failed, remaining = {}, {}, {}
  for i, id in ipairs(order) do
    local st = states[i]
    if st == 'completed' then table.insert(completed, id)
    elseif st == 'failed' then table.insert(failed, id)
    elseif st ~= 'skipped' then table.insert(remaining, id) end
  end
  return json_list(completed), json_list(failed), json_list(remaining)
end
local function fill_summary(text, c, f, r)
  text = fill(text, '"@@steps_completed@@"', c)
  text = fill(text, '"@@steps_failed@@"', f)
  return fill(text, '"@@steps_remaining@@"', r)
end
"""
# Index key prefixes are spliced in from ``keys`` (one source of truth for every key name).
_HELPERS = (
    _HELPERS.replace("@@EMIT@@", _EMIT)
    .replace("@@AUDIT@@", _AUDIT)
    .replace("@@BYST@@", keys.RUNS_BY_STATUS_PREFIX)
    .replace("@@BYTS@@", keys.RUNS_BY_TEMPLATE_STATUS_PREFIX)
    .replace("@@RUNKEYLEN@@", str(len(keys.run_key("")) + 1))
)
_HELPERS += outcome_metrics.LUA  # count(...) and friends: scripts that count pass keys.METRICS as their LAST key

# KEYS: run, cancel, events, workers, own-leases, leases, retries, outbox, touched (not written: a run with a
#       running step is left alone by the reconciler, and the finish touches the run when it records progress)
# ARGV: 1 step, 2 now_iso, 3 started-event (with "@@attempt@@"), 4 events-maxlen, 5 channel, 6 generation,
#       7 owner token, 8 now_epoch, 9 lease ttl, 10 max deliveries, 11 own instance, 12 deadline epoch,
#       13 run id, 14 owner a takeover is allowed to replace ('' for none)
# returns {verdict, spec, attempt, detail, outbox-pending} (outbox-pending is only looked up, and only matters,
# when the step does not run)
BEGIN_STEP = (
    _HELPERS
    + """
local run, sid = KEYS[1], ARGV[1]
local f = redis.call('HMGET', run, 'p:' .. sid, 'generation', 'st:' .. sid, 'status', 'dp:' .. sid, 'ow:' .. sid,
  'at:' .. sid, 't0:' .. sid, 'dv:' .. sid)
local spec = f[1]
if not spec then return {'missing', '', '0', '', '0'} end
local function pending() return tostring(redis.call('HLEN', KEYS[8])) end
local gen = f[2] or '0'
if gen ~= ARGV[6] then return {'stale', spec, '0', gen, pending()} end
local cur = f[3]
if is_done(cur) then return {'done', spec, '0', cur, pending()} end
if cur == 'cancelled' then return {'cancelled', spec, '0', '', pending()} end
if cur ~= 'running' and redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HSET', run, 'st:' .. sid, 'cancelled')
  return {'cancelled', spec, '0', '', pending()}
end
local status = f[4]
if status ~= 'running' then return {status, spec, '0', '', pending()} end
local early = first_unfinished(run, f[5])
if early then return {'early', spec, '0', early, pending()} end
local owner = f[6]
if owner == ARGV[7] then return {'run', spec, f[7] or '1', '', pending()} end
local now = tonumber(ARGV[8])
local held = owner and owner ~= '' and owner ~= ARGV[14]
if cur == 'running' and held and alive(KEYS[4], owner, now, tonumber(ARGV[9])) then
  if string.match(owner, '^[^/]+') == ARGV[11] then return {'mine', spec, '0', owner, pending()} end
  return {'busy', spec, '0', owner, pending()}
end
local deliveries = 1
if cur == 'running' then
  deliveries = (tonumber(f[9]) or 0) + 1
  if deliveries > tonumber(ARGV[10]) then
    redis.call('HSET', run, 'dv:' .. sid, deliveries)
    return {'poison', spec, '0', tostring(deliveries), pending()}
  end
end
local member = ARGV[13] .. '|' .. sid .. '|' .. gen
local attempt = (tonumber(f[7]) or 0) + 1
redis.call('HSET', run, 'st:' .. sid, 'running', 'ow:' .. sid, ARGV[7], 'touched', ARGV[8], 'dv:' .. sid, deliveries,
  'at:' .. sid, attempt, 't0:' .. sid, f[8] or ARGV[2])
redis.call('SADD', KEYS[5], member)
redis.call('ZADD', KEYS[6], ARGV[12], member)
if cur == 'retrying' then redis.call('ZREM', KEYS[7], member) end
emit(KEYS[3], ARGV[5], ARGV[4], fill(ARGV[3], '"@@attempt@@"', tostring(attempt)))
return {'run', spec, tostring(attempt), tostring(deliveries), '0'}
"""
)

# KEYS: 1 run, 2 triggers, 3 active, 4 events, 5 own-leases, 6 leases, 7 audit, 8 audit-head, 9 dlq,
#       10 outbox, 11 outbox-index, 12 retries, 13 touched, 14.. the keys of the broker commands, last: metrics
# ARGV: 1 step, 2 step status, 3 outcome json, 4 effect (done|stop|none|retry), 5 now_iso, 6 run error json,
#       7 ttl, 8 run id, 9 step event, 10 events-maxlen, 11 channel, 12 step audit body, 13 dead letter json,
#       14 closing audit template (stop), 15 closing event template (stop), 16 audit-maxlen, 17 dlq-maxlen,
#       18 now_epoch, 19 generation, 20 retry-at epoch, 21 actor, 22 closing id seed, 23.. broker commands as
#       (command, argument) pairs, the n-th on KEYS[13 + n]: the next link of the step's chain (LPUSH, PEXPIRE),
#       or the step's part of a chord (JOIN on Celery's chord-size key, argument "<group>\n<body json>"), or the
#       size of the chord the step's chain goes on with (CHORDSIZE on that key, "<size>:<ttl>"), run only
#       when this script records the completion of a running run's step (never on an early return)
# effect: 'done' counts toward completion and releases gated joins; 'stop' fails the run; 'retry' records a
# failed attempt that will run again; 'none' only records.
# returns {'ok'|'dup'|'missing'|'stale', ended-status-or-'', summary-json-or-'', fired trigger ids...,
#          outbox entries of completed chord joins ('join:<generation>:<group>')...}
FINISH_STEP = (
    _HELPERS
    + """
local run, sid = KEYS[1], ARGV[1]
local fv = redis.call('HMGET', run, 'p:' .. sid, 'generation', 'st:' .. sid, 'status', 'done', 'total')
local spec = fv[1]
if not spec then return {'missing', '', ''} end
local gen = fv[2] or '0'
if gen ~= ARGV[19] then return {'stale', '', ''} end
local cur = fv[3]
if is_done(cur) or cur == 'cancelled' then return {'dup', '', ''} end
local member = ARGV[8] .. '|' .. sid .. '|' .. gen
redis.call('SREM', KEYS[5], member)
redis.call('ZREM', KEYS[6], member)
redis.call('HDEL', run, 'ow:' .. sid, 'dv:' .. sid)
local effect, status = ARGV[4], fv[4]
local done = (tonumber(fv[5]) or 0) + 1
local ended = ''  -- what this step ends the run as: 'failed' (stop), 'completed' (its last step done), or not
if status == 'running' then
  if effect == 'stop' then ended = 'failed'
  elseif effect == 'done' and done >= tonumber(fv[6]) then ended = 'completed' end
end
local fields = {'r:' .. sid, ARGV[3], 'touched', ARGV[18], 'st:' .. sid, effect == 'retry' and 'retrying' or ARGV[2]}
if effect == 'done' then table.insert(fields, 'done') table.insert(fields, done) end
if ended ~= '' then
  table.insert(fields, 'status') table.insert(fields, ended)
  table.insert(fields, 'finished_at') table.insert(fields, ARGV[5])
  if ended == 'failed' then table.insert(fields, 'error') table.insert(fields, ARGV[6]) end
end
redis.call('HSET', run, unpack(fields))
if effect == 'retry' then redis.call('ZADD', KEYS[12], ARGV[20], member) end
if ended ~= '' then reindex(run, status, ended) end
local events, audits = {ARGV[9]}, {ARGV[12]}  -- written last, in this order, with the run's closing records
dead_letter(KEYS[9], ARGV[17], ARGV[13])
count_step(run, sid, ARGV[2], effect, ARGV[3], ARGV[13], spec)
local out = {'ok', ended, ''}
local joined = {}
if effect == 'done' and status == 'running' then
  if ARGV[2] == 'completed' then
    for i = 23, #ARGV, 2 do
      local key = KEYS[13 + (i - 21) / 2]
      if ARGV[i] == 'JOIN' then
        local nl = string.find(ARGV[i + 1], '\\n', 1, true)
        local group = string.sub(ARGV[i + 1], 1, nl - 1)
        local parts = redis.call('HINCRBY', run, 'jn:' .. gen .. ':' .. group, 1)
        if parts == tonumber(redis.call('GET', key)) then
          local entry = 'join:' .. gen .. ':' .. group
          redis.call('HSET', KEYS[10], entry, string.sub(ARGV[i + 1], nl + 1))
          redis.call('ZADD', KEYS[11], 'NX', ARGV[18], ARGV[8])
          redis.call('DEL', key)  -- Celery's cleanup of the chord never runs now: its size key goes here
          table.insert(joined, entry)
        end
      elseif ARGV[i] == 'CHORDSIZE' then
        local size, ttl = string.match(ARGV[i + 1], '^(%d+):(%d+)$')
        redis.call('DEL', string.sub(key, 1, -2) .. 'c')
        if ttl ~= '0' then redis.call('SET', key, size, 'EX', ttl) else redis.call('SET', key, size) end
      else
        redis.call(ARGV[i], key, ARGV[i + 1])
      end
    end
  end
  local idx = redis.call('HGET', KEYS[2], 'idx:' .. sid)
  if idx then
    for tid in string.gmatch(idx, '[^,]+') do
      if redis.call('HINCRBY', KEYS[2], 'wait:' .. tid, -1) == 0 then
        redis.call('HSET', KEYS[10], 'fire:' .. gen .. ':' .. tid, '1')
        table.insert(out, tid)
      end
    end
    if #out > 3 then redis.call('ZADD', KEYS[11], 'NX', ARGV[18], ARGV[8]) end
  end
  for _, entry in ipairs(joined) do table.insert(out, entry) end
end
if status == 'running' and ended == '' then redis.call('ZADD', KEYS[13], ARGV[18], ARGV[8]) end  -- progress
if ended ~= '' then
  local meta = cjson.decode(redis.call('HGET', run, 'meta'))  -- read and decoded once for labels and lists
  count('runs_finished|' .. run_labels(run, meta) .. '|' .. ended)
  local c, f, r = summary_lists(run, meta)
  out[3] = '{"steps_completed":' .. c .. ',"steps_remaining":' .. r .. ',"steps_failed":' .. f .. '}'
  if ended == 'completed' then
    local entry_id = redis.sha1hex(ARGV[22] .. ':closing')
    local details = '{"status":"completed","steps_completed":' .. c .. ',"steps_failed":' .. f
      .. ',"steps_remaining":' .. r .. '}'
    table.insert(audits, '{"actor":"' .. ARGV[21] .. '","details":' .. details .. ',"entry_id":"' .. entry_id
      .. '","event_type":"workflow_completed","result":"success","target":"' .. ARGV[8] .. '","timestamp":"'
      .. ARGV[5] .. '"}')
    table.insert(events, '{"event_id":"' .. string.sub(redis.sha1hex(entry_id), 1, 32)
      .. '","event_type":"workflow.completed","source":"' .. ARGV[21] .. '","correlation_id":"' .. ARGV[8]
      .. '","payload":' .. details .. ',"timestamp":"' .. ARGV[5] .. '"}')
  else
    table.insert(audits, fill_summary(ARGV[14], c, f, r))
    table.insert(events, fill_summary(ARGV[15], c, f, r))
  end
  local ttl = tonumber(ARGV[7])
  redis.call('EXPIRE', run, ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
  redis.call('SREM', KEYS[3], ARGV[8])
  redis.call('ZREM', KEYS[13], ARGV[8])
end
emit_all(KEYS[4], ARGV[11], ARGV[10], events)
audit_all(KEYS[7], KEYS[8], ARGV[16], audits)
return out
"""
)

# KEYS: 1 run, 2 cancel flag, 3 active, 4 events, 5 audit, 6 audit-head, 7 retries, 8 touched, 9 triggers,
#       last: metrics
# ARGV: 1 now_iso, 2 actor, 3 audit template, 4 event template, 5 ttl, 6 events-maxlen, 7 channel,
#       8 audit-maxlen, 9 run id
# Tokens in the templates: "@@steps_cancelled@@" and "@@steps_running@@".
# returns {'ok', previous-status, cancelled-json, running-json} | {'missing'} | {'illegal', status}
CANCEL_RUN = (
    _HELPERS
    + """
local run = KEYS[1]
local status = redis.call('HGET', run, 'status')
if not status then return {'missing', '', '[]', '[]'} end
if status ~= 'pending' and status ~= 'running' then return {'illegal', status, '[]', '[]'} end
local ttl = tonumber(ARGV[5])
redis.call('SET', KEYS[2], ARGV[2], 'EX', ttl)
redis.call('HSET', run, 'status', 'cancelled', 'finished_at', ARGV[1], 'cancelled_by', ARGV[2])
reindex(run, status, 'cancelled')
redis.call('HDEL', run, 'error')
count('runs_finished|' .. run_labels(run) .. '|cancelled')
local gen = redis.call('HGET', run, 'generation') or '0'
local order = cjson.decode(redis.call('HGET', run, 'meta'))['order']
local states = step_states(run, order)
local cancelled, running, marks, retried = {}, {}, {}, {}
for i, id in ipairs(order) do
  local st = states[i]
  if st == 'running' then
    table.insert(running, id)
  elseif st == 'pending' or st == 'retrying' or not st then
    table.insert(cancelled, id)
    table.insert(marks, 'st:' .. id)
    table.insert(marks, 'cancelled')
    -- only a retrying step is in the retries set (a stale member is dropped by the reconciler anyway)
    if st == 'retrying' then table.insert(retried, ARGV[9] .. '|' .. id .. '|' .. gen) end
  end
end
in_slices('HSET', run, marks, 1000)
in_slices('ZREM', KEYS[7], retried, 500)
local c, r = json_list(cancelled), json_list(running)
audit(KEYS[5], KEYS[6], ARGV[8], fill(fill(ARGV[3], '"@@steps_cancelled@@"', c), '"@@steps_running@@"', r))
emit(KEYS[4], ARGV[7], ARGV[6], fill(fill(ARGV[4], '"@@steps_cancelled@@"', c), '"@@steps_running@@"', r))
redis.call('EXPIRE', run, ttl)
redis.call('EXPIRE', KEYS[9], ttl)
redis.call('SREM', KEYS[3], ARGV[9])
redis.call('ZREM', KEYS[8], ARGV[9])
return {'ok', status, c, r}
"""
)

# Take a running step's lease away (its worker is gone: the next delivery takes it over; its deadline stays in
# force), or end it as ARGV[3] (its execution was terminated); only if it is still running under the expected
# owner ('' = any owner).
# KEYS: 1 run, 2 leases, 3 events, last: metrics
# ARGV: 1 step, 2 expected owner, 3 new status, 4 outcome json, 5 run id, 6 event json, 7 events-maxlen, 8 channel
RELEASE_STEP = (
    _HELPERS
    + """
local run, sid = KEYS[1], ARGV[1]
local st = redis.call('HGET', run, 'st:' .. sid)
if st ~= 'running' then return {'skip', st or ''} end
local owner = redis.call('HGET', run, 'ow:' .. sid) or ''
if ARGV[2] ~= '' and owner ~= ARGV[2] then return {'moved', owner} end
local gen = redis.call('HGET', run, 'generation') or '0'
redis.call('HDEL', run, 'ow:' .. sid)
if ARGV[3] ~= 'running' then
  redis.call('ZREM', KEYS[2], ARGV[5] .. '|' .. sid .. '|' .. gen)
  redis.call('HSET', run, 'st:' .. sid, ARGV[3])
  if ARGV[4] ~= '' then redis.call('HSET', run, 'r:' .. sid, ARGV[4]) end
  count('step_attempts|' .. step_labels(run, sid) .. '|' .. ARGV[3])
end
emit(KEYS[3], ARGV[8], ARGV[7], ARGV[6])
return {'ok', owner}
"""
)

# Resume (from failed or cancelled) or repair (a running run whose messages were lost) as generation N+1.
# One compare-and-set: the expected generation, a legal status, and no step of the old generation still held
# by a live worker. New triggers are staged first under KEYS[3] and moved into place here.
# KEYS: 1 run, 2 triggers, 3 staged triggers, 4 cancel flag, 5 active, 6 outbox, 7 outbox-index, 8 events,
#       9 audit, 10 audit-head, 11 workers, 12 leases, 13 retries, 14 touched, last: metrics
# ARGV: 1 mode (resume|repair), 2 expected generation, 3 now_iso, 4 now_epoch, 5 lease ttl, 6 canvas json,
#       7 audit body, 8 event json, 9 events-maxlen, 10 channel, 11 audit-maxlen, 12 run id, 13.. steps to redo
# returns {'ok', new-generation, reset-count} | {'missing'} | {'illegal', status} | {'moved', generation}
#       | {'busy', step, owner}
REDISPATCH = (
    _HELPERS
    + """
local run = KEYS[1]
local status = redis.call('HGET', run, 'status')
if not status then return {'missing', '', ''} end
local mode = ARGV[1]
if mode == 'resume' and status ~= 'failed' and status ~= 'cancelled' then return {'illegal', status, ''} end
if mode == 'repair' and status ~= 'running' then return {'illegal', status, ''} end
local gen = redis.call('HGET', run, 'generation') or '0'
if gen ~= ARGV[2] then return {'moved', gen, ''} end
local now, ttl = tonumber(ARGV[4]), tonumber(ARGV[5])
local redo = {}
for i = 13, #ARGV do table.insert(redo, ARGV[i]) end
local states = step_states(run, redo)
for i, sid in ipairs(redo) do
  if states[i] == 'running' then
    local owner = redis.call('HGET', run, 'ow:' .. sid)
    if alive(KEYS[11], owner, now, ttl) then return {'busy', sid, owner} end
  end
end
local new_gen = redis.call('HINCRBY', run, 'generation', 1)
local members, marks, stale = {}, {}, {}  -- what the steps to redo leave behind, written 500 steps at a time
for i, sid in ipairs(redo) do
  if states[i] ~= 'completed' then
    table.insert(members, ARGV[12] .. '|' .. sid .. '|' .. gen)
    table.insert(marks, 'st:' .. sid) table.insert(marks, 'pending')
    table.insert(stale, 'r:' .. sid) table.insert(stale, 'ow:' .. sid) table.insert(stale, 'dv:' .. sid)
  end
end
local reset = #members
in_slices('ZREM', KEYS[12], members, 500)
in_slices('ZREM', KEYS[13], members, 500)
in_slices('HSET', run, marks, 1000)
in_slices('HDEL', run, stale, 1500)
redis.call('HSET', run, 'done', tonumber(redis.call('HGET', run, 'total')) - reset, 'status', 'running',
  'touched', ARGV[4])
reindex(run, status, 'running')
redis.call('HSETNX', run, 'started_at', ARGV[3])
redis.call('HDEL', run, 'finished_at', 'error', 'cancelled_by')
if mode == 'repair' then redis.call('HINCRBY', run, 'regen', 1) else count('runs_resumed|' .. run_labels(run)) end
redis.call('DEL', KEYS[4])
if redis.call('EXISTS', KEYS[3]) == 1 then redis.call('RENAME', KEYS[3], KEYS[2]) else redis.call('DEL', KEYS[2]) end
redis.call('PERSIST', run)
redis.call('SADD', KEYS[5], ARGV[12])
redis.call('ZADD', KEYS[14], ARGV[4], ARGV[12])
if ARGV[6] ~= '' then
  redis.call('HSET', KEYS[6], 'start:' .. new_gen, ARGV[6])
  redis.call('ZADD', KEYS[7], 'NX', ARGV[4], ARGV[12])
end
audit(KEYS[9], KEYS[10], ARGV[11], ARGV[7])
emit(KEYS[8], ARGV[10], ARGV[9], ARGV[8])
return {'ok', tostring(new_gen), tostring(reset)}
"""
)

# The tail of run creation, queued with EVAL (never EVALSHA) inside the creating MULTI: announces the run once
# even if the transaction is sent again after a lost reply.
# KEYS: 1 run, 2 audit, 3 audit-head, 4 events, last: metrics ; ARGV: 1 audit-maxlen, 2 events-maxlen, 3 channel,
#       4 event json, 5 the runs_started field of the run's labels, 6.. audit bodies
ANNOUNCE_RUN = (
    _EMIT  # only the helpers it uses: EVAL sends (and Redis hashes) the whole text with every start
    + _AUDIT
    + outcome_metrics.COUNT_LUA
    + """
if redis.call('HSETNX', KEYS[1], 'announced', '1') == 0 then return 'dup' end
count(ARGV[5])
audit_all(KEYS[2], KEYS[3], ARGV[1], {unpack(ARGV, 6)})
emit(KEYS[4], ARGV[3], ARGV[2], ARGV[4])
return 'ok'
"""
)

# Fail a running run that can no longer progress (the reconciler's last resort), with its closing records.
# KEYS: 1 run, 2 active, 3 events, 4 audit, 5 audit-head, 6 touched, 7 triggers, last: metrics
# ARGV: 1 now_iso, 2 error json, 3 audit template, 4 event template, 5 ttl, 6 events-maxlen, 7 channel,
#       8 audit-maxlen, 9 run id
FAIL_RUN = (
    _HELPERS
    + """
local run = KEYS[1]
local status = redis.call('HGET', run, 'status')
if status ~= 'running' then return {'illegal', status or ''} end
redis.call('HSET', run, 'status', 'failed', 'finished_at', ARGV[1], 'error', ARGV[2])
reindex(run, status, 'failed')
count('runs_finished|' .. run_labels(run) .. '|failed')
local c, f, r = summary_lists(run)
audit(KEYS[4], KEYS[5], ARGV[8], fill_summary(ARGV[3], c, f, r))
emit(KEYS[3], ARGV[7], ARGV[6], fill_summary(ARGV[4], c, f, r))
local ttl = tonumber(ARGV[5])
redis.call('EXPIRE', run, ttl)
redis.call('EXPIRE', KEYS[7], ttl)
redis.call('SREM', KEYS[2], ARGV[9])
redis.call('ZREM', KEYS[6], ARGV[9])
return {'ok', status}
"""
)

# Remove outbox entries that took effect; forget the run in the outbox index once nothing is left.
# KEYS: 1 outbox, 2 outbox-index ; ARGV: 1 run id, 2.. entry names
CONFIRM_OUTBOX = """
for i = 2, #ARGV do redis.call('HDEL', KEYS[1], ARGV[i]) end
if redis.call('HLEN', KEYS[1]) == 0 then redis.call('ZREM', KEYS[2], ARGV[1]) end
return redis.call('HLEN', KEYS[1])
"""

# Confirm start entries of several runs at once (what a dispatcher applied since its last write).
# KEYS: 1 outbox-index, 2.. outboxes ; ARGV: for each outbox, its run id and its entry name
CONFIRM_STARTS = """
for i = 2, #KEYS do
  redis.call('HDEL', KEYS[i], ARGV[2 * i - 2])
  if redis.call('HLEN', KEYS[i]) == 0 then redis.call('ZREM', KEYS[1], ARGV[2 * i - 3]) end
end
return #KEYS - 1
"""

# A status move outside the step scripts (kept for the rare direct transitions; ORCH_3002 on illegal moves).
# KEYS: run   ARGV: to, now, error_json_or_empty, from1, from2, ...
TRANSITION = (
    _HELPERS
    + """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'missing', ''} end
for i = 4, #ARGV do
  if status == ARGV[i] then
    redis.call('HSET', KEYS[1], 'status', ARGV[1])
    reindex(KEYS[1], status, ARGV[1])
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
)
