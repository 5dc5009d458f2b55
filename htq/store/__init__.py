"""THE Redis data model: every key, Lua script and transition, for the server and the worker.

    _keys.py     every key name, built in one place
    _scripts.py  the Lua scripts (each transition one atomic step) and their NOSCRIPT recovery
    _ops.py      every operation once: the commands it sends, how its replies are read
    _render.py   resources as the API shows them, from the hash fields read
    _values.py   what operations return (Claim, Page, Enqueued...), and `Operation` itself
    _sync.py     Store: runs operations, blocking (worker threads, tests)
    _async.py    AsyncStore: runs operations without blocking, batched per loop turn (server)
    _waiters.py  DoneWaiters: coroutines waiting for requests to finish, over pub/sub
    _wire.py     clients and the pipelined connections: the only code that touches redis-py's
                 private parts

Keys (one hash tag per namespace, so a namespace lives in one Redis Cluster slot):

    {p}:req:<uuid>     hash   request (JSON: timeout, url, method, id, retries...), headers, data
                              (JSON): apart, so a listing reads only what it shows; status,
                              seq, time, token, attempts, id, worker, replaced_by (the uuid
                              of the request with the same `id` that replaced it), response
                              (JSON, once answered), summary (JSON: code, reason, elapsed or
                              message; kept when the response is deleted, for listings),
                              due (ms, while waiting), claimed (ms, the last claim), history
                              (JSON lines, one per recorded attempt) and recorded (the number
                              of the last), callbacks (1: has some), callback_result (JSON),
                              callback_token (fences the holder of its callback).
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
    {p}:due            zset   queued uuid -> when it is due (ms): scheduled, or waiting to be
                              retried; PROMOTE moves the due ones into the queue. Also the
                              channel that tells schedulers of a new earliest due time
    {p}:callbacks      list   uuids of finished requests whose callbacks are to be sent
    {p}:servers        zset   where each live server listens (JSON: host, port, addresses) ->
                              when that expires (ms); workers never send there
    {p}:callbacks:taking
                       list   uuids a worker took from `callbacks` (BLMOVE), not yet leased
    {p}:callbacks:taking:seen
                       set    the reaper's last look at `callbacks:taking` (stuck ones go back)
    {p}:callbacks:leases
                       zset   uuid -> lease deadline (ms) of each callback a worker holds, or
                              leaves to wait while its host is busy; renewed by the holder, the
                              reaper puts the expired ones back in `callbacks`
    {p}:idem:<key>     string `<uuid> <fingerprint>` of the request an Idempotency-Key made
                              (expires after --idempotency-ttl)

Channels: `{p}:done` carries the uuid of each request that finishes (waiters on /response/),
`{p}:cancel` the uuid of each pending request canceled (the worker holding it interrupts).

Every transition is one Lua script with every key it touches passed in KEYS, but one: enqueue
with an `id` finds the request that holds it and builds that key itself (same hash tag, same
Cluster slot), so that replacing is one step however many POSTs race. A claim issues a fencing
token; results, renewals and hand-backs with a stale token are refused.
"""

from htq.store._async import AsyncStore
from htq.store._keys import Keys
from htq.store._ops import LISTED_FIELDS, PAGE_BYTES, Operations, parse_cursor
from htq.store._render import summarize
from htq.store._scripts import CLAIM, COMPLETE, ENQUEUE, PAGE, Script
from htq.store._sync import Store, worker_store
from htq.store._values import (
    Answer,
    CallbackJob,
    Claim,
    Enqueued,
    Idempotency,
    Operation,
    Page,
    Requeued,
    Turn,
)
from htq.store._waiters import DoneWaiters
from htq.store._wire import REDIS_DOWN, unreachable

__all__ = [
    "CLAIM",
    "COMPLETE",
    "ENQUEUE",
    "LISTED_FIELDS",
    "PAGE",
    "PAGE_BYTES",
    "REDIS_DOWN",
    "Answer",
    "AsyncStore",
    "CallbackJob",
    "Claim",
    "DoneWaiters",
    "Enqueued",
    "Idempotency",
    "Keys",
    "Operation",
    "Operations",
    "Page",
    "Requeued",
    "Script",
    "Store",
    "Turn",
    "parse_cursor",
    "summarize",
    "unreachable",
    "worker_store",
]
