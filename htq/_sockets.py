"""Kernel timeouts for blocking sockets (SO_RCVTIMEO / SO_SNDTIMEO), shared by the worker's
HTTP streams and its Redis links.

A Python socket with a timeout polls before every send and receive, and `settimeout` switches
its blocking mode each time: releases of the GIL that ten threads in one process pay for in
hand-offs. A blocking socket with a kernel timeout makes the one system call.
"""

from __future__ import annotations

import contextlib
import resource
import socket
import struct


def timeval(seconds: float | None) -> bytes:
    """A struct timeval for SO_RCVTIMEO/SO_SNDTIMEO; None: no bound.

    Zero means "no bound" to the kernel, so a bound rounds up to at least a microsecond.
    """
    micros = 0 if seconds is None else max(int(seconds * 1_000_000), 1)
    return struct.pack("@ll", *divmod(micros, 1_000_000))


def bound(sock: socket.socket, option: int, seconds: float | None) -> None:
    """Hold the next blocking receive (SO_RCVTIMEO) or send (SO_SNDTIMEO) on `sock` to
    `seconds`; a timed-out call raises BlockingIOError."""
    sock.setsockopt(socket.SOL_SOCKET, option, timeval(seconds))


def raise_descriptor_limit() -> None:
    """Raise this process's soft limit of open descriptors to its hard limit, as Go's runtime
    does: a server's connections and a worker's kept-alive targets need them, and the soft
    limit (often 1,024) is a default nobody chose. Where it cannot be raised, it stays."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    most = hard if hard != resource.RLIM_INFINITY else 1 << 20  # Linux's nr_open default
    if soft != resource.RLIM_INFINITY and soft < most:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (most, hard))
