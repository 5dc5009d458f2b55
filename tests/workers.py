"""Helpers for worker tests: enqueue through the store, wait for outcomes, run `htq worker`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from htq.config import StoreConfig
from htq.models import TERMINAL, Status, new_uuid, now_ms, validate_request
from htq.store import Store


def enqueue(store: Store, **fields: Any) -> str:
    """Queue a request as the server would (validated, then stored); returns its uuid."""
    spec = validate_request(fields)
    uuid = new_uuid()
    store.enqueue(uuid, spec.to_resource(uuid, now_ms(), Status.QUEUED))
    return uuid


def wait_for_status(
    store: Store, uuid: str, statuses: frozenset[Status] = TERMINAL, timeout: float = 10.0
) -> Status | None:
    """The request's status once it is one of `statuses` (default: done); its last otherwise."""
    deadline = time.monotonic() + timeout
    status = store.status(uuid)
    while status not in statuses and time.monotonic() < deadline:
        time.sleep(0.02)
        status = store.status(uuid)
    return status


def attempts(store: Store, uuid: str) -> int:
    return int(store.redis.hget(store.keys.request(uuid), "attempts") or 0)


class WorkerProcess:
    """A real `htq worker` process; its output (stdout and stderr) collected line by line.

    `args` go on the command line as they are; `options` as `--name value` (lease="2" gives
    `--lease 2`). HTQ_* variables of the test's environment are not passed on.
    """

    def __init__(self, config: StoreConfig, *args: str, **options: str) -> None:
        self.argv = [
            sys.executable, "-m", "htq", "worker",
            "--redis", config.redis_url, "--prefix", config.prefix, *args,
        ]  # fmt: skip
        for name, value in options.items():
            self.argv += [f"--{name.replace('_', '-')}", value]
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("HTQ_")}
        self.env["PYTHONUNBUFFERED"] = "1"
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._process: subprocess.Popen[str] | None = None

    @property
    def process(self) -> subprocess.Popen[str]:
        assert self._process is not None, "not started"
        return self._process

    def start(self) -> WorkerProcess:
        self._process = subprocess.Popen(
            self.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=self.env
        )
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self) -> None:
        assert self.process.stdout is not None
        with self.process.stdout as stream:
            for line in stream:
                with self._changed:
                    self.lines.append(line.rstrip("\n"))
                    self._changed.notify_all()

    def wait_for_line(self, text: str, timeout: float = 10.0) -> str | None:
        """The first output line containing `text`, waiting up to `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = next((line for line in self.lines if text in line), None)
                remaining = deadline - time.monotonic()
                if found is not None or remaining <= 0:
                    return found
                self._changed.wait(remaining)

    def count(self, text: str) -> int:
        with self._changed:
            return sum(text in line for line in self.lines)

    def send_signal(self, sig: int) -> None:
        self.process.send_signal(sig)

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout)

    def stop(self) -> None:
        """Terminate (by PID) if still running; kill if it does not go."""
        if self._process is None or self._process.poll() is not None:
            return
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(5)
