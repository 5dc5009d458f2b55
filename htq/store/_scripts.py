"""The Lua scripts: every transition, each one atomic step in Redis, and how they are run.

Transition scripts share a prelude (`_PRELUDE`) and a fixed KEYS layout (`Keys.script_keys`):
ARGV[1] and ARGV[2] are the done and cancel channels, a script's own arguments start at ARGV[3].
A script is sent by its SHA; after a Redis restart (an empty script cache) `resend_missing`
sends the few that came back NOSCRIPT again with their source: the one way every runner
recovers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import NoScriptError

# Shared by every transition script. ARGV[1], ARGV[2] are the done and cancel channels; a
# script's own arguments start at ARGV[3].
_PRELUDE = """
local REQ, QUEUE, CLAIMING, LEASES, EXPIRY, IDS, STATS, SEQ = unpack(KEYS, 1, 8)
local INDEX = {queued=KEYS[9], pending=KEYS[10], success=KEYS[11], error=KEYS[12],
               timeout=KEYS[13], canceled=KEYS[14]}
local ALL, DUE, CALLBACKS = KEYS[15], KEYS[16], KEYS[17]
local DONE_CH, CANCEL_CH = ARGV[1], ARGV[2]

local function move(req, uuid, old, new)
  local seq = redis.call('HGET', req, 'seq')
  redis.call('ZREM', INDEX[old], uuid)
  redis.call('ZADD', INDEX[new], seq, uuid)
  redis.call('HSET', req, 'status', new)
end

-- Add one attempt's JSON line to the request's history (numbered `n`).
local function record(req, n, entry)
  local history = redis.call('HGET', req, 'history')
  if history then entry = history .. '\\n' .. entry end
  redis.call('HSET', req, 'history', entry, 'recorded', n)
end

-- The last attempt into the history, if it is not there yet: how it ended (`status`), with
-- the code and timing the listing's summary kept.
local function record_last(req, status)
  local attempts = tonumber(redis.call('HGET', req, 'attempts') or '0')
  if attempts <= tonumber(redis.call('HGET', req, 'recorded') or '0') then return end
  local claimed = tonumber(redis.call('HGET', req, 'claimed'))
  local entry = {attempt=attempts, outcome=status, start=claimed}
  local summary = redis.call('HGET', req, 'summary')
  if summary then
    for name, value in pairs(cjson.decode(summary)) do
      if name ~= 'deleted' then entry[name] = value end
    end
  end
  record(req, attempts, cjson.encode(entry))
end

-- Wait until `due` (epoch ms) in the due index; the schedulers hear of a new earliest one.
local function schedule(req, uuid, due)
  redis.call('HSET', req, 'due', due)
  redis.call('ZADD', DUE, due, uuid)
  if redis.call('ZRANGE', DUE, 0, 0)[1] == uuid then redis.call('PUBLISH', DUE, due) end
end

-- Callbacks, if the request has any, are sent by a worker's callback threads.
local function call_back(req, uuid)
  if redis.call('HEXISTS', req, 'callbacks') == 1 then redis.call('LPUSH', CALLBACKS, uuid) end
end

-- Make a request terminal: index, lease, id, retention, and wake the waiters.
local function finish(req, uuid, old, new, now, ttl)
  move(req, uuid, old, new)
  redis.call('HSET', req, 'finished', now)
  redis.call('ZREM', LEASES, uuid)
  local id = redis.call('HGET', req, 'id')
  if id and id ~= '' and redis.call('HGET', IDS, id) == uuid then
    redis.call('HDEL', IDS, id)
  end
  if ttl > 0 then
    redis.call('PEXPIRE', req, ttl * 1000)
    redis.call('ZADD', EXPIRY, now + ttl * 1000, uuid)
  end
  redis.call('PUBLISH', DONE_CH, uuid)
end

