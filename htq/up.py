"""`htq up`: the whole service in one process: server, worker and an embedded Valkey by default."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from htq.config import ServerConfig, StoreConfig, WorkerConfig
from htq.embedded import OWNER_PIDFILE, PIDFILE
from htq.server import check_redis, listen, run_server
from htq.server.listener import default_max_connections
from htq.worker import Worker
from htq.worker._callbacks import THREADS as CALLBACK_THREADS

_STOP = (signal.SIGINT, signal.SIGTERM)
#: Descriptors a worker thread may hold: a few kept-alive connections to targets (httpcore's
#: pool keeps up to 10), besides the worker's Redis connections.
_PER_THREAD = 10
_WORKER_REDIS = 64


def up(server: ServerConfig, worker: WorkerConfig, *, embedded: bool, data_dir: str) -> int:
    """Run until SIGINT/SIGTERM; then the worker gets its grace period, and Valkey stops last."""
    if not embedded:
        return _run(server, worker)
    path = Path(data_dir).resolve()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"htq up: cannot use {path} as the data directory: {exc.strerror}", file=sys.stderr)
        return 1
    if not _take_over(path):
        return 1
    # In a session of its own: a Ctrl-C in the terminal reaches this process, not Valkey, which
    # must outlive the worker's grace period (see htq/embedded.py).
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "htq.embedded", str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert supervisor.stdin is not None and supervisor.stdout is not None
    said = supervisor.stdout.readline().strip()
    if not said.startswith("ready "):
        reason = said.removeprefix("failed ") or "it exited"
        print(f"htq up: cannot start the embedded Valkey in {path}: {reason}", file=sys.stderr)
        supervisor.wait(10)
        return 1
    port = int(said.split()[1])
    url = f"redis://127.0.0.1:{port}/0"
    print(f"Embedded Valkey on {url}, data in {path}/", flush=True)
    print(f"Add a worker to it: htq worker --redis 127.0.0.1:{port}", flush=True)
    try:
        return _run(
            dataclasses.replace(server, store=_with_url(server.store, url)),
            dataclasses.replace(worker, store=_with_url(worker.store, url)),
        )
    finally:
        supervisor.stdin.close()  # Valkey stops now, last
        try:
            supervisor.wait(15)
        except subprocess.TimeoutExpired:
            supervisor.kill()


def _take_over(path: Path) -> bool:
    """Make sure no other Valkey writes to `path`: stop one orphaned by a killed `htq up`.

    If the `htq up` that started it is still running, refuse instead (two services on one
    data directory would corrupt it).
    """
    # Each pid from its own file: a missing or damaged valkey.pid must never make the owner's
    # pid (or a stranger's) the one stopped. htq 0.2.0 wrote the owner second in valkey.pid.
    written = _read_pids(path / PIDFILE)
    if not written or not _alive(written[0]):
        return True
    valkey_pid = written[0]
    owner_pid = next(iter(_read_pids(path / OWNER_PIDFILE) or written[1:2]), 0)
    if owner_pid > 0 and _alive(owner_pid):
        print(
            f"htq up: {path} is in use by another htq up (pid {owner_pid}); "
            "stop it or choose another --data-dir",
            file=sys.stderr,
        )
        return False
    print(f"Stopping the Valkey (pid {valkey_pid}) left by an htq up that was killed", flush=True)
    os.kill(valkey_pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while _alive(valkey_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not _alive(valkey_pid)


def _read_pids(file: Path) -> list[int]:
    try:
        return [int(n) for n in file.read_text().split()]
    except (OSError, ValueError):
        return []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):  # a zombie is not alive
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    return True


def _run(server: ServerConfig, worker: WorkerConfig) -> int:
    print("Starting htq REST server...", flush=True)
    # Until the server's event loop takes over, a SIGTERM is a clean exit (the embedded Valkey
    # and the worker's threads are stopped on the way out), not a kill.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    if not server.max_connections:  # the worker in this process needs descriptors too
        threads = worker.threads + CALLBACK_THREADS
        spare = default_max_connections() - threads * _PER_THREAD - _WORKER_REDIS
        server = dataclasses.replace(server, max_connections=max(16, spare))
    if not check_redis(server.store.redis_url, "up"):
        return 1
    sockets = listen(server)
    if sockets is None:
        return 1
    # The server of this process is never sent to; the worker knows its ports at once.
    workers = Worker(worker, server_ports=tuple({sock.getsockname()[1] for sock in sockets}))
    # Said before the threads start: with requests queued, they log their first at once.
    print(f"Started {worker.threads} workers...", flush=True)
    workers.start()
    try:
        asyncio.run(run_server(server, sockets))
    finally:
        # The server is gone with its signal handlers: a second Ctrl-C (or SIGTERM) now cuts
        # the grace period short, as the worker's "interrupt again" line says, instead of
        # raising in the middle of the hand-back.
        previous = {sig: signal.signal(sig, lambda *_: workers.force()) for sig in _STOP}
        try:
            workers.stop(worker.grace)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    return 0


def _with_url(store: StoreConfig, url: str) -> StoreConfig:
    return dataclasses.replace(store, redis_url=url)
