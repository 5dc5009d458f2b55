"""The wire to Redis: clients, and the pipelined connections of the hot paths.

This is the one module that reaches into redis-py's private parts (a connection's socket and
streams): redis-py sets a connection up (TLS, AUTH, SELECT, the client name), then `Wire` and
`AsyncWire` speak on it themselves, packing with hiredis. The major version of redis-py is
pinned in pyproject.toml, and tests/test_store_wire.py fails loudly if those parts move.
"""

from __future__ import annotations

import asyncio
import collections
import os
import secrets
import socket
import ssl
from collections.abc import Sequence
from typing import Any

import hiredis
import redis
import redis.asyncio as aredis
from redis.backoff import NoBackoff
from redis.exceptions import BusyLoadingError, NoScriptError
from redis.maint_notifications import MaintNotificationsConfig
from redis.retry import Retry

from htq._sockets import bound
from htq.config import StoreConfig, describe_redis

#: Exceptions that mean "Redis cannot be reached right now" (the server answers 503).
REDIS_DOWN: tuple[type[Exception], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    BusyLoadingError,
    ConnectionError,
    OSError,
)

# A Redis that stops answering must fail calls in seconds, not hang them (blocking calls use
# shorter timeouts than these).
_CLIENT_OPTIONS: dict[str, Any] = {
    "socket_timeout": 10,
    "socket_connect_timeout": 3,
    "health_check_interval": 10,
}
# With maintenance notifications on ("auto"), a pool hands out a connection Redis has closed (a
# restart) without checking it first, and the call fails: a 503 although Redis answers again.
# Off, the pool opens a fresh connection instead; nothing was sent on the dead one.
_CLIENT_OPTIONS["maint_notifications_config"] = MaintNotificationsConfig(enabled=False)


def unreachable(url: str) -> str | None:
    """Ping Redis once (at a command's start): None if it answers, else one line saying why."""
    client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
    try:
        client.ping()
        return None
    except (redis.RedisError, OSError) as exc:
        return (
            f"cannot reach Redis at {describe_redis(url)} ({exc}). Start it, name another "
            "with --redis, or run `htq up` for an embedded one."
        )
    finally:
        client.close()


def keepalive(redis_url: str) -> dict[str, Any]:
    """TCP keepalive for a Redis over TCP; a `unix://` one has no TCP (and refuses the option)."""
    return {} if redis_url.startswith("unix:") else {"socket_keepalive": True}


def client(config: StoreConfig, *, max_connections: int = 50) -> redis.Redis:
    """A thread-safe client; a burst of callers waits for a connection instead of failing."""
    pool = redis.BlockingConnectionPool.from_url(
        config.redis_url, **_pool_options(config, max_connections)
    )
    return redis.Redis(connection_pool=pool)


def async_client(config: StoreConfig, *, max_connections: int = 32) -> aredis.Redis:
    """The server's client: hundreds of handlers share a few connections, waiting when busy."""
    pool = aredis.BlockingConnectionPool.from_url(
        config.redis_url, **_pool_options(config, max_connections)
    )
    return aredis.Redis(connection_pool=pool)


def _pool_options(config: StoreConfig, max_connections: int) -> dict[str, Any]:
    return {
        "max_connections": max_connections,
        "timeout": 20,
        **_CLIENT_OPTIONS,
        **keepalive(config.redis_url),
    }


def worker_client(config: StoreConfig) -> redis.Redis:
    """A client that fails fast (one quick retry for a stale pooled connection).

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
    return client


class Wire:
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


class AsyncWire:
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
