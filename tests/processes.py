"""Real `htq` processes for end-to-end tests, always stopped by PID."""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.redis_process import free_port

ROOT = Path(__file__).resolve().parent.parent


class HtqProcess:
    """One running `htq <command>`; its output is collected so tests can read it."""

    def __init__(self, args: list[str], ready: str, *, url: str | None = None) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env = {k: v for k, v in env.items() if not k.startswith("HTQ_")}
        self.args = args
        self.url = url
        self._output: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "htq", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group: kill() reaches forked children too
        )
        self._selector = selectors.DefaultSelector()
        assert self.process.stdout is not None
        os.set_blocking(self.process.stdout.fileno(), False)
        self._selector.register(self.process.stdout, selectors.EVENT_READ)
        self.wait_for(ready)

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        """Everything the process printed so far."""
        self._read(0)
        return "".join(self._output)

    def wait_for(self, text: str, timeout: float = 15.0) -> str:
        """Wait until `text` appears in the output; fail with the output if it does not."""
        deadline = time.monotonic() + timeout
        while text not in "".join(self._output):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (self.process.poll() is not None and not self._read(0)):
                raise AssertionError(
                    f"`htq {' '.join(self.args)}` did not print {text!r} "
                    f"(exit {self.process.poll()}):\n{''.join(self._output)}"
                )
            self._read(min(remaining, 0.1))
        return "".join(self._output)

    def _read(self, timeout: float) -> bool:
        assert self.process.stdout is not None
        got = False
        for _ in self._selector.select(timeout):
            chunk = self.process.stdout.read()
            if chunk:
                self._output.append(chunk)
                got = True
        return got

    def signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signum)

    def wait(self, timeout: float) -> int:
        code = self.process.wait(timeout)
        self._read(0)
        return code

    def kill(self) -> None:
        """SIGKILL to the process and any children it forked, as a crash would."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.process.wait(5)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM and wait; SIGKILL if it does not stop in time."""
        if self.process.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._read(0)
        self._selector.close()
        if self.process.stdout:
            self.process.stdout.close()
        return self.process.returncode


def start_server(redis_url: str, prefix: str, *extra: str, port: int | None = None) -> HtqProcess:
    port = port or free_port()
    args = ["server", "--host", "127.0.0.1", "--port", str(port), "--redis", redis_url]
    args += ["--prefix", prefix, *extra]
    return HtqProcess(args, " * Running on", url=f"http://127.0.0.1:{port}/")


def start_worker(redis_url: str, prefix: str, *extra: str, threads: int = 2) -> HtqProcess:
    args = ["worker", "--threads", str(threads), "--redis", redis_url, "--prefix", prefix, *extra]
    return HtqProcess(args, "workers...")