-- Cancel: queued/pending stop; answered ones lose their response. Returns the old status.
local function cancel(req, uuid, now, ttl)
  local status = redis.call('HGET', req, 'status')
  if not status or status == 'canceled' then return status end
  if redis.call('ZREM', DUE, uuid) == 1 then redis.call('HDEL', req, 'due') end
  if status == 'pending' then
    finish(req, uuid, status, 'canceled', now, ttl)
    redis.call('HINCRBY', req, 'token', 1)
    redis.call('PUBLISH', CANCEL_CH, uuid)
  else
    record_last(req, status)  -- the history keeps how it ended; the response goes
    redis.call('HDEL', req, 'response', 'summary')
    finish(req, uuid, status, 'canceled', now, ttl)
  end
  return status
end
"""

_ENQUEUE = """
local uuid, small, headers, data = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local now, id, ttl, req_prefix = tonumber(ARGV[7]), ARGV[8], tonumber(ARGV[9]), ARGV[10]
local due, callbacks, fingerprint = ARGV[11], ARGV[12], ARGV[13]
-- An Idempotency-Key (KEYS[18]) already used: the same request again, or a conflict.
local idem = KEYS[18]
if idem then
  local used = redis.call('GET', idem)
  if used then
    local space = string.find(used, ' ', 1, true)
    local other = string.sub(used, 1, space - 1)
    if string.sub(used, space + 1) == fingerprint then return {'same', other} end
    return {'conflict', other}
  end
  redis.call('SET', idem, uuid .. ' ' .. fingerprint, 'PX', ARGV[14])
end
local replaced = ''
if id ~= '' then
  local current = redis.call('HGET', IDS, id)
  if current then
    -- The one key not passed in KEYS: the holder is known only here, and reading it first
    -- would mean a retry whenever another enqueue won the race (quadratic under a storm).
    -- It carries the namespace's hash tag, so it is in the same Redis Cluster slot.
    local held = req_prefix .. current
    local status = redis.call('HGET', held, 'status')
    if status == 'queued' or status == 'pending' then
      cancel(held, current, now, ttl)
      redis.call('HSET', held, 'replaced_by', uuid)
      replaced = current
      -- The survivor is the one accepted last, and its time says so (servers' clocks differ).
      local before = tonumber(redis.call('HGET', held, 'time'))
      if before and before > now then now = before end
    end
  end
  redis.call('HSET', IDS, id, uuid)
end
local seq = redis.call('INCR', SEQ)
redis.call('HSET', REQ, 'request', small, 'headers', headers, 'data', data, 'status', 'queued',
           'seq', seq, 'time', now, 'token', 0, 'attempts', 0, 'id', id)
redis.call('ZADD', ALL, seq, uuid)
redis.call('ZADD', INDEX.queued, seq, uuid)
if callbacks ~= '' then redis.call('HSET', REQ, 'callbacks', 1) end
if due ~= '' then
  schedule(REQ, uuid, tonumber(due))
else
  redis.call('LPUSH', QUEUE, uuid)
end
return replaced
"""

_CLAIM = """
local uuid, worker, deadline, now = ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6]
redis.call('LREM', CLAIMING, 1, uuid)
local status = redis.call('HGET', REQ, 'status')
if status == 'pending' and redis.call('HGET', REQ, 'worker') == worker then
  -- This very claim, sent again (Redis ran it, its answer was lost): the same answer. The
  -- holder names one sender thread, which claims a request only once while it is pending.
  return redis.call('HMGET', REQ, 'token', 'attempts', 'request', 'headers', 'data')
end
if status ~= 'queued' then return false end
move(REQ, uuid, 'queued', 'pending')
local token = redis.call('HINCRBY', REQ, 'token', 1)
local attempts = redis.call('HINCRBY', REQ, 'attempts', 1)
redis.call('HSET', REQ, 'worker', worker, 'claimed', now)
redis.call('ZADD', LEASES, deadline, uuid)
local stored = redis.call('HMGET', REQ, 'request', 'headers', 'data')
return {token, attempts, stored[1], stored[2], stored[3]}
"""

_HELD = """
local function held(uuid, token)
  return redis.call('HGET', REQ, 'status') == 'pending'
     and redis.call('HGET', REQ, 'token') == token
end
"""

_RENEW = (
    _HELD
    + """
local uuid, token, deadline = ARGV[3], ARGV[4], tonumber(ARGV[5])
if not held(uuid, token) then return 0 end
redis.call('ZADD', LEASES, 'XX', deadline, uuid)
return 1
"""
)

_COMPLETE = (
    _HELD
    + """
