"""The example target the tutorial starts (htq/example.py): it survives what clients send."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import httpx
import pytest

from htq.example import ExampleTarget


@pytest.fixture
def example() -> Iterator[ExampleTarget]:
    server = ExampleTarget(("127.0.0.1", 0))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_a_length_that_is_not_a_number_ends_the_connection_not_the_handler(
    example: ExampleTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    port = example.server_address[1]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n0123456789")
        sock.recv(4096)  # whatever comes, the connection ends without a traceback
    assert "Traceback" not in capsys.readouterr().err
    assert httpx.get(f"http://127.0.0.1:{port}/echo", timeout=5).status_code == 200
