"""Real `htq` processes for end-to-end tests, always stopped by PID."""

from __future__ import annotations

import codecs
import contextlib
import io
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from tests.support.redis_server import free_port

ROOT = Path(__file__).resolve().parents[2]

T = TypeVar("T")


def htq_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This environment without its HTQ_* variables (a test sets those it means), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HTQ_")}
    return {**env, "PYTHONUNBUFFERED": "1", **(extra or {})}


def htq(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 20
) -> subprocess.CompletedProcess[str]:
    """`htq <args>` run to its end, stdout and stderr captured apart."""
    return subprocess.run(
        [sys.executable, "-m", "htq", *args],
        cwd=ROOT,
        env=htq_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class HtqProcess:
    """One running `htq <command>` (or `python -m <module>`), ready once it has printed `ready`.

    A thread collects its output (stdout and stderr) as it comes, whether or not a test is
    looking, so the process never blocks on a full pipe: `output()` is all of it, `lines` its
    complete lines without their newline.
    """

    def __init__(
        self,
        args: list[str],
        ready: str,
        *,
        url: str | None = None,
        env: Mapping[str, str] | None = None,
        module: str = "htq",
        launcher: Sequence[str] = (),
    ) -> None:
        self.args = args
        self.url = url
        # `launcher`: a command that execs the rest (`prlimit --nofile=64`): the PID stays htq's.
        self.argv = [*launcher, sys.executable, "-m", module, *args]
        self.command = " ".join([module, *args])
        self.env = htq_env(env)
        self.lines: list[str] = []
        self._output: list[str] = []
        self._partial = ""  # the last line, until its newline comes
        self._ended = False  # the pipe is closed: no more output will come
        self._changed = threading.Condition()
        self.process = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: kill() reaches forked children too
        )
        self._reader = threading.Thread(target=self._collect, daemon=True)
        self._reader.start()
        try:
            self.wait_for(ready)
        except BaseException:
            self.stop()
            raise

    def _collect(self) -> None:
        """The reader thread: take each chunk as it comes, until the pipe closes."""
        assert self.process.stdout is not None
        decoder = io.IncrementalNewlineDecoder(
            codecs.getincrementaldecoder("utf-8")(errors="replace"), translate=True
        )
        with self.process.stdout as stream:
            while chunk := os.read(stream.fileno(), 65536):
                self._add(decoder.decode(chunk))
        self._add(decoder.decode(b"", final=True), ended=True)

    def _add(self, text: str, *, ended: bool = False) -> None:
        with self._changed:
            self._output.append(text)
            *complete, self._partial = (self._partial + text).split("\n")
            if ended and self._partial:
                complete.append(self._partial)
                self._partial = ""
            self.lines += complete
            self._ended = ended
            self._changed.notify_all()

    def _until(self, find: Callable[[], T | None], timeout: float) -> T | None:
        """What `find` returns once not None, waiting for output up to `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while (found := find()) is None and not self._ended:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(remaining)
            return found

    def output(self) -> str:
        """Everything the process printed so far."""
        with self._changed:
            return "".join(self._output)

    def wait_for(self, text: str, timeout: float = 15.0) -> str:
        """The output once `text` appears in it; fail with the output if it does not."""

        def output_with_text() -> str | None:
            output = "".join(self._output)
            return output if text in output else None

        found = self._until(output_with_text, timeout)
        if found is None:
            raise AssertionError(
                f"`{self.command}` did not print {text!r} "
                f"(exit {self.process.poll()}):\n{self.output()}"
            )
        return found

    def wait_for_line(self, text: str, timeout: float = 10.0) -> str | None:
        """The first output line containing `text`, waiting up to `timeout` seconds."""
        return self._until(
            lambda: next((line for line in self.lines if text in line), None), timeout
        )

    def line_starting(self, prefix: str, timeout: float = 10.0) -> str | None:
        """The first complete output line that starts with `prefix`, waiting up to `timeout`."""
        return self._until(
            lambda: next((line for line in self.lines if line.startswith(prefix)), None), timeout
        )

    def count(self, text: str) -> int:
        """How many output lines contain `text`."""
        with self._changed:
            return sum(text in line for line in self.lines)

    @property
    def pid(self) -> int:
        return self.process.pid

    def signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signum)

    def _drain(self, timeout: float = 2.0) -> None:
        """Let the reader take the last output (a forked child may hold the pipe open)."""
        self._reader.join(timeout)

    def wait(self, timeout: float) -> int:
        code = self.process.wait(timeout)
        self._drain()
        return code

    def kill(self) -> None:
        """SIGKILL to the process and any children it forked, as a crash would."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.process.wait(5)
        self._drain()

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM and wait; SIGKILL if it does not stop in time."""
        if self.process.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._drain()
        return self.process.returncode


def start_server(redis_url: str, prefix: str, *extra: str, port: int | None = None) -> HtqProcess:
    port = port or free_port()
    args = ["server", "--host", "127.0.0.1", "--port", str(port), "--redis", redis_url]
    args += ["--prefix", prefix, *extra]
    return HtqProcess(args, " * Running on", url=f"http://127.0.0.1:{port}/")


def start_worker(redis_url: str, prefix: str, *extra: str, threads: int = 2) -> HtqProcess:
    args = ["worker", "--threads", str(threads), "--redis", redis_url, "--prefix", prefix, *extra]
    return HtqProcess(args, "workers...")
