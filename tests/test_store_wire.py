"""The wire reaches into redis-py's connections (htq/store/_wire.py says why): if a redis-py
release moves those parts, these tests say so by name, before anything else fails oddly."""

from __future__ import annotations

import asyncio
import socket

import redis
import redis.asyncio as aredis

from htq.config import StoreConfig
from htq.store._wire import AsyncWire, Wire


def test_a_sync_connection_has_the_socket_the_wire_speaks_on(store_config: StoreConfig) -> None:
    pool = redis.ConnectionPool.from_url(store_config.redis_url)
    connection = pool.connection_class(**pool.connection_kwargs)
    connection.connect()
    try:
        assert isinstance(getattr(connection, "_sock", None), socket.socket)
    finally:
        connection.disconnect()
    wire = Wire(pool)
    try:
        assert wire.execute([("PING",), ("ECHO", "htq")]) == [b"PONG", b"htq"]
    finally:
        wire.close()
        pool.disconnect()


def test_an_async_connection_has_the_streams_the_wire_speaks_on(store_config: StoreConfig) -> None:
    async def check() -> None:
        pool = aredis.ConnectionPool.from_url(store_config.redis_url)
        connection = pool.connection_class(**pool.connection_kwargs)
        await connection.connect()
        try:
            assert isinstance(getattr(connection, "_reader", None), asyncio.StreamReader)
            assert isinstance(getattr(connection, "_writer", None), asyncio.StreamWriter)
        finally:
            await connection.disconnect()
        wire = AsyncWire(pool)
        try:
            assert await wire.execute([("PING",), ("ECHO", "htq")]) == [b"PONG", b"htq"]
        finally:
            await wire.close()
            await pool.aclose()

    asyncio.run(check())
