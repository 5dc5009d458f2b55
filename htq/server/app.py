"""The Tornado application: the route table and the periodic purge of expired requests."""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Iterable
from typing import Any

import tornado.ioloop
import tornado.web

from htq.config import ServerConfig
from htq.masking import MaskPasswords
from htq.outbound import Outbound
from htq.server.guard import Guard
from htq.server.handlers import (
    AttemptsHandler,
    HealthHandler,
    NotFoundHandler,
    RequestHandler,
    ResponseHandler,
    RetryHandler,
    StatsHandler,
    StatusHandler,
)
from htq.server.openapi import OpenApiHandler
from htq.server.queue import QueueHandler
from htq.store import REDIS_DOWN, AsyncStore

log = logging.getLogger("htq.server")
log.addFilter(MaskPasswords())

PURGE_PERIOD_MS = 30_000
ANNOUNCE_PERIOD_MS = 10_000  # a server says where it listens this often...
ANNOUNCE_TTL = 60.0  # ...and is forgotten this many seconds after it stopped saying it
_UUID = r"([^/]+)"
_RANDOM = random.Random()


def make_app(
    config: ServerConfig, store: AsyncStore, server_ports: Iterable[int] = ()
) -> tornado.web.Application:
    """The application of a server listening on `server_ports` (`POST /` refuses them)."""
    return tornado.web.Application(
        [
            (r"/", QueueHandler),
            (r"/stats/?", StatsHandler),
            (r"/healthz/?", HealthHandler),
            (r"/openapi\.json", OpenApiHandler),
            (rf"/{_UUID}/?", RequestHandler),
            (rf"/{_UUID}/status/?", StatusHandler),
            (rf"/{_UUID}/response/?", ResponseHandler),
            (rf"/{_UUID}/attempts/?", AttemptsHandler),
            (rf"/{_UUID}/retry/?", RetryHandler),
        ],
        default_handler_class=NotFoundHandler,
        store=store,
        xheaders=config.xheaders,
        max_body=config.max_body,
        max_timeout=config.max_timeout,
        show_secrets=config.show_secrets,
        guard=Guard.of(config.host, config.allowed_hosts, config.cors_origins, config.tokens),
        read_limit=read_limit(config),
        outbound=Outbound.of(config.outbound, config.store.redis_url, server_ports),
        idempotency_ttl=config.idempotency_ttl,
        log_function=_log_request if config.debug else _quiet,
    )


def read_limit(config: ServerConfig) -> int:
    """The most of a body the server reads. A refused body up to this size is read and thrown
    away before the answer, so the client reads the answer instead of a reset connection."""
    return 2 * config.max_body + 4096


def start_purging(store: AsyncStore) -> tornado.ioloop.PeriodicCallback:
    """Trim the indexes of expired requests now and then (their hashes expire by themselves)."""

    async def purge() -> None:
        with contextlib.suppress(*REDIS_DOWN):
            await store.purge()

    callback = tornado.ioloop.PeriodicCallback(purge, _spread(PURGE_PERIOD_MS, 0.2))
    callback.start()
    return callback


async def start_announcing(
    store: AsyncStore, where: list[dict[str, Any]]
) -> tornado.ioloop.PeriodicCallback:
    """Say in the store where this server listens, now and then (workers refuse to send there:
    a request to htq's own API could queue itself again and again)."""

    async def announce() -> None:
        with contextlib.suppress(*REDIS_DOWN):
            await store.announce(where, ANNOUNCE_TTL)

    await announce()
    callback = tornado.ioloop.PeriodicCallback(announce, _spread(ANNOUNCE_PERIOD_MS, 0.1))
    callback.start()
    return callback


def _spread(period_ms: float, fraction: float) -> float:
    """`period_ms` give or take `fraction` of it, drawn once per process, so that servers
    started together do not all call Redis at once. Not Tornado's `jitter`: that draws from
    the `random` module's shared state at every call, which the process's other users of it
    (hypothesis, in the tests) see change under them."""
    return period_ms * (1 + _RANDOM.uniform(-fraction, fraction) / 2)


def _log_request(handler: tornado.web.RequestHandler) -> None:
    request = handler.request
    log.debug(
        "%s %s %d %.1fms",
        request.method,
        request.uri,
        handler.get_status(),
        1000 * request.request_time(),
    )


def _quiet(handler: tornado.web.RequestHandler) -> None:
    return None
