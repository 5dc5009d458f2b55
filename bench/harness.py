"""The processes a run needs, each started here and stopped by its PID, whatever happens.

    with Services.start() as services:            # Valkey and the target, for the whole run
        with services.server("p1") as api:        # `htq server` on a free port: api.url
            with services.worker("p1", threads=10):
                ...

`htq server` and `htq worker` come from tests/support/processes.py, Valkey from
tests/support/redis_server.py; bench's own helpers (bench.target, bench.ceilings, bench.load
waiters) run through `child`.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import signal
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import redis

from htq.config import StoreConfig
from htq.store import Store
from tests.support.processes import HtqProcess, start_server, start_worker
from tests.support.redis_server import ValkeyProcess

STOP_TIMEOUT = 10.0
AOF_MARGIN = 48 * 2**20  # bytes of append-only file one measurement may add, at most


def child(module: str, *args: str, env: Mapping[str, str] | None = None) -> HtqProcess:
    """`python -m <module> ...` (a bench helper), ready once it prints `ready <port>`."""
    return HtqProcess(list(args), "ready", module=module, env=env)


def ready_port(process: HtqProcess, timeout: float = 15.0) -> str:
    """The port a bench helper announced in its `ready <port>` line, or an error that says the
    helper did not (with what it printed). The helper's start only waited for "ready" to show
    up in its output: the rest of that line may still be on its way."""
    line = process.line_starting("ready ", timeout) or ""
    if not re.fullmatch(r"ready [0-9]+", line.strip()):
        raise RuntimeError(
            f"`{' '.join(process.argv[2:])}` did not announce `ready <port>` "
            f"(exit {process.process.poll()}):\n{process.output()}"
        )
    return line.split()[1]


def children_of(pid: int) -> list[int]:
    """PIDs of a process's children (Linux /proc)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


def cpu_seconds(pid: int | None) -> float:
    """CPU time (user and system) a process has used so far (Linux /proc); NaN if unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def connections_per_process(pids: list[int], port: int) -> list[int]:
    """How many established TCP connections to local `port` each process holds (Linux /proc)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == "01" and int(local.rsplit(":", 1)[1], 16) == port:
                    inodes.add(f"socket:[{inode}]")
    counts = []
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            fds = []
        counts.append(sum(_readlink(fd) in inodes for fd in fds))
    return counts


