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
local ALL = KEYS[15]
local DONE_CH, CANCEL_CH = ARGV[1], ARGV[2]

local function move(req, uuid, old, new)
  local seq = redis.call('HGET', req, 'seq')
  redis.call('ZREM', INDEX[old], uuid)
  redis.call('ZADD', INDEX[new], seq, uuid)
  redis.call('HSET', req, 'status', new)
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
  if status == 'pending' then
    finish(req, uuid, status, 'canceled', now, ttl)
    redis.call('HINCRBY', req, 'token', 1)
    redis.call('PUBLISH', CANCEL_CH, uuid)
  else
    redis.call('HDEL', req, 'response', 'summary')
    finish(req, uuid, status, 'canceled', now, ttl)
  end
  return status
end
"""

_ENQUEUE = """
local uuid, small, headers, data = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local now, id, ttl, req_prefix = tonumber(ARGV[7]), ARGV[8], tonumber(ARGV[9]), ARGV[10]
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
redis.call('LPUSH', QUEUE, uuid)
return replaced
"""

_CLAIM = """
local uuid, worker, deadline, now = ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6]
redis.call('LREM', CLAIMING, 1, uuid)
if redis.call('HGET', REQ, 'status') ~= 'queued' then return false end
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
  redis.call('HINCRBY', STATS, 'fenced', 1)
  return 0
end
redis.call('HSET', REQ, 'response', response, 'summary', ARGV[9])
finish(REQ, uuid, 'pending', status, now, ttl)
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
if tonumber(redis.call('HGET', REQ, 'attempts')) >= max_attempts then
  redis.call('HSET', REQ, 'response', lost, 'summary', ARGV[8])
  redis.call('HINCRBY', STATS, 'lost', 1)
  finish(REQ, uuid, 'pending', 'error', now, ttl)
  return 'lost'
end
move(REQ, uuid, 'pending', 'queued')
redis.call('ZREM', LEASES, uuid)
redis.call('RPUSH', QUEUE, uuid)
redis.call('HINCRBY', STATS, 'requeued', 1)
return 'requeued'
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
REQUEUE_EXPIRED = _transition("requeue_expired", _REQUEUE_EXPIRED)
CANCEL = _transition("cancel", _CANCEL)
DELETE_RESPONSE = _transition("delete_response", _DELETE_RESPONSE)
RESCUE_CLAIMING = Script("rescue_claiming", _RESCUE_CLAIMING)
PURGE = Script("purge", _PURGE)
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
