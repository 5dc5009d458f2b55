"""The README's Python: every block compiles, and the signing snippet, as written, verifies
what a real worker signs (a signed GET, a JSON body, a text body) and refuses a tampered one."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import WebhookVerificationError

from htq.config import WorkerConfig
from htq.store import Store
from htq.worker import Worker
from tests.support.readme import blocks
from tests.support.store import answer_of, enqueue
from tests.test_signing import new_secret

Handle = Callable[[bytes, dict[str, str]], None]


def python_blocks() -> list[str]:
    return [block.text for block in blocks() if block.language == "python"]


def test_every_python_block_compiles() -> None:
    assert python_blocks(), "the README has Python blocks"
    for text in python_blocks():
        compile(text, "README.md", "exec")


class VerifyingTarget:
    """A target that calls the README's `handle(body, headers)` on each request: 200 when it
    returns, 401 on WebhookVerificationError, 500 on anything else (as a web framework would)."""

    def __init__(self, handle: Handle) -> None:
        self.seen: list[tuple[str, bytes, dict[str, str]]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = dict(self.headers.items())
                owner.seen.append((self.command, body, headers))
                try:
                    handle(body, headers)
                    code = 200
                except WebhookVerificationError:
                    code = 401
                except Exception:
                    code = 500
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_PUT = do_GET

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> VerifyingTarget:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> str:
    secret = new_secret()
    monkeypatch.setenv("HTQ_SIGNING_SECRET", secret)  # as the README's worker and target share
    return secret


@pytest.fixture
def handle(secret: str) -> Handle:
    """The README's snippet, run as written."""
    (snippet,) = [text for text in python_blocks() if "webhook.verify" in text]
    namespace: dict[str, Any] = {}
    exec(compile(snippet, "README.md", "exec"), namespace)
    return namespace["handle"]  # type: ignore[no-any-return]


@pytest.fixture
def verifying(handle: Handle) -> Iterator[VerifyingTarget]:
    with VerifyingTarget(handle) as target:
        yield target


def test_the_signing_snippet_verifies_what_a_worker_signs(
    store: Store, config: WorkerConfig, secret: str, verifying: VerifyingTarget
) -> None:
    sent = {
        "a GET, no body": enqueue(store, url=f"{verifying.url}/get"),
        "a JSON body": enqueue(store, url=f"{verifying.url}/json", data={"order": 42}),
        "a text body": enqueue(
            store,
            url=f"{verifying.url}/text",
            method="PUT",
            data="plain text, not JSON",
            headers={"Content-Type": "text/plain"},
        ),
        "an empty text body": enqueue(store, url=f"{verifying.url}/empty", method="POST", data=""),
    }
    with Worker(replace(config, signing_secrets=(secret,))):
        codes = {what: answer_of(store, uuid)["code"] for what, uuid in sent.items()}
    assert codes == dict.fromkeys(sent, 200)
    assert {method for method, _, _ in verifying.seen} == {"GET", "POST", "PUT"}


def test_the_signing_snippet_refuses_a_tampered_request(
    store: Store, config: WorkerConfig, secret: str, verifying: VerifyingTarget
) -> None:
    uuid = enqueue(store, url=f"{verifying.url}/json", data={"order": 42})
    with Worker(replace(config, signing_secrets=(secret,))):
        assert answer_of(store, uuid)["code"] == 200
    ((_, body, headers),) = verifying.seen
    signed = {k: v for k, v in headers.items() if k.lower().startswith("webhook-")}
    tampered = body.replace(b"42", b"43")
    assert httpx.post(f"{verifying.url}/json", content=tampered, headers=signed).status_code == 401
    assert httpx.post(f"{verifying.url}/json", content=body, headers=signed).status_code == 200
    assert httpx.post(f"{verifying.url}/json", content=body).status_code == 401  # unsigned


def test_another_htqs_signature_is_refused(
    store: Store, config: WorkerConfig, secret: str, verifying: VerifyingTarget
) -> None:
    uuid = enqueue(store, url=f"{verifying.url}/get")
    with Worker(replace(config, signing_secrets=(new_secret(),))):
        assert answer_of(store, uuid)["code"] == 401