local uuid, token, status, response = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local now, ttl = tonumber(ARGV[7]), tonumber(ARGV[8])
if not held(uuid, token) then
  -- Sent again after Redis stored it (the answer was lost): finished with this same token.
  if redis.call('HGET', REQ, 'status') == status and redis.call('HGET', REQ, 'token') == token then
    return 1
  end
  redis.call('HINCRBY', STATS, 'fenced', 1)
  return 0
end
redis.call('HSET', REQ, 'response', response, 'summary', ARGV[9])
if ARGV[10] ~= '' then record(REQ, tonumber(redis.call('HGET', REQ, 'attempts')), ARGV[10]) end
finish(REQ, uuid, 'pending', status, now, ttl)
call_back(REQ, uuid)
return 1
"""
)

# An attempt failed and attempts remain: record it and wait in the due index for the next.
_RETRY = (
    _HELD
    + """
local uuid, token, due, entry = ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6]
if not held(uuid, token) then
  if redis.call('HGET', REQ, 'retried') == token then return 1 end  -- sent again
  redis.call('HINCRBY', STATS, 'fenced', 1)
  return 0
end
redis.call('HSET', REQ, 'retried', token)
record(REQ, tonumber(redis.call('HGET', REQ, 'attempts')), entry)
move(REQ, uuid, 'pending', 'queued')
redis.call('HINCRBY', REQ, 'token', 1)
redis.call('ZREM', LEASES, uuid)
schedule(REQ, uuid, due)
redis.call('HINCRBY', STATS, 'retried', 1)
return 1
"""
)

_RELEASE = (
    _HELD
    + """
local uuid, token = ARGV[3], ARGV[4]
if not held(uuid, token) then return 0 end
move(REQ, uuid, 'pending', 'queued')
redis.call('HINCRBY', REQ, 'token', 1)
redis.call('HINCRBY', REQ, 'attempts', -1)
redis.call('ZREM', LEASES, uuid)
redis.call('RPUSH', QUEUE, uuid)
return 1
"""
)

_REQUEUE_EXPIRED = """
local uuid, now, max_attempts = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local ttl, lost = tonumber(ARGV[6]), ARGV[7]
local deadline = tonumber(redis.call('ZSCORE', LEASES, uuid))
if not deadline or deadline > now then return 'held' end
if redis.call('HGET', REQ, 'status') ~= 'pending' then
  redis.call('ZREM', LEASES, uuid)
  return 'stale'
end
redis.call('HINCRBY', REQ, 'token', 1)
local attempts = tonumber(redis.call('HGET', REQ, 'attempts'))
local retries = string.match(redis.call('HGET', REQ, 'request') or '', '"retries": ?(%d+)')
if retries and tonumber(retries) + 1 > max_attempts then max_attempts = tonumber(retries) + 1 end
local claimed = tonumber(redis.call('HGET', REQ, 'claimed'))
record(REQ, attempts, cjson.encode({attempt=attempts, start=claimed, outcome='error',
                                    message='The worker sending it was lost.'}))
if attempts >= max_attempts then
  redis.call('HSET', REQ, 'response', lost, 'summary', ARGV[8])
  redis.call('HINCRBY', STATS, 'lost', 1)
  finish(REQ, uuid, 'pending', 'error', now, ttl)
  call_back(REQ, uuid)
  return 'lost'
end
move(REQ, uuid, 'pending', 'queued')
redis.call('ZREM', LEASES, uuid)
redis.call('RPUSH', QUEUE, uuid)
redis.call('HINCRBY', STATS, 'requeued', 1)
return 'requeued'
"""

# `POST /<uuid>/retry/`: a finished request is queued again as a new attempt, its history kept,
# and holds its `id` again, unless another request queued or pending holds it (left alone).
_REQUEUE = """
local uuid, req_prefix = ARGV[3], ARGV[4]
local status = redis.call('HGET', REQ, 'status')
if not status or status == 'queued' or status == 'pending' then return {status or false} end
-- Replaced by a later request with its `id`: that one is the request now.
local replaced_by = redis.call('HGET', REQ, 'replaced_by')
if replaced_by then return {status, replaced_by} end
local id = redis.call('HGET', REQ, 'id')
if id and id ~= '' then
  local current = redis.call('HGET', IDS, id)
  if current and current ~= uuid then
    -- Not in KEYS, as in enqueue: the holder is known only here (same hash tag, same slot).
    local held = redis.call('HGET', req_prefix .. current, 'status')
    if held == 'queued' or held == 'pending' then return {status, false, current} end
  end
  redis.call('HSET', IDS, id, uuid)
