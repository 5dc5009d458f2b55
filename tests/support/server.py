"""The real Tornado server on a loopback port, in a thread of the test process."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from htq.config import ServerConfig, StoreConfig
from htq.server import bind, run_server


class ServerThread:
    """The real Tornado server on a loopback port, run in a thread of the test process."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.sockets = bind(config)
        port = self.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="htq-test-server", daemon=True)
        self._thread.start()
        assert self._ready.wait(10), "the server did not start"

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self._loop.call_soon(self._ready.set)
            await run_server(self.config, self.sockets, self._stop)

        asyncio.run(main())

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        assert not self._thread.is_alive(), "the server did not stop within 10 s"


def server_config_for(store_config: StoreConfig, **overrides: Any) -> ServerConfig:
    return ServerConfig(host="127.0.0.1", port=0, store=store_config, **overrides)
