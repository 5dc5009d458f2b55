"""Pre-fork: N server processes share one listening socket; the parent supervises them.

Unlike tornado.process.fork_processes, the parent forwards SIGTERM/SIGINT to its children and
waits for them, so stopping the parent never leaves orphans serving the port.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable
from types import FrameType

log = logging.getLogger("htq.server")

_STOP = (signal.SIGTERM, signal.SIGINT)


def prefork(count: int, child: Callable[[int], None], *, started: Callable[[], None]) -> int:
    """Run `child(n)` in `count` processes (0 = one per core) until a signal; restart crashed ones.

    `n` counts the children forked so far (a restarted one gets a new number); `started` runs
    in the parent once the first children are forked.
    """
    count = count or os.cpu_count() or 1
    print(f"Starting {count} processes", flush=True)
    stopping: list[int] = []
    children: set[int] = set()

    def forward(signum: int, frame: FrameType | None) -> None:
        stopping.append(signum)
        for pid in children:
            _kill(pid, signum)

    for signum in _STOP:
        signal.signal(signum, forward)
    forked = 0
    for forked in range(count):
        _spawn_into(children, child, forked)
    started()
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        children.discard(pid)
        if not stopping and os.waitstatus_to_exitcode(status) != 0:
            log.warning("Server process %d exited (%d); starting another", pid, status)
            forked += 1
            _spawn_into(children, child, forked)
    return 0


def _spawn_into(children: set[int], child: Callable[[int], None], number: int) -> None:
    # Signals wait until the new pid is recorded (parent) or the handlers are reset (child).
    signal.pthread_sigmask(signal.SIG_BLOCK, _STOP)
    pid = os.fork()
    if pid:
        children.add(pid)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP)
        return
    for signum in _STOP:
        signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP)
    code = 0
    try:
        child(number)
    except BaseException:
        logging.getLogger("htq.server").exception("Server process failed")
        code = 1
    finally:
        sys.stdout.flush()
        os._exit(code)


def _kill(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)
