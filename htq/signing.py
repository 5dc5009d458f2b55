"""Standard Webhooks signatures (https://www.standardwebhooks.com/) on every request sent.

With `--signing-secret whsec_<base64 key>`, each request (and the DELETE sent on cancel)
carries `webhook-id` (the request's uuid), `webhook-timestamp` (seconds since the epoch) and
`webhook-signature`: `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`, one per secret
(several while a secret is rotated), so a target can prove the request came from this htq and
is not a replay of an old one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Sequence

PREFIX = "whsec_"
SIGNATURE_HEADERS = frozenset({"webhook-id", "webhook-timestamp", "webhook-signature"})


def decode_secret(secret: str) -> bytes:
    """The key of a `whsec_...` secret; ValueError if it is not one."""
    if not secret.startswith(PREFIX):
        raise ValueError(f"a signing secret starts with {PREFIX}")
    try:
        key = base64.b64decode(secret[len(PREFIX) :], validate=True)
    except ValueError:
        raise ValueError(f"a signing secret is {PREFIX} and then base64") from None
    if not 24 <= len(key) <= 64:
        raise ValueError(f"a signing secret's key is 24 to 64 bytes, not {len(key)}")
    return key


class Signer:
    """Signs request bodies with every key given (the first is the current one)."""

    def __init__(self, secrets: Sequence[str]) -> None:
        self._keys = [decode_secret(secret) for secret in secrets]

    def headers(
        self, message_id: str, body: bytes | None, now: float | None = None
    ) -> dict[str, str]:
        timestamp = str(int(time.time() if now is None else now))
        signed = b".".join((message_id.encode(), timestamp.encode(), body or b""))
        signatures = " ".join(
            "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
            for key in self._keys
        )
        return {
            "webhook-id": message_id,
            "webhook-timestamp": timestamp,
            "webhook-signature": signatures,
        }

    @staticmethod
    def sign(
        signer: Signer | None, message_id: str, headers: dict[str, str], body: bytes | None
    ) -> dict[str, str]:
        """`headers` with the signature's (any of the caller's own of those names dropped)."""
        if signer is None:
            return headers
        kept = {
            name: value for name, value in headers.items() if name.lower() not in SIGNATURE_HEADERS
        }
        return {**kept, **signer.headers(message_id, body)}