end
record_last(REQ, status)
redis.call('HDEL', REQ, 'response', 'summary', 'finished', 'callback_result')
redis.call('PERSIST', REQ)
redis.call('ZREM', EXPIRY, uuid)
redis.call('HINCRBY', REQ, 'token', 1)
move(REQ, uuid, status, 'queued')
redis.call('LPUSH', QUEUE, uuid)
return {status}
"""

_CANCEL = """
local uuid, now, ttl = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
return cancel(REQ, uuid, now, ttl)
"""

# The listing's summary keeps the code and timing, and says the response is gone.
_DELETE_RESPONSE = """
local uuid = ARGV[3]
local deleted = redis.call('HDEL', REQ, 'response')
local summary = redis.call('HGET', REQ, 'summary')
if deleted == 1 and summary then
  local shown = cjson.decode(summary)
  shown['deleted'] = true
  redis.call('HSET', REQ, 'summary', cjson.encode(shown))
end
return deleted
"""

# Entries stuck in `claiming` (a worker died between BLMOVE and its claim) go back to the queue
# when two looks, one reaper period apart, both see them. The claim script skips non-queued ones.
_RESCUE_CLAIMING = """
local claiming, seen, queue = KEYS[1], KEYS[2], KEYS[3]
local before = {}
for _, uuid in ipairs(redis.call('SMEMBERS', seen)) do before[uuid] = true end
redis.call('DEL', seen)
local rescued = 0
for _, uuid in ipairs(redis.call('LRANGE', claiming, 0, -1)) do
  if before[uuid] then
    redis.call('LREM', claiming, 1, uuid)
    redis.call('RPUSH', queue, uuid)
    rescued = rescued + 1
  else
    redis.call('SADD', seen, uuid)
  end
end
return rescued
"""

# A stopping worker hands back uuids it took ahead of need and never claimed: each goes back
# to the end of the queue that is taken next, unless the reaper's rescue already moved it.
_UNTAKE = """
local claiming, queue = KEYS[1], KEYS[2]
local returned = 0
for i = 1, #ARGV do
  if redis.call('LREM', claiming, 1, ARGV[i]) == 1 then
    redis.call('RPUSH', queue, ARGV[i])
    returned = returned + 1
  end
end
return returned
"""

# Due requests into the queue, earliest first, as if each were queued at its due time: behind
# what was queued before, ahead of what comes after (taken first instead, each batch would go
# ahead of the last one's unsent requests, and a busy queue would send the earliest last). Any
# number of workers may run it at once: each uuid leaves the due index once. The request keys
# are built from ARGV[3] (same hash tag, so same Cluster slot): which are due is known only here.
_PROMOTE = """
local due, queue = KEYS[1], KEYS[2]
local now, limit, prefix = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local uuids = redis.call('ZRANGE', due, '-inf', now, 'BYSCORE', 'LIMIT', 0, limit)
for _, uuid in ipairs(uuids) do
  redis.call('ZREM', due, uuid)
  local req = prefix .. uuid
  if redis.call('HGET', req, 'status') == 'queued' then
    redis.call('HDEL', req, 'due')
    redis.call('LPUSH', queue, uuid)
  end
