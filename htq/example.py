"""A small target to try htq with, offline: `python -m htq.example [--port 5001]` (stdlib only).

Endpoints (the README's tutorial uses each):
    /slow?seconds=N   answers after N seconds (default 30); notices a client that leaves
    /flaky?fails=N    503 the first N times (default 2) for one request, then 200; a request is
                      told apart by its `Htq-Request-Id` header (or `?key=`)
    /echo             the request as JSON: method, path, headers and body (as text)
    /callback         prints the callback it receives (htq's POST of a response: its uuid,
                      status, code...), answers 204
    DELETE <any>      204, printed: the cancel htq sends when a request is canceled
"""

from __future__ import annotations

import argparse
import json
import select
import socket
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

DEFAULT_PORT = 5001
MAX_BODY = 1 << 20  # an example target: bodies past 1 MiB are not read
MAX_SLOW = 3600.0
CALLBACK_FIELDS = ("uuid", "status", "code", "reason", "message")


class ExampleTarget(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, _Handler)
        self.failures: Counter[str] = Counter()
        self.lock = threading.Lock()

    def fail_again(self, key: str, fails: int) -> bool:
        """Whether this request to /flaky fails: the first `fails` times for one key do."""
        with self.lock:
            self.failures[key] += 1
            return self.failures[key] <= fails


class _Handler(BaseHTTPRequestHandler):
    server: ExampleTarget
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line of our own per request instead (see `_say`)

    def do_GET(self) -> None:
        self._route()

    do_POST = do_PUT = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    def do_DELETE(self) -> None:
        body = self._body()
        if urlsplit(self.path).path == "/echo":
            self._echo(body)
            return
        attempt = self.headers.get("Htq-Attempt")
        said = f" (attempt {attempt})" if attempt else ""
        self._say(f"DELETE {self.path}{said}: the request was canceled, stop its work")
        self._send(204, b"")

    def _route(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        body = self._body()
        if url.path == "/slow":
            self._slow(_number(query.get("seconds"), 30.0))
        elif url.path == "/flaky":
            self._flaky(query)
        elif url.path == "/echo":
            self._echo(body)
        elif url.path == "/callback":
            self._callback(body)
        else:
            self._json({"error": "not_found", "endpoints": ["/slow", "/flaky", "/echo"]}, 404)

    def _slow(self, seconds: float) -> None:
        self._say(f"{self.command} {self.path}: answering in {seconds:g} s")
        if self._client_left_within(seconds):
            self._say(f"{self.command} {self.path}: the client went away")
            self.close_connection = True
            return
        self._json({"slept": seconds})

    def _flaky(self, query: dict[str, str]) -> None:
        key = query.get("key") or self.headers.get("Htq-Request-Id") or "-"
        fails = int(_number(query.get("fails"), 2))
        attempt = self.headers.get("Htq-Attempt", "?")
        if self.server.fail_again(key, fails):
            self._say(f"{self.command} {self.path}: attempt {attempt} fails (503)")
            self._json({"error": "try again"}, 503)
            return
        self._say(f"{self.command} {self.path}: attempt {attempt} succeeds (200)")
        self._json({"attempt": attempt})

    def _echo(self, body: bytes) -> None:
        self._say(f"{self.command} {self.path}")
        self._json(
            {
                "method": self.command,
                "path": self.path,
                "headers": dict(self.headers.items()),
                "body": body.decode("utf-8", "replace"),
            }
        )

    def _callback(self, body: bytes) -> None:
        try:
            got = json.loads(body)
        except ValueError:
            got = None
        if isinstance(got, dict):  # htq's response JSON: its headers and body would be long
            shown = json.dumps({k: got[k] for k in CALLBACK_FIELDS if k in got})
        else:
            shown = repr(body[:200])
        self._say(f"{self.command} {self.path}: {shown}")
        self._send(204, b"")

    def _body(self) -> bytes:
        declared = self.headers.get("Content-Length") or "0"
        length = int(declared) if declared.isascii() and declared.isdigit() else MAX_BODY + 1
        if length > MAX_BODY:  # too large, or not a length: not read, and the connection ends
            self.close_connection = True
            return b""
        return self.rfile.read(length) if length > 0 else b""

    def _client_left_within(self, seconds: float) -> bool:
        """Wait up to `seconds`; True as soon as the client closes its connection."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            readable, _, _ = select.select([self.connection], [], [], min(remaining, 0.1))
            if readable:
                if not self.connection.recv(1, socket.MSG_PEEK):  # b"": the client closed
                    return True
                time.sleep(min(remaining, 0.1))  # bytes it sent unread: readable until then
        return False

    def _json(self, payload: Any, code: int = 200) -> None:
        self._send(code, json.dumps(payload).encode(), "application/json")

    def _send(self, code: int, body: bytes, content_type: str | None = None) -> None:
        self.send_response(code)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _say(self, line: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)


def _number(value: str | None, default: float) -> float:
    try:
        number = float(value) if value is not None else default
    except ValueError:
        return default
    return min(max(number, 0.0), MAX_SLOW) if number == number else default


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m htq.example", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    options = parser.parse_args(argv)
    try:
        server = ExampleTarget((options.host, options.port))
    except OSError as exc:
        print(f"htq.example: cannot listen on port {options.port}: {exc.strerror}", file=sys.stderr)
        return 1
    print(
        f"Example target on http://{options.host}:{server.server_port}/ (Ctrl-C stops it)",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
