"""A fast HTTP/1.1 target on loopback, in its own process, that timestamps what it sees.

    python -m bench.target --port 0     # prints "ready <port>" once listening

tests/support/target.py is the tests' target: a thread per connection, disconnects noticed by
polling every 50 ms. A benchmark needs one that outruns a worker and notices a disconnect the moment
it happens, so this one is an asyncio protocol: `connection_lost` fires on the client's FIN.

Every request (any method, any path) answers 200 `{"ok": true}` (DELETE: 204). Its query may
carry `id=<name>`, which records the arrival time (wall clock, `time.time()`, comparable with
other processes' clocks on this machine) under that name, and `delay=<seconds>`, which holds
the answer that long; a client that goes away meanwhile has its disconnect time recorded.

    GET /_wait?id=<name>&event=arrival|disconnect|delete&timeout=<s>
                      200 {"time": <when>} once that event happened, 404 if not within timeout
    GET /_log         200 {"arrival": {...}, "disconnect": {...}, "delete": {...}, "count": n}
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time
from collections import defaultdict
from urllib.parse import parse_qsl, urlsplit

EVENTS = ("arrival", "disconnect", "delete")
_OK = b'{"ok": true}'
_MAX_WAIT = 30.0


class Recorder:
    """Event times by name, and futures for whoever waits for one."""

    def __init__(self) -> None:
        self.times: dict[str, dict[str, float]] = {event: {} for event in EVENTS}
        self.count = 0
        self._waiting: dict[tuple[str, str], list[asyncio.Future[float]]] = defaultdict(list)

    def record(self, event: str, name: str) -> None:
        when = time.time()
        self.times[event].setdefault(name, when)
        for future in self._waiting.pop((event, name), []):
            if not future.done():
                future.set_result(when)

    async def wait(self, event: str, name: str, timeout: float) -> float | None:
        if name in self.times[event]:
            return self.times[event][name]
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._waiting[(event, name)].append(future)
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return None


class Connection(asyncio.Protocol):
    """One client connection: requests answered in order, one at a time (no pipelining)."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.busy = False
        self.closed = False
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._serve()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.lost.done():
            self.lost.set_result(None)

    def _serve(self) -> None:
        while not self.busy and not self.closed:
            request = self._take_request()
            if request is None:
                return
            method, target = request
            if target.startswith("/_") or "?" in target:
                self.busy = True
                task = asyncio.ensure_future(self._slow(method, target))
                task.add_done_callback(self._slow_done)
                return
            self._answer(204 if method == "DELETE" else 200)

    def _slow_done(self, task: asyncio.Future[None]) -> None:
        self.busy = False
        if not task.cancelled() and task.exception() is not None and self.transport:
            self.transport.close()
        self._serve()

    def _take_request(self) -> tuple[str, str] | None:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = self.buffer[:end].decode("latin-1")
        length = 0
        for line in head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        if len(self.buffer) < end + 4 + length:
            return None
        self.buffer = self.buffer[end + 4 + length :]
        method, target, _ = head.split(" ", 2)
        return method, target

    async def _slow(self, method: str, target: str) -> None:
        parts = urlsplit(target)
        query = dict(parse_qsl(parts.query))
        if parts.path == "/_wait":
            await self._wait(query)
            return
        if parts.path == "/_log":
            log = {**self.recorder.times, "count": self.recorder.count}
            self._answer(200, json.dumps(log).encode())
            return
        self.recorder.count += 1
        name = query.get("id")
        if name is not None:
            self.recorder.record("delete" if method == "DELETE" else "arrival", name)
        delay = float(query.get("delay", 0))
        if delay > 0 and method != "DELETE":
            done, _ = await asyncio.wait([self.lost], timeout=delay)
            if done:
                if name is not None:
                    self.recorder.record("disconnect", name)
                return
        self._answer(204 if method == "DELETE" else 200)

    async def _wait(self, query: dict[str, str]) -> None:
        timeout = min(float(query.get("timeout", 5)), _MAX_WAIT)
        when = await self.recorder.wait(query.get("event", "arrival"), query["id"], timeout)
        if when is None:
            self._answer(404, b'{"time": null}')
        else:
            self._answer(200, json.dumps({"time": when}).encode())

    def _answer(self, code: int, body: bytes = _OK) -> None:
        if self.transport is None or self.closed:
            return
        if code == 204:
            self.transport.write(b"HTTP/1.1 204 No Content\r\n\r\n")
            return
        reason = b"OK" if code == 200 else b"Not Found"
        self.transport.write(
            b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (code, reason, len(body), body)
        )


async def serve(port: int) -> None:
    recorder = Recorder()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Connection(recorder), "127.0.0.1", port, backlog=1024)
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    print(f"ready {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0)
    asyncio.run(serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