end
local first = redis.call('ZRANGE', due, 0, 0, 'WITHSCORES')
return {#uuids, first[2] or false}
"""

# Callbacks: each script's KEYS are of one hash tag; a held callback is fenced by the
# request's `callback_token`, which each take makes new.
_CALLBACK_HELD = """
local function held(req, leases, uuid, token)
  return redis.call('HGET', req, 'callback_token') == token
     and redis.call('ZSCORE', leases, uuid) ~= false
end
"""

# A uuid a worker moved from `callbacks` into `taking` (BLMOVE), leased to it until ARGV[2] (ms)
# with a new token, and what picks the URL to call (never the response: the sender reads it
# when it sends). False if the reaper's rescue moved it back meanwhile, or if there is nothing
# to send (the request expired, or was queued again: its next end calls back again).
_TAKE_CALLBACK = """
local req, taking, leases = KEYS[1], KEYS[2], KEYS[3]
local uuid, deadline = ARGV[1], ARGV[2]
if redis.call('LREM', taking, 1, uuid) == 0 then return false end
if redis.call('HEXISTS', req, 'response') == 0 then return false end
local stored = redis.call('HMGET', req, 'status', 'request', 'summary', 'attempts')
local token = redis.call('HINCRBY', req, 'callback_token', 1)
redis.call('ZADD', leases, deadline, uuid)
return {token, stored[1], stored[2], stored[3], stored[4]}
"""

# Leases of held callbacks (KEYS[2..]: their requests; ARGV: the deadline, then uuid and token
# of each) extended to ARGV[1]; 1 for each still held, 0 for the others.
_RENEW_CALLBACKS = (
    _CALLBACK_HELD
    + """
local leases, deadline, renewed = KEYS[1], ARGV[1], {}
for i = 2, #KEYS do
  local uuid, token = ARGV[2 * i - 2], ARGV[2 * i - 1]
  if held(KEYS[i], leases, uuid, token) then
    redis.call('ZADD', leases, 'XX', deadline, uuid)
    renewed[#renewed + 1] = 1
  else
    renewed[#renewed + 1] = 0
  end
end
return renewed
"""
)

# A callback's outcome (ARGV[3], '' for none: nothing to send) settles it: kept on the request.
_CALLED_BACK = (
    _CALLBACK_HELD
    + """
local req, leases, uuid, token, result = KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3]
if not held(req, leases, uuid, token) then
  if redis.call('EXISTS', req) == 0 then redis.call('ZREM', leases, uuid) return 0 end
  -- Sent again after Redis settled it (the answer was lost): the same outcome is kept.
  if redis.call('HGET', req, 'callback_token') == token
     and (result == '' or redis.call('HGET', req, 'callback_result') == result) then
    return 1
  end
  return 0
end
redis.call('ZREM', leases, uuid)
if result ~= '' then redis.call('HSET', req, 'callback_result', result) end
return 1
"""
)

# A held callback handed back: into `callbacks` at once, taken next (the worker stops), or with
# ARGV[3], a due time (ms), left in `leases` until then for the reaper to put back (its host is
# busy). Either way its holder no longer holds it.
_PUT_BACK_CALLBACK = (
    _CALLBACK_HELD
    + """
local req, leases, list = KEYS[1], KEYS[2], KEYS[3]
local uuid, token, due = ARGV[1], ARGV[2], ARGV[3]
if not held(req, leases, uuid, token) then return 0 end
redis.call('HINCRBY', req, 'callback_token', 1)
if due == '' then
  redis.call('ZREM', leases, uuid)
  redis.call('RPUSH', list, uuid)
else
  redis.call('ZADD', leases, 'XX', due, uuid)
end
return 1
"""
)

# The reaper's look at callbacks: leases that ran out by ARGV[1] (a worker lost, or a wait for
# a busy host over) go back into `callbacks` at the end of the line (where new ones enter), so
# a busy host's backlog never jumps ahead of others; uuids stuck in `taking` (a worker died
# between BLMOVE and TAKE_CALLBACK) go back, taken next, when two looks one period apart see them.
_REAP_CALLBACKS = """
local list, leases, taking, seen = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local expired = redis.call('ZRANGE', leases, '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, ARGV[2])
for _, uuid in ipairs(expired) do
  redis.call('ZREM', leases, uuid)
  redis.call('LPUSH', list, uuid)
end
local before, looked = {}, redis.call('SMEMBERS', seen)
for _, uuid in ipairs(looked) do before[uuid] = true end
if #looked > 0 then redis.call('DEL', seen) end
local rescued = 0
for _, uuid in ipairs(redis.call('LRANGE', taking, 0, -1)) do
  if before[uuid] then
    redis.call('LREM', taking, 1, uuid)
    redis.call('RPUSH', list, uuid)
    rescued = rescued + 1
  else
    redis.call('SADD', seen, uuid)
  end
end
return {#expired, rescued}
"""

# Drop expired requests from the indexes (their hashes expire by themselves).
_PURGE = """
local expiry, all, now, limit = KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[2])
local uuids = redis.call('ZRANGE', expiry, '-inf', now, 'BYSCORE', 'LIMIT', 0, limit)
for _, uuid in ipairs(uuids) do
  redis.call('ZREM', all, uuid)
  for i = 3, #KEYS do redis.call('ZREM', KEYS[i], uuid) end
  redis.call('ZREM', expiry, uuid)
end
return #uuids
"""


# One page of a listing: the asked-for fields of each request (KEYS), in order, until the next
# one would take the page over ARGV[1] bytes (the first is always read). Sizes come from
# HSTRLEN, so a request that does not fit is never loaded.
_PAGE = """
local budget, fields = tonumber(ARGV[1]), {unpack(ARGV, 2)}
local rows, used = {}, 0
for _, key in ipairs(KEYS) do
  local size = 0
  for _, name in ipairs(fields) do size = size + redis.call('HSTRLEN', key, name) end
  if #rows > 0 and used + size > budget then break end
  used = used + size
  for _, value in ipairs(redis.call('HMGET', key, unpack(fields))) do rows[#rows + 1] = value end
end
return rows
"""


@dataclass(frozen=True, slots=True)
class Script:
    """A Lua script, run by SHA and loaded on first use (or after a Redis restart)."""

    name: str
    source: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        # Computed once: it is sent with every call, on the hottest paths.
        object.__setattr__(self, "sha", hashlib.sha1(self.source.encode()).hexdigest())
        _BY_SHA[self.sha] = self

    def command(self, keys: Sequence[str], args: Sequence[Any]) -> tuple[Any, ...]:
        """The EVALSHA command that runs this script."""
        return ("EVALSHA", self.sha, len(keys), *keys, *args)


_BY_SHA: dict[str, Script] = {}


def _transition(name: str, body: str) -> Script:
    return Script(name, _PRELUDE + body)


ENQUEUE = _transition("enqueue", _ENQUEUE)
CLAIM = _transition("claim", _CLAIM)
RENEW = _transition("renew", _RENEW)
COMPLETE = _transition("complete", _COMPLETE)
RELEASE = _transition("release", _RELEASE)
RETRY = _transition("retry", _RETRY)
REQUEUE = _transition("requeue", _REQUEUE)
REQUEUE_EXPIRED = _transition("requeue_expired", _REQUEUE_EXPIRED)
CANCEL = _transition("cancel", _CANCEL)
DELETE_RESPONSE = _transition("delete_response", _DELETE_RESPONSE)
RESCUE_CLAIMING = Script("rescue_claiming", _RESCUE_CLAIMING)
PURGE = Script("purge", _PURGE)
PROMOTE = Script("promote", _PROMOTE)
TAKE_CALLBACK = Script("take_callback", _TAKE_CALLBACK)
RENEW_CALLBACKS = Script("renew_callbacks", _RENEW_CALLBACKS)
CALLED_BACK = Script("called_back", _CALLED_BACK)
PUT_BACK_CALLBACK = Script("put_back_callback", _PUT_BACK_CALLBACK)
REAP_CALLBACKS = Script("reap_callbacks", _REAP_CALLBACKS)
UNTAKE = Script("untake", _UNTAKE)
PAGE = Script("page", _PAGE)


def missing(
    commands: Sequence[Sequence[Any]], replies: Sequence[Any]
) -> tuple[list[int], list[tuple[Any, ...]]]:
    """Which replies were NOSCRIPT (Redis restarted and forgot its scripts), and the EVAL
    commands that run those scripts from their source instead, to send once more."""
    indexes = [n for n, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
    again = [("EVAL", _BY_SHA[commands[n][1]].source, *commands[n][2:]) for n in indexes]
    return indexes, again