def _readlink(path: Path) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _stop_pids(pids: list[int], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM each PID, wait for all to go, SIGKILL whoever is left."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(map(_alive, pids)) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in filter(_alive, pids):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@dataclass
class Api:
    """A running `htq server`: its URL, its process and (with --processes N) its children."""

    url: str
    process: HtqProcess
    children: list[int] = field(default_factory=list)
    token: str | None = None  # the server's --token, if it was given one

    @property
    def pids(self) -> list[int]:
        return [self.process.pid, *self.children]

    @property
    def port(self) -> int:
        return int(self.url.rstrip("/").rsplit(":", 1)[1])

    def stats(self, client: httpx.Client) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
        answer = client.get(self.url + "stats", headers=headers)
        answer.raise_for_status()
        stats: dict[str, Any] = answer.json()
        return stats


class Services:
    """Valkey and the target for the whole run, and the htq processes each scenario starts."""

    def __init__(self) -> None:
        self._exit = contextlib.ExitStack()
        self.valkey = ValkeyProcess()
        self.redis: redis.Redis | None = None
        self.target_url = ""

    @classmethod
    def start(cls) -> Services:
        services = cls()
        try:
            services._start()
        except BaseException:
            services.close()
            raise
        return services

    def _start(self) -> None:
        self._exit.callback(self.valkey.close)
        self.valkey.start()
        self.redis = redis.Redis.from_url(self.valkey.url, decode_responses=True)
        self._exit.callback(self.redis.close)
        target = self._exit.enter_context(self.running("bench.target", "--port", "0"))
        self.target_url = f"http://127.0.0.1:{ready_port(target)}"

    def close(self) -> None:
        self._exit.close()

    def __enter__(self) -> Services:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- what scenarios start ----------------------------------------------------------------

    @contextlib.contextmanager
    def running(self, module: str, *args: str) -> Iterator[HtqProcess]:
        """A bench helper process (`python -m bench.<...>`), stopped on leaving."""
        process = child(module, *args)
        try:
            yield process
        finally:
            process.stop()

    @contextlib.contextmanager
    def server(self, prefix: str, processes: int = 1, token: str | None = None) -> Iterator[Api]:
        """`htq server --processes N [--token T]` on a free port, answering before this yields."""
        extra = ["--token", token] if token else []
        process = start_server(self.valkey.url, prefix, "--processes", str(processes), *extra)
        api = Api(process.url or "", process, token=token)
        try:
            if processes > 1:
                api.children = _wait_for_children(process.pid, processes)
            _wait_until_answering(api)
            yield api
        finally:
            # Children first: they exit cleanly on SIGTERM, and then so does their parent
            # (which would restart a child killed by a signal).
            _stop_pids(api.children)
            process.stop()
            _stop_pids(api.children, timeout=1.0)

    @contextlib.contextmanager
    def worker(self, prefix: str, threads: int = 10) -> Iterator[HtqProcess]:
        process = start_worker(self.valkey.url, prefix, threads=threads)
        try:
            yield process
        finally:
            process.stop()

    # -- Redis -------------------------------------------------------------------------------

    def store_config(self, prefix: str) -> StoreConfig:
        return StoreConfig(redis_url=self.valkey.url, prefix=prefix)

    @contextlib.contextmanager
    def store(self, prefix: str) -> Iterator[Store]:
        store = Store(self.store_config(prefix))
        try:
            yield store
        finally:
            store.close()

    def info(self, section: str) -> dict[str, Any]:
        assert self.redis is not None
        info: dict[str, Any] = self.redis.info(section)
        return info

    def flush(self) -> None:
        """Empty our own Valkey between scenarios (and compact its append-only file)."""
        assert self.redis is not None
        self._wait_for_rewrite(300.0)
        self.redis.flushall()
        self.settle()

    def settle(self, timeout: float = 300.0) -> None:
        """Let Valkey rewrite its append-only file now, not in the middle of a measurement.

        Valkey rewrites the file by itself once it has grown by `auto-aof-rewrite-percentage`
        (a fork, and a core busy writing): when the next measurement could cross that line,
        the rewrite is started here and waited for.
        """
        assert self.redis is not None
        self._wait_for_rewrite(timeout)
        persistence = self.info("persistence")
        if not persistence.get("aof_enabled"):
            return
        config = self.redis.config_get("auto-aof-rewrite-*")
        percentage = int(config.get("auto-aof-rewrite-percentage") or 100)
        threshold = max(
            int(config.get("auto-aof-rewrite-min-size") or 64 * 2**20),
            persistence["aof_base_size"] * (100 + percentage) // 100,
        )
        if percentage and persistence["aof_current_size"] + AOF_MARGIN >= threshold:
            self.redis.bgrewriteaof()
            time.sleep(0.05)
            self._wait_for_rewrite(timeout)

    def drop(self, prefix: str) -> None:
        """Delete one htq namespace's keys (and nothing else)."""
        assert self.redis is not None
        keys = list(self.redis.scan_iter(match=f"{{{prefix}}}:*", count=1000))
        for start in range(0, len(keys), 1000):
            self.redis.unlink(*keys[start : start + 1000])

    def _wait_for_rewrite(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            persistence = self.info("persistence")
            if not (
                persistence.get("aof_rewrite_in_progress")
                or persistence.get("aof_rewrite_scheduled")
            ):
                return
            time.sleep(0.1)
        raise RuntimeError(f"Valkey still rewriting its append-only file after {timeout:g}s")


def _wait_for_children(pid: int, count: int, timeout: float = 10.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while len(children := children_of(pid)) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"htq server {pid} has {len(children)} children, not {count}")
        time.sleep(0.05)
    return children


def _wait_until_answering(api: Api, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2) as client:
        while True:
            try:
                api.stats(client)
                return
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
