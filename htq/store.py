"""THE Redis data model: every key, Lua script and transition, for the server and the worker.

Keys (one hash tag per namespace, so a namespace lives in one Redis Cluster slot):

    {p}:req:<uuid>     hash   request (JSON: timeout, url, method, id), headers (JSON), data
                              (JSON): apart, so a listing reads only what it shows; status,
                              seq, time, token, attempts, id, worker, replaced_by (the uuid
                              of the request with the same `id` that replaced it), response
                              (JSON, once answered), summary (JSON: code, reason, elapsed or
                              message; kept when the response is deleted, for listings).
                              htq 0.2 kept the whole resource in `request`; it is still read
    {p}:queue          list   uuids ready to send; new ones LPUSHed, workers take from the right
    {p}:claiming       list   uuids a worker has taken out of the queue (BLMOVE, or LMOVE ahead of
                              need in a busy thread's round trip) and not yet claimed
    {p}:claiming:seen  set    the reaper's last look at `claiming` (stuck entries go back)
    {p}:leases         zset   pending uuid -> lease deadline (ms); renewed by the holder
    {p}:index:<status> zset   uuid -> seq, one per status; listing is O(log n + page)
    {p}:index:all      zset   uuid -> seq, every request
    {p}:expiry         zset   finished uuid -> when its hash expires (ms); purge trims indexes
    {p}:ids            hash   client `id` -> uuid of its latest unfinished request
    {p}:seq            string the sequence that orders requests (newest = highest)
    {p}:stats          hash   counters: fenced (stale results refused), requeued, lost
    {p}:reaper         string a short lock electing the worker that reaps expired leases

Channels: `{p}:done` carries the uuid of each request that finishes (waiters on /response/),
`{p}:cancel` the uuid of each pending request canceled (the worker holding it interrupts).

Every transition is one Lua script with every key it touches passed in KEYS, but one: enqueue
with an `id` finds the request that holds it and builds that key itself (same hash tag, same
Cluster slot), so that replacing is one step however many POSTs race. A claim issues a fencing
token; results, renewals and hand-backs with a stale token are refused.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import json
import logging
import os
import re
import secrets
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import hiredis
import redis
import redis.asyncio as aredis
from redis.backoff import NoBackoff
from redis.exceptions import BusyLoadingError, NoScriptError
from redis.retry import Retry

from htq._sockets import bound
from htq.config import StoreConfig, describe_redis
from htq.models import TERMINAL, RequestSpec, Status, now_ms, request_resource, response_resource

log = logging.getLogger(__name__)

#: Exceptions that mean "Redis cannot be reached right now" (the server answers 503).
REDIS_DOWN: tuple[type[Exception], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    BusyLoadingError,
    ConnectionError,
    OSError,
)

_INDEXED = (*Status.__members__.values(),)
# The hash fields a request resource is rendered from (see models.request_resource).
_RESOURCE_PARTS = ("status", "time", "request", "headers", "data", "replaced_by")

# A Redis that stops answering must fail calls in seconds, not hang them (blocking calls use
# shorter timeouts than these).
_CLIENT_OPTIONS: dict[str, Any] = {
    "socket_timeout": 10,
    "socket_connect_timeout": 3,
    "health_check_interval": 10,
}
try:
    from redis.maint_notifications import MaintNotificationsConfig
except ImportError:  # redis-py before maintenance notifications: nothing to turn off
    pass
else:
    # With them on ("auto"), a pool hands out a connection Redis has closed (a restart) without
    # checking it first, and the call fails: a 503 although Redis answers again. Off, the pool
    # opens a fresh connection instead; nothing was sent on the dead one, so nothing is doubled.
    _CLIENT_OPTIONS["maint_notifications_config"] = MaintNotificationsConfig(enabled=False)


def unreachable(url: str) -> str | None:
    """Ping Redis once (at a command's start): None if it answers, else one line saying why."""
    client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
    try:
        client.ping()
        return None
    except (redis.RedisError, OSError) as exc:
        return f"cannot reach Redis at {describe_redis(url)} ({exc})"
    finally:
        client.close()


def keepalive(redis_url: str) -> dict[str, Any]:
    """TCP keepalive for a Redis over TCP; a `unix://` one has no TCP (and refuses the option)."""
    return {} if redis_url.startswith("unix:") else {"socket_keepalive": True}


class Keys:
    """Every key and channel name of one namespace, built in one place."""

    def __init__(self, prefix: str) -> None:
        tag = f"{{{prefix}}}"
        self.prefix = prefix
        self.queue = f"{tag}:queue"
        self.claiming = f"{tag}:claiming"
        self.claiming_seen = f"{tag}:claiming:seen"
        self.leases = f"{tag}:leases"
        self.expiry = f"{tag}:expiry"
        self.ids = f"{tag}:ids"
        self.seq = f"{tag}:seq"
        self.stats = f"{tag}:stats"
        self.reaper = f"{tag}:reaper"
        self.all = f"{tag}:index:all"
        self.done_channel = f"{tag}:done"
        self.cancel_channel = f"{tag}:cancel"
        self._tag = tag
        # KEYS[2..15] of every transition script: built once, sent with every call.
        self._shared = (
            self.queue,
            self.claiming,
            self.leases,
            self.expiry,
            self.ids,
            self.stats,
            self.seq,
            *(self.index(s) for s in _INDEXED),
            self.all,
        )

    def request(self, uuid: str) -> str:
        return f"{self._tag}:req:{uuid}"

    def index(self, status: Status | str) -> str:
        return f"{self._tag}:index:{status}"

    def script_keys(self, uuid: str, other: str | None = None) -> list[str]:
        """The fixed KEYS layout every transition script shares (see _PRELUDE)."""
        keys = [self.request(uuid), *self._shared]
        if other is not None:
            keys.append(self.request(other))
        return keys


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

_DELETE_RESPONSE = """
local uuid = ARGV[3]
return redis.call('HDEL', REQ, 'response')
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

#: The most a listing page holds (stored bytes); a page that would hold more ends early.
PAGE_BYTES = 4 * 1024 * 1024
# What a listing reads for each field it shows (`status` always: a request whose hash expired
# has none, and is skipped).
_LISTED_PARTS = {
    "timeout": "request",
    "url": "request",
    "method": "request",
    "id": "request",
    "time": "time",
    "headers": "headers",
    "data": "data",
    "result": "summary",
    "replaced_by": "replaced_by",
}
#: What `GET /?fields=` may pick from each listed request (`links` the server adds).
LISTED_FIELDS = frozenset({*_LISTED_PARTS, "status", "uuid", "links"})


@dataclass(frozen=True, slots=True)
class Claim:
    """A request a worker holds: it may store a result only while `token` is current."""

    uuid: str
    token: str
    attempts: int
    spec: RequestSpec


@dataclass(frozen=True, slots=True)
class Turn:
    """What one round trip of a worker's thread did (see `Store.turn`)."""

    stored: bool | None  # the result given was stored (False: refused; None: none given)
    claim: Claim | None  # the uuid given, now claimed (None: none given, or not queued)
    taken: str | None  # the next uuid taken from the queue, to claim on a later turn


class Link:
    """One worker thread's own connection, for its turns: commands in one round trip.

    redis-py's connection (TLS, AUTH, SELECT, the client name) sets the connection up; after
    that the link speaks on the socket itself, packing with `hiredis` and reading with a
    `hiredis.Reader`. A pipeline through the shared client borrows a pooled connection and
    sends every argument through several layers; and a Python socket with a timeout polls
    before each send and receive, each a release of the GIL that ten sending threads feel.
    This socket blocks, with the kernel holding it to the same timeout (TLS keeps Python's
    timeout: a blocking SSLSocket retries a read the kernel timed out). One per thread.
    """

    def __init__(self, pool: Any) -> None:
        self._connection = pool.connection_class(**pool.connection_kwargs)
        self._timeout: float | None = pool.connection_kwargs.get("socket_timeout")
        self._sock: socket.socket | None = None
        self._reader = hiredis.Reader()
        self._buffer = bytearray(65536)

    def execute(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Every command's reply, in order; an error reply is returned, not raised.

        A connection found closed (Redis restarted since the last turn) is opened again and
        the commands sent once more, as the shared client's one quick retry does.
        """
        payload = b"".join(hiredis.pack_command(tuple(command)) for command in commands)
        try:
            return self._exchange(payload, len(commands))
        except redis.ConnectionError:
            return self._exchange(payload, len(commands))

    def close(self) -> None:
        self._sock = None
        self._connection.disconnect()

    def _exchange(self, payload: bytes, count: int) -> list[Any]:
        sock = self._sock or self._connect()
        try:
            sock.sendall(payload)
            replies: list[Any] = []
            while len(replies) < count:
                reply = self._reader.gets()
                if reply is not False:
                    replies.append(reply)
                    continue
                received = sock.recv_into(self._buffer)
                if not received:
                    raise redis.ConnectionError("Connection closed by the server.")
                self._reader.feed(self._buffer, 0, received)  # type: ignore[arg-type]  # any buffer
        except (BlockingIOError, TimeoutError) as exc:
            self.close()
            raise redis.TimeoutError(f"Timeout talking to Redis ({exc})") from exc
        except OSError as exc:
            self.close()
            raise redis.ConnectionError(f"Error talking to Redis: {exc}") from exc
        except BaseException:
            self.close()  # replies may be left unread: start afresh next time
            raise
        return replies

    def _connect(self) -> socket.socket:
        self._connection.connect()
        sock = getattr(self._connection, "_sock", None)
        if not isinstance(sock, socket.socket):
            raise RuntimeError(
                "cannot reach the socket of redis-py's connection; unsupported version?"
            )
        if not isinstance(sock, ssl.SSLSocket):  # a blocking SSLSocket retries timed-out reads
            sock.settimeout(None)
            for option in (socket.SO_RCVTIMEO, socket.SO_SNDTIMEO):
                bound(sock, option, self._timeout)
        self._reader = hiredis.Reader(replyError=_reply_error)
        self._sock = sock
        return sock


class AsyncLink:
    """The server's own connection for script calls, pipelined.

    Each batch (the calls of one event-loop turn) is packed by `hiredis` and written at once,
    even while earlier batches wait for their replies; one reader reads replies in order into
    a `hiredis.Reader` and hands each batch its own. redis-py's connection sets the connection
    up (TLS, AUTH, SELECT); its pipeline layers, a pooled connection per batch and a timer per
    reply took 15% of the server's CPU under enqueue load, this about 6%.
    """

    def __init__(self, pool: Any) -> None:
        self._pool = pool
        self._timeout: float | None = pool.connection_kwargs.get("socket_timeout")
        self._connection: Any = None  # held: redis-py closes a connection it garbage-collects
        self._writer: asyncio.StreamWriter | None = None
        self._opening = asyncio.Lock()
        self._parser = hiredis.Reader()
        self._waiting: collections.deque[tuple[int, asyncio.Future[list[Any]]]]
        self._waiting = collections.deque()
        self._reading: asyncio.Task[None] | None = None

    async def execute(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Every command's reply, in order; an error reply is returned, not raised."""
        payload = b"".join(hiredis.pack_command(tuple(command)) for command in commands)
        if self._writer is not None and self._closed_by_redis():
            # Redis went away since the last batch (a restart): open a fresh connection rather
            # than fail this batch on the dead one. Safe: nothing was sent on that connection.
            await self._drop(redis.ConnectionError("Connection closed by the server."))
        writer = self._writer or await self._open()
        replies: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._waiting.append((len(commands), replies))
        writer.write(payload)
        if self._reading is None:
            self._reading = asyncio.ensure_future(self._read(self._connection._reader))
        return await replies

    async def close(self) -> None:
        if self._reading is not None:
            self._reading.cancel()
        await self._drop(redis.ConnectionError("The store is closing."))

    def _closed_by_redis(self) -> bool:
        """True if the open connection is known to be closed: the event loop read its end,
        even though no batch was waiting for a reply."""
        assert self._writer is not None
        return self._writer.is_closing() or self._connection._reader.at_eof()

    async def _open(self) -> asyncio.StreamWriter:
        async with self._opening:  # the first caller opens; the others wait for it
            if self._writer is None:
                connection = self._pool.connection_class(**self._pool.connection_kwargs)
                await connection.connect()
                writer = getattr(connection, "_writer", None)
                if writer is None or getattr(connection, "_reader", None) is None:
                    await connection.disconnect()
                    raise RuntimeError("no streams in redis-py's connection (a newer redis-py?)")
                self._parser = hiredis.Reader(replyError=_reply_error)
                self._connection, self._writer = connection, writer
            return self._writer

    async def _read(self, reader: asyncio.StreamReader) -> None:
        """Read replies while batches wait for them; on a failure, fail them all."""
        try:
            while self._waiting:
                count, replies = self._waiting[0]
                batch: list[Any] = []
                while len(batch) < count:
                    reply = self._parser.gets()
                    if reply is not False:
                        batch.append(reply)
                        continue
                    async with asyncio.timeout(self._timeout):
                        data = await reader.read(65536)
                    if not data:
                        raise redis.ConnectionError("Connection closed by the server.")
                    self._parser.feed(data)
                self._waiting.popleft()
                if not replies.done():
                    replies.set_result(batch)
            self._reading = None  # (no await since the loop's test: a new batch starts a reader)
        except Exception as exc:  # Redis away, or too slow: the next batch connects afresh
            self._reading = None
            await self._drop(exc)

    async def _drop(self, exc: BaseException) -> None:
        waiting, self._waiting = self._waiting, collections.deque()
        for _, replies in waiting:
            if not replies.done():
                replies.set_exception(exc)
        connection, self._connection, self._writer = self._connection, None, None
        if connection is not None:
            await connection.disconnect(nowait=True)


def _reply_error(message: str) -> redis.ResponseError:
    """What an error reply becomes: NoScriptError for a script Redis no longer has cached."""
    if message.startswith("NOSCRIPT"):
        return NoScriptError(message)
    return redis.ResponseError(message)


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a listing; `cursor` fetches the next page, None when this is the last."""

    items: list[dict[str, Any]]
    cursor: str | None


@dataclass(frozen=True, slots=True)
class Enqueued:
    uuid: str
    replaced: str | None  # the uuid of an earlier unfinished request with the same `id`, if any


class _Model:
    """What the sync and async stores share: keys, configuration, argument building."""

    def __init__(self, config: StoreConfig) -> None:
        self.config = config
        self.keys = Keys(config.prefix)

    def _args(self, *args: Any) -> list[Any]:
        return [self.keys.done_channel, self.keys.cancel_channel, *args]

    def _enqueue_call(
        self, uuid: str, spec: RequestSpec, time_ms: int
    ) -> tuple[list[str], list[Any]]:
        small, headers, data = spec.to_stored()
        args = [small, headers, data, time_ms, spec.id or "", self.config.ttl]
        return self.keys.script_keys(uuid), self._args(uuid, *args, self.keys.request(""))

    @staticmethod
    def _enqueued(uuid: str, reply: Any) -> Enqueued:
        return Enqueued(uuid, _text(reply) or None)

    def _get_command(self, uuid: str) -> tuple[str, list[str]]:
        return self.keys.request(uuid), list(_RESOURCE_PARTS)

    @staticmethod
    def _render(uuid: str, parts: dict[str, Any]) -> dict[str, Any] | None:
        """The request resource from the hash fields read (a listing reads fewer); None if the
        request is gone (never queued, or expired since it was listed)."""
        if parts.get("status") is None:
            return None
        time_ms = parts.get("time")
        resource = request_resource(
            uuid,
            _text(parts["status"]),
            int(time_ms) if time_ms is not None else None,
            parts.get("request"),
            parts.get("headers"),
            parts.get("data"),
            _text(parts.get("replaced_by")) or None,
        )
        if parts.get("summary"):
            resource["result"] = json.loads(parts["summary"])
        return resource

    def _stats_commands(self, pipe: Any) -> None:
        for status in _INDEXED:
            pipe.zcard(self.keys.index(status))
        pipe.zcard(self.keys.all)
        pipe.hgetall(self.keys.stats)

    @staticmethod
    def _stats_result(replies: Sequence[Any]) -> dict[str, Any]:
        counts = {str(status): int(n) for status, n in zip(_INDEXED, replies, strict=False)}
        counters = {_text(k): int(v) for k, v in replies[len(_INDEXED) + 1].items()}
        return {
            "counts": counts,
            "total": int(replies[len(_INDEXED)]),
            "queue_depth": counts[Status.QUEUED],
            "in_flight": counts[Status.PENDING],
            "fenced": counters.get("fenced", 0),
            "requeued": counters.get("requeued", 0),
            "lost": counters.get("lost", 0),
        }

    def _page_range(self, status: Status | None, cursor: str | None) -> tuple[str, str]:
        key = self.keys.index(status) if status else self.keys.all
        return key, f"({int(cursor)}" if cursor else "+inf"

    @staticmethod
    def _page_parts(fields: frozenset[str] | None) -> list[str]:
        """The hash fields a page reads to show `fields` (None: every field)."""
        shown = _LISTED_PARTS.keys() if fields is None else fields
        return ["status", *sorted({_LISTED_PARTS[f] for f in shown if f in _LISTED_PARTS})]

    def _page(
        self, entries: list[tuple[Any, float]], parts: list[str], values: list[Any], limit: int
    ) -> Page:
        """Render the rows read (maybe fewer than the entries: the page ended early)."""
        width = len(parts)
        read = len(values) // width
        rows = (
            self._render(_text(uuid), dict(zip(parts, values[start : start + width], strict=True)))
            for (uuid, _), start in zip(entries, range(0, read * width, width), strict=False)
        )
        items = [item for item in rows if item is not None]
        more = read < min(len(entries), limit) or len(entries) > limit
        cursor = str(int(entries[read - 1][1])) if more and read else None
        return Page(items, cursor)


_CURSOR = re.compile(r"[0-9]{1,18}")


def parse_cursor(cursor: str | None) -> str | None:
    """A cursor is the sequence number of the last item seen; anything else is rejected.

    ASCII digits only: `str.isdigit` also takes "²", which `int` refuses.
    """
    if cursor is None or cursor == "":
        return None
    if not _CURSOR.fullmatch(cursor):
        raise ValueError(f"invalid cursor {cursor!r}")
    return cursor


class Store(_Model):
    """The blocking store, for the worker's threads and for tests. Thread-safe (a pool)."""

    def __init__(
        self, config: StoreConfig, *, client: redis.Redis | None = None, max_connections: int = 50
    ) -> None:
        super().__init__(config)
        # A blocking pool: a burst of callers waits for a connection instead of failing.
        # redis-py's annotations are loose (sync and async share them), so the client is Any here.
        self.redis: Any = client or redis.Redis(
            connection_pool=redis.BlockingConnectionPool.from_url(
                config.redis_url,
                max_connections=max_connections,
                timeout=20,
                **_CLIENT_OPTIONS,
                **keepalive(config.redis_url),
            )
        )

    def close(self) -> None:
        self.redis.close()

    def _run(self, script: Script, keys: list[str], args: list[Any]) -> Any:
        try:
            return self.redis.evalsha(script.sha, len(keys), *keys, *args)
        except NoScriptError:
            return self.redis.eval(script.source, len(keys), *keys, *args)

    def _transition(self, script: Script, uuid: str, *args: Any, other: str | None = None) -> Any:
        return self._run(script, self.keys.script_keys(uuid, other), self._args(uuid, *args))

    # -- the client side (the server's operations, blocking; used by tests and tools) -------

    def enqueue(self, uuid: str, spec: RequestSpec, time_ms: int) -> Enqueued:
        """Store a request and its queue entry atomically; with an `id`, cancel the earlier one."""
        return self._enqueued(uuid, self._run(ENQUEUE, *self._enqueue_call(uuid, spec, time_ms)))

    def get(self, uuid: str) -> dict[str, Any] | None:
        key, parts = self._get_command(uuid)
        return self._render(uuid, dict(zip(parts, self.redis.hmget(key, parts), strict=True)))

    def status(self, uuid: str) -> Status | None:
        status = self.redis.hget(self.keys.request(uuid), "status")
        return Status(_text(status)) if status else None

    def response(self, uuid: str) -> dict[str, Any] | None:
        raw = self.redis.hget(self.keys.request(uuid), "response")
        return json.loads(raw) if raw else None

    def cancel(self, uuid: str) -> Status | None:
        old = self._transition(CANCEL, uuid, now_ms(), self.config.ttl)
        return Status(_text(old)) if old else None

    def stats(self) -> dict[str, Any]:
        pipe = self.redis.pipeline(transaction=False)
        self._stats_commands(pipe)
        return self._stats_result(pipe.execute())

    # -- the worker side -----------------------------------------------------------------

    def wait_for_work(self, timeout: float) -> str | None:
        """Block until a uuid can be taken from the queue; it moves to `claiming` meanwhile."""
        uuid = self.redis.blmove(
            self.keys.queue,
            self.keys.claiming,
            timeout,
            "RIGHT",
            "LEFT",
        )
        return _text(uuid) if uuid else None

    def claim(self, uuid: str, worker: str, lease: float) -> Claim | None:
        """Mark a taken uuid pending with a lease and a new fencing token; None if not queued."""
        return _claimed(uuid, self._run(CLAIM, *self._claim_call(uuid, worker, lease)))

    def renew(self, claims: Sequence[Claim], lease: float) -> list[bool]:
        """Extend leases; False for each claim no longer held (canceled or taken back)."""
        deadline = now_ms() + int(lease * 1000)
        pipe = self.redis.pipeline(transaction=False)
        for claim in claims:
            keys = self.keys.script_keys(claim.uuid)
            pipe.evalsha(
                RENEW.sha, len(keys), *keys, *self._args(claim.uuid, claim.token, deadline)
            )
        try:
            replies = pipe.execute()
        except NoScriptError:
            self.redis.script_load(RENEW.source)
            return self.renew(claims, lease)
        return [bool(r) for r in replies]

    def complete(self, claim: Claim, response: dict[str, Any]) -> bool:
        """Store a result; False (and counted as fenced) if the claim is no longer held."""
        return bool(self._run(COMPLETE, *self._complete_call(claim, response)))

    def link(self) -> Link:
        """A connection of its own for one worker thread's `turn`s."""
        return Link(self.redis.connection_pool)

    def turn(
        self,
        link: Link,
        *,
        result: tuple[Claim, dict[str, Any]] | None,
        claim: str | None,
        worker: str,
        lease: float,
        take: bool,
    ) -> Turn:
        """A busy worker thread's one round trip a request, on its own `link`: store the
        result of the request it sent (`complete`), claim the uuid it took on an earlier turn
        (`claim`), and take the next one from the queue (as `wait_for_work`, not blocking).
        """
        calls: list[tuple[Script, list[str], list[Any]]] = []
        if result is not None:
            calls.append((COMPLETE, *self._complete_call(*result)))
        if claim is not None:
            calls.append((CLAIM, *self._claim_call(claim, worker, lease)))
        commands = [
            ("EVALSHA", script.sha, len(keys), *keys, *args) for script, keys, args in calls
        ]
        if take:
            commands.append(("LMOVE", self.keys.queue, self.keys.claiming, "RIGHT", "LEFT"))
        replies = link.execute(commands)
        for n, (script, keys, args) in enumerate(calls):
            if isinstance(replies[n], NoScriptError):  # Redis restarted: its script cache is empty
                replies[n] = link.execute([("EVAL", script.source, len(keys), *keys, *args)])[0]
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        stored = bool(replies.pop(0)) if result is not None else None
        claimed = _claimed(claim, replies.pop(0)) if claim is not None else None
        taken = _text(replies.pop(0)) or None if take else None
        return Turn(stored, claimed, taken)

    def untake(self, uuids: Sequence[str]) -> int:
        """Put uuids taken but never claimed back where the queue is taken next (stopping)."""
        if not uuids:
            return 0
        keys = [self.keys.claiming, self.keys.queue]
        return int(self._run(UNTAKE, keys, list(reversed(uuids))))

    def _claim_call(self, uuid: str, worker: str, lease: float) -> tuple[list[str], list[Any]]:
        now = now_ms()
        args = self._args(uuid, worker, now + int(lease * 1000), now)
        return self.keys.script_keys(uuid), args

    def _complete_call(self, claim: Claim, response: dict[str, Any]) -> tuple[list[str], list[Any]]:
        args = self._args(
            claim.uuid,
            claim.token,
            response["status"],
            # UTF-8, not \u escapes: a stored text body is no larger than the bytes received,
            # but for quotes, backslashes and control characters (see worker encode_body).
            json.dumps(response, ensure_ascii=False),
            response["time"],
            self.config.ttl,
            json.dumps(summarize(response)),
        )
        return self.keys.script_keys(claim.uuid), args

    def release(self, claim: Claim) -> bool:
        """Hand a held request back to the front of the queue (a worker shutting down)."""
        return bool(self._transition(RELEASE, claim.uuid, claim.token))

    def reap(self, max_attempts: int, limit: int = 100) -> dict[str, int]:
        """Re-queue requests whose lease expired, rescue stuck claims, purge expired entries."""
        now = now_ms()
        outcome = {"requeued": 0, "lost": 0, "rescued": 0, "purged": 0}
        expired = self.redis.zrange(
            self.keys.leases, "-inf", now, byscore=True, offset=0, num=limit
        )
        for raw in expired:
            uuid = _text(raw)
            lost = response_resource(
                uuid,
                Status.ERROR,
                time_ms=now,
                elapsed_ms=0.0,
                message=f"The worker sending this request was lost {max_attempts} time(s); "
                "giving up.",
            )
            result = _text(
                self._transition(
                    REQUEUE_EXPIRED,
                    uuid,
                    now,
                    max_attempts,
                    self.config.ttl,
                    json.dumps(lost),
                    json.dumps(summarize(lost)),
                )
            )
            if result in outcome:
                outcome[result] += 1
        outcome["rescued"] = int(
            self._run(
                RESCUE_CLAIMING, [self.keys.claiming, self.keys.claiming_seen, self.keys.queue], []
            )
        )
        outcome["purged"] = self.purge(now, limit)
        return outcome

    def purge(self, now: int | None = None, limit: int = 1000) -> int:
        """Remove expired requests from every index; their hashes expire on their own."""
        keys = [self.keys.expiry, self.keys.all, *(self.keys.index(s) for s in _INDEXED)]
        return int(self._run(PURGE, keys, [now or now_ms(), limit]))

    def unblock_waiting(self) -> int:
        """Wake this store's connections blocked waiting for work (CLIENT UNBLOCK), so that a
        stopping worker is quick; how many were woken.

        Best effort: where CLIENT is not allowed, a waiting thread notices the stop when its
        wait times out. Needs the client name `worker_store` gives.
        """
        name = self.redis.connection_pool.connection_kwargs.get("client_name")
        if not name:
            return 0
        woken = 0
        with contextlib.suppress(redis.RedisError, *REDIS_DOWN):
            for client in self.redis.client_list():
                if client.get("name") == name and "b" in client.get("flags", ""):
                    woken += int(self.redis.client_unblock(int(client["id"])))
        return woken

    def try_lead_reaper(self, worker: str, period: float) -> bool:
        """Elect one reaper per period across all workers (a short lock, never renewed)."""
        return bool(self.redis.set(self.keys.reaper, worker, nx=True, px=int(period * 1000)))

    @contextlib.contextmanager
    def cancellations(self, on_cancel: Callable[[str], None]) -> Iterator[threading.Thread]:
        """Call `on_cancel(uuid)` from a thread for each canceled pending request, until exit.

        Pub/sub may miss messages while Redis is away; lease renewal (`renew`) is the fallback.
        """
        stop = threading.Event()

        def listen() -> None:
            while not stop.is_set():
                pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
                try:
                    pubsub.subscribe(self.keys.cancel_channel)
                    while not stop.is_set():
                        # A local wait on the socket; short, so a stopping worker is not kept.
                        message = pubsub.get_message(timeout=0.1)
                        if message and message["type"] == "message":
                            on_cancel(_text(message["data"]))
                except REDIS_DOWN:
                    stop.wait(1.0)
                finally:
                    with contextlib.suppress(*REDIS_DOWN):
                        pubsub.close()

        thread = threading.Thread(target=listen, name="htq-cancel-listener", daemon=True)
        thread.start()
        try:
            yield thread
        finally:
            stop.set()
            thread.join(timeout=2)


class AsyncStore(_Model):
    """The non-blocking store, for the Tornado server."""

    def __init__(
        self, config: StoreConfig, *, client: aredis.Redis | None = None, max_connections: int = 32
    ) -> None:
        super().__init__(config)
        # Hundreds of concurrent handlers share a few connections, waiting for one when busy.
        self.redis: Any = client or aredis.Redis(
            connection_pool=aredis.BlockingConnectionPool.from_url(
                config.redis_url,
                max_connections=max_connections,
                timeout=20,
                **_CLIENT_OPTIONS,
                **keepalive(config.redis_url),
            )
        )
        self.waiters = DoneWaiters(self)
        self._link = AsyncLink(self.redis.connection_pool)
        self._batch: list[tuple[Script, list[str], list[Any], asyncio.Future[Any]]] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def close(self) -> None:
        await self.waiters.close()
        await self._link.close()
        await self.redis.aclose()

    def _run(self, script: Script, keys: list[str], args: list[Any]) -> asyncio.Future[Any]:
        """Run a script; the calls of one event-loop turn share one pipelined round trip.

        Under load many handlers enqueue at once: one pipeline of N scripts costs the
        client far less CPU than N awaited calls (docs/benchmarks.md has the figures).
        A future, not a coroutine: one frame fewer for each call to go through and back.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if not self._batch:
            loop.call_soon(self._flush)
        self._batch.append((script, keys, args, future))
        return future

    def _flush(self) -> None:
        batch, self._batch = self._batch, []
        task = asyncio.ensure_future(self._send(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(
        self, batch: list[tuple[Script, list[str], list[Any], asyncio.Future[Any]]]
    ) -> None:
        commands = [
            ("EVALSHA", script.sha, len(keys), *keys, *args) for script, keys, args, _ in batch
        ]
        try:
            replies: list[Any] = await self._link.execute(commands)
        except Exception as exc:  # Redis away: every caller gets the error
            replies = [exc] * len(batch)
        for (script, keys, args, future), reply in zip(batch, replies, strict=True):
            if isinstance(reply, NoScriptError):  # Redis restarted: its script cache is empty
                try:
                    reply = await self.redis.eval(script.source, len(keys), *keys, *args)
                except Exception as exc:
                    reply = exc
            if future.done():
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    def _transition(
        self, script: Script, uuid: str, *args: Any, other: str | None = None
    ) -> asyncio.Future[Any]:
        return self._run(script, self.keys.script_keys(uuid, other), self._args(uuid, *args))

    async def enqueue(self, uuid: str, spec: RequestSpec, time_ms: int) -> Enqueued:
        """Store a request and its queue entry atomically; with an `id`, cancel the earlier one
        (one script: a storm of POSTs with one `id` never retries)."""
        reply = await self._run(ENQUEUE, *self._enqueue_call(uuid, spec, time_ms))
        return self._enqueued(uuid, reply)

    async def get(self, uuid: str) -> dict[str, Any] | None:
        key, parts = self._get_command(uuid)
        row = await self.redis.hmget(key, parts)
        return self._render(uuid, dict(zip(parts, row, strict=True)))

    async def status(self, uuid: str) -> Status | None:
        status = await self.redis.hget(self.keys.request(uuid), "status")
        return Status(_text(status)) if status else None

    async def response(self, uuid: str) -> tuple[Status | None, bytes | str | None]:
        """The status and the stored response JSON (bytes, sent as is), either may be None."""
        status, raw = await self.redis.hmget(self.keys.request(uuid), ["status", "response"])
        return (Status(_text(status)) if status else None), raw

    async def cancel(self, uuid: str) -> Status | None:
        """Cancel; returns the status it had (None if unknown). Idempotent."""
        old = await self._transition(CANCEL, uuid, now_ms(), self.config.ttl)
        return Status(_text(old)) if old else None

    async def delete_response(self, uuid: str) -> bool:
        return bool(await self._transition(DELETE_RESPONSE, uuid))

    async def list(
        self,
        status: Status | None,
        limit: int,
        cursor: str | None,
        fields: frozenset[str] | None = None,
    ) -> Page:
        """Newest first; O(log n + limit) whatever the size of the queue. Reads only what
        `fields` shows (None: all), and ends a page early rather than go over PAGE_BYTES."""
        key, start = self._page_range(status, cursor)
        entries = await self.redis.zrange(
            key, start, "-inf", desc=True, byscore=True, offset=0, num=limit + 1, withscores=True
        )
        if not entries:
            return Page([], None)
        parts = self._page_parts(fields)
        keys = [self.keys.request(_text(uuid)) for uuid, _ in entries[:limit]]
        values = await self._run(PAGE, keys, [PAGE_BYTES, *parts])
        return self._page(entries, parts, values, limit)

    async def stats(self) -> dict[str, Any]:
        pipe = self.redis.pipeline(transaction=False)
        self._stats_commands(pipe)
        return self._stats_result(await pipe.execute())

    async def purge(self) -> int:
        keys = [self.keys.expiry, self.keys.all, *(self.keys.index(s) for s in _INDEXED)]
        return int(await self._run(PURGE, keys, [now_ms(), 1000]))


class DoneWaiters:
    """Lets any number of coroutines wait for requests to finish over one pub/sub connection.

    A waiter registers before it checks the status, so a finish between the check and the
    wait is never missed. After a reconnect (messages may have been lost) and every
    `recheck` seconds, the statuses of all waited-for requests are read in one pipeline.
    """

    def __init__(self, store: AsyncStore, recheck: float = 5.0) -> None:
        self._store = store
        self._recheck = recheck
        self._futures: dict[str, set[asyncio.Future[None]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def count(self) -> int:
        return sum(len(f) for f in self._futures.values())

    async def wait(self, uuid: str, timeout: float | None) -> bool:
        """Wait until `uuid` is done; True if it is, False on timeout."""
        self._ensure_listening()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._futures.setdefault(uuid, set()).add(future)
        try:
            status = await self._store.status(uuid)
            if status is None or status in TERMINAL:
                return True
            await asyncio.wait_for(asyncio.shield(future), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            waiting = self._futures.get(uuid)
            if waiting is not None:
                waiting.discard(future)
                if not waiting:
                    del self._futures[uuid]

    def _wake(self, uuid: str) -> None:
        for future in self._futures.get(uuid, ()):
            if not future.done():
                future.set_result(None)

    def _ensure_listening(self) -> None:
        if not self._closed and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(self._listen())

    async def _listen(self) -> None:
        keys = self._store.keys
        while True:
            pubsub = self._store.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(keys.done_channel)
                await self._recheck_all()
                last_check = time.monotonic()
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message and message["type"] == "message":
                        self._wake(_text(message["data"]))
                    if time.monotonic() - last_check >= self._recheck:
                        await self._recheck_all()
                        last_check = time.monotonic()
            except asyncio.CancelledError:
                raise
            except REDIS_DOWN:
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(*REDIS_DOWN):
                    await pubsub.aclose()

    async def _recheck_all(self) -> None:
        uuids = list(self._futures)
        if not uuids:
            return
        pipe = self._store.redis.pipeline(transaction=False)
        for uuid in uuids:
            pipe.hget(self._store.keys.request(uuid), "status")
        for uuid, status in zip(uuids, await pipe.execute(), strict=True):
            if status is None or Status(_text(status)) in TERMINAL:
                self._wake(uuid)

    async def close(self) -> None:
        """Stop listening; cancels until the listener has ended.

        Once is not always enough: on Python 3.11, `asyncio.wait_for` (redis-py sends commands
        through it) swallows a cancel that lands just as its call completes, and the listener
        would go on forever, holding up the server's exit.
        """
        self._closed = True
        task, self._task = self._task, None
        if task is None:
            return
        while not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=0.1)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("The listener for finished requests had failed: %r", error)


def worker_store(config: StoreConfig) -> Store:
    """A store whose client fails fast (one quick retry for a stale pooled connection).

    The worker's own loops do the backing off, so a thread never sits in a client's long retry
    schedule while it could be noticing a cancel or a shutdown. Its connections carry a name
    of their own, so a stopping worker can find and wake its threads waiting for work.
    """
    client = redis.Redis.from_url(
        config.redis_url,
        client_name=f"htq-worker:{os.getpid()}:{secrets.token_hex(4)}",
        socket_timeout=5,
        socket_connect_timeout=3,
        health_check_interval=10,
        retry=Retry(NoBackoff(), 1),
        **keepalive(config.redis_url),
    )
    return Store(config, client=client)


def summarize(response: dict[str, Any]) -> dict[str, Any]:
    """The few fields of a response a listing shows: code and reason, or the message."""
    if response["status"] == Status.SUCCESS:
        return {
            "code": response["code"],
            "reason": response["reason"],
            "elapsed": response["elapsed"],
        }
    return {"message": response.get("message"), "elapsed": response.get("elapsed")}


def _claimed(uuid: str, reply: Any) -> Claim | None:
    """The Claim a CLAIM script's reply describes; None if the uuid was not queued."""
    if not reply:
        return None
    token, attempts, small, headers, data = reply
    return Claim(uuid, _text(token), int(attempts), RequestSpec.from_stored(small, headers, data))


def _text(value: bytes | str | int | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)


__all__ = [
    "LISTED_FIELDS",
    "PAGE_BYTES",
    "REDIS_DOWN",
    "AsyncStore",
    "Claim",
    "DoneWaiters",
    "Enqueued",
    "Keys",
    "Link",
    "Page",
    "Store",
    "Turn",
    "keepalive",
    "parse_cursor",
    "unreachable",
    "worker_store",
]
