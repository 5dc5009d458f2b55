"""`htq server`: the REST API over Tornado, one or more processes on one port."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
import socket
import sys

import tornado.netutil

from htq.config import ServerConfig
from htq.outbound import listening
from htq.server.app import make_app, read_limit, start_announcing, start_purging
from htq.server.guard import is_loopback
from htq.server.listener import Limits, Listener
from htq.server.prefork import prefork
from htq.store import REDIS_DOWN, AsyncStore, unreachable

__all__ = ["bind", "check_redis", "listen", "run_server", "serve"]


def serve(config: ServerConfig) -> int:
    """Run the server until SIGINT/SIGTERM; print the spec's two lines once listening."""
    print("Starting htq REST server...", flush=True)
    # Until the event loop takes over, a SIGTERM is a clean exit, not a kill.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    if not check_redis(config.store.redis_url, "server"):
        return 1
    sockets = listen(config)
    if sockets is None:
        return 1
    if config.processes != 1:
        return _prefork(config, sockets)
    asyncio.run(run_server(config, sockets))
    return 0


def _prefork(config: ServerConfig, sockets: list[socket.socket]) -> int:
    """Each process listens on a socket of its own (SO_REUSEPORT), so the kernel spreads
    connections evenly; with one shared socket, one process often took them all."""
    port = sockets[0].getsockname()[1]
    own_config = dataclasses.replace(config, port=port)

    def child(number: int) -> None:
        # The first child keeps the parent's socket, so the port never stops listening.
        if number:
            for sock in sockets:
                sock.close()
        asyncio.run(run_server(own_config, sockets if number == 0 else bind(own_config)))

    def started() -> None:
        for sock in sockets:  # the parent accepts nothing: connections queued on its copy
            sock.close()  # of the socket would wait forever

    return prefork(config.processes, child, started=started)


def listen(config: ServerConfig) -> list[socket.socket] | None:
    """Bind the port and print ` * Running on ...`, or print why not and return None."""
    try:
        sockets = bind(config)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        where = f"{config.host}:{config.port}"
        print(f"htq server: cannot listen on {where}: {reason}", file=sys.stderr)
        return None
    port = sockets[0].getsockname()[1]
    print(f" * Running on http://{config.host}:{port}/", flush=True)
    if not config.tokens and not is_loopback(config.host):
        print(
            f"htq server: warning: {config.host} is reachable from other machines and no token "
            "is required: anyone who reaches it can make htq send requests. Start it with "
            "--token, HTQ_TOKENS or --token-file.",
            file=sys.stderr,
            flush=True,
        )
    return sockets


def check_redis(url: str, command: str) -> bool:
    """Ping Redis once at start; on failure print one line naming the address."""
    problem = unreachable(url)
    if problem is not None:
        print(f"htq {command}: {problem}", file=sys.stderr)
    return problem is None


def bind(config: ServerConfig) -> list[socket.socket]:
    return tornado.netutil.bind_sockets(config.port, config.host, reuse_port=config.processes != 1)


async def run_server(
    config: ServerConfig, sockets: list[socket.socket], stop: asyncio.Event | None = None
) -> None:
    """Serve on `sockets` until `stop` is set (by default: until SIGINT or SIGTERM)."""
    store = AsyncStore(config.store)
    where = listening(sock.getsockname()[:2] for sock in sockets)
    limits = Limits(
        header_timeout=config.header_timeout,
        body_timeout=config.body_timeout,
        idle_timeout=config.idle_timeout,
        max_connections=config.max_connections,
    )
    server = Listener(
        make_app(config, store, server_ports=[entry["port"] for entry in where]),
        limits=limits,
        xheaders=config.xheaders,
        max_body_size=read_limit(config),
    )
    if stop is None:
        # Before the first await: a SIGTERM while the server starts (announcing itself to a
        # slow Redis, say) stops it cleanly, as one a minute later does.
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    server.add_sockets(sockets)
    purging = start_purging(store)
    announcing = await start_announcing(store, where)
    await stop.wait()
    purging.stop()
    announcing.stop()
    server.stop()
    with contextlib.suppress(*REDIS_DOWN):
        await store.withdraw(where)
    await store.close()
