"""Signed requests: with --signing-secret, a target verifies each request with the
`standardwebhooks` package, exactly as the README shows."""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from htq.config import WorkerConfig
from htq.models import Status
from htq.signing import Signer
from htq.store import Store
from htq.worker import Worker
from tests.support.processes import htq
from tests.support.store import done, enqueue
from tests.support.target import Recorded, Target


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


SECRET = new_secret()


def verify(secret: str, request: Recorded) -> object:
    """What the README's target does."""
    return Webhook(secret).verify(request.body, request.headers)


def test_a_target_verifies_every_request(
    store: Store, target: Target, config: WorkerConfig
) -> None:
    data = {"order": 42, "note": "café"}
    post = enqueue(store, url=f"{target.url}/ip", data=data)
    get = enqueue(store, url=f"{target.url}/ip")
    with Worker(replace(config, signing_secrets=(SECRET,))):
        assert done(store, post) is Status.SUCCESS and done(store, get) is Status.SUCCESS
    first, second = target.requests
    assert verify(SECRET, first) == data
    assert first.headers["webhook-id"] == post
    assert abs(int(first.headers["webhook-timestamp"]) - time.time()) < 60
    Webhook(SECRET).verify(second.body, second.headers, json_parse=False)
    with pytest.raises(WebhookVerificationError):
        verify(new_secret(), first)  # another secret does not verify
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(first.body + b" ", first.headers)  # nor another body


def test_unsigned_without_a_secret(store: Store, target: Target, worker: Worker) -> None:
    uuid = enqueue(store, url=f"{target.url}/ip", headers={"webhook-id": "mine"})
    assert done(store, uuid) is Status.SUCCESS
    (request,) = target.requests
    assert request.headers["webhook-id"] == "mine" and "webhook-signature" not in request.headers


def test_the_callers_own_signature_headers_are_replaced(
    store: Store, target: Target, config: WorkerConfig
) -> None:
    forged = {"Webhook-Id": "forged", "webhook-signature": "v1,Zm9yZ2Vk"}
    uuid = enqueue(store, url=f"{target.url}/ip", headers=forged)
    with Worker(replace(config, signing_secrets=(SECRET,))):
        assert done(store, uuid) is Status.SUCCESS
    (request,) = target.requests
    assert request.headers["webhook-id"] == uuid
    Webhook(SECRET).verify(request.body, request.headers, json_parse=False)


def test_while_a_secret_rotates_both_verify(
    store: Store, target: Target, config: WorkerConfig
) -> None:
    old, new = new_secret(), new_secret()
    uuid = enqueue(store, url=f"{target.url}/ip", data="x")
    with Worker(replace(config, signing_secrets=(new, old))):
        assert done(store, uuid) is Status.SUCCESS
    (request,) = target.requests
    Webhook(old).verify(request.body, request.headers, json_parse=False)
    Webhook(new).verify(request.body, request.headers, json_parse=False)


def test_the_cancel_delete_is_signed(store: Store, target: Target, config: WorkerConfig) -> None:
    with Worker(replace(config, signing_secrets=(SECRET,))):
        uuid = enqueue(store, url=f"{target.url}/delay/30")
        assert target.wait_for_request("/delay/30", 5) is not None
        store.cancel(uuid)
        delete = target.wait_for_delete("/delay/30", 5)
    assert delete is not None and delete.headers["webhook-id"] == uuid
    Webhook(SECRET).verify(delete.body, delete.headers, json_parse=False)


def test_signatures_match_the_reference_implementation() -> None:
    """Byte for byte what standardwebhooks signs, for a fixed time."""
    body = json.dumps({"a": 1}).encode()
    headers = Signer([SECRET]).headers("msg_1", body, now=1_700_000_000)
    when = datetime.fromtimestamp(1_700_000_000, tz=UTC)
    expected = Webhook(SECRET).sign("msg_1", when, body.decode())
    assert headers["webhook-signature"] == expected


@pytest.mark.parametrize(
    ("secret", "says"),
    [
        ("plainpassword", "starts with whsec_"),
        ("whsec_!!!", "base64"),
        ("whsec_" + base64.b64encode(b"short").decode(), "24 to 64 bytes"),
    ],
)
def test_a_bad_secret_is_one_clear_line(secret: str, says: str) -> None:
    result = htq("worker", "--signing-secret", secret)
    assert result.returncode == 2 and says in result.stderr
    assert secret not in result.stderr.replace(f"--signing-secret {secret}", "")
    assert "Traceback" not in result.stderr
