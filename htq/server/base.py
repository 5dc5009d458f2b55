"""What every handler shares: JSON answers (errors included), the guard's checks, links,
query numbers."""

from __future__ import annotations

import json
import re
from typing import Any

import tornado.web

from htq.errors import (
    ClientError,
    HtqError,
    NotFound,
    StoreUnavailable,
    Unauthorized,
)
from htq.models import (
    is_uuid,
)
from htq.server.guard import ALLOW_HEADERS, ALLOW_METHODS, Guard
from htq.store import REDIS_DOWN, AsyncStore

_REASONS = {404: "not_found", 405: "method_not_allowed", 413: "too_large", 400: "bad_request"}
# A query number: plain ASCII decimals (float() would also take "1_0", "nan" or
# digits of other scripts).
_NUMBER = re.compile(r"[0-9]{1,15}(\.[0-9]{1,15})?")
_WHOLE = re.compile(r"[0-9]{1,15}")


class BaseHandler(tornado.web.RequestHandler):
    """Every handler answers JSON, including its errors; Redis down becomes 503."""

    @property
    def store(self) -> AsyncStore:
        store: AsyncStore = self.settings["store"]
        return store

    #: Answered without a token (`/healthz`, for load balancers and probes).
    public = False

    def set_default_headers(self) -> None:
        # Here rather than in prepare: an error answer (clear() calls this again) keeps them,
        # so a page that may call the API can read why it was refused.
        self.set_header("Content-Type", "application/json")
        origin = self.request.headers.get("Origin")
        if origin is not None and self.settings["guard"].origin_allowed(origin):
            self.set_header("Access-Control-Allow-Origin", origin)
            self.set_header(
                "Access-Control-Expose-Headers", "Location, Link, Etag, Idempotent-Replayed"
            )
            self.set_header("Vary", "Origin")

    def prepare(self) -> None:
        refusal = self.guard()
        if refusal is not None:
            raise refusal

    def guard(self) -> HtqError | None:
        """Why this call is refused: a Host this server does not answer to, an Origin that may
        not call it, or no valid token (a CORS preflight needs none: browsers send none)."""
        guard: Guard = self.settings["guard"]
        headers = self.request.headers
        try:
            guard.check_host(self.request.host)
            guard.check_origin(headers.get("Origin"))
            if not self.public and self.request.method != "OPTIONS":
                guard.tokens.check(headers.get("Authorization"))
        except HtqError as refusal:
            return refusal
        return None

    async def head(self, *args: str) -> None:
        """As GET, without the body (RFC 9110): Tornado sends the headers GET would, its
        `Content-Length` included, and drops the body. A resource without GET answers 405."""
        answered = self.get(*args)
        if answered is not None:
            await answered

    def options(self, *args: str) -> None:
        """A CORS preflight (its Origin was checked in prepare)."""
        self.set_header("Access-Control-Allow-Methods", ALLOW_METHODS)
        self.set_header("Access-Control-Allow-Headers", ALLOW_HEADERS)
        self.set_header("Access-Control-Max-Age", "600")
        self.no_content()

    def compute_etag(self) -> str | None:
        return None  # live resources: a hash of every body would cost time and save nothing

    def base_url(self) -> str:
        host = self.request.host
        if self.settings.get("xheaders"):
            host = self.request.headers.get("X-Forwarded-Host", host).split(",")[0].strip()
        return f"{self.request.protocol}://{host}/"

    def request_url(self, uuid: str, *tail: str) -> str:
        return self.base_url() + "/".join((uuid, *tail)) + "/"

    def links(self, uuid: str) -> dict[str, str]:
        return {  # the spec's three as it shows them, then ours
            "response": self.request_url(uuid, "response"),
            "self": self.request_url(uuid),
            "status": self.request_url(uuid, "status"),
            "attempts": self.request_url(uuid, "attempts"),
        }

    def set_links(self, rels: dict[str, str]) -> None:
        """A Link header, relations in the order given (the spec's order, then ours)."""
        self.set_header("Link", ", ".join(f'<{url}>; rel="{rel}"' for rel, url in rels.items()))

    def write_json(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(payload, indent=4) + "\n")

    def write_raw_json(self, body: bytes | str) -> None:
        self.finish(body)

    def no_content(self, status: int = 204) -> None:
        self.clear_header("Content-Type")
        self.set_status(status)
        self.finish()

    def query(self, name: str) -> str | None:
        """A query parameter as sent (Tornado's own reading strips blanks and control
        characters: `limit=%205` would pass as `5`); given more than once, refused."""
        values = self.request.query_arguments.get(name)
        if values is None:
            return None
        if len(values) > 1:
            raise ClientError(f"`{name}` is given {len(values)} times; give it once.", name)
        try:
            return values[0].decode()
        except UnicodeDecodeError:
            raise ClientError(f"`{name}` is not UTF-8 text.", name) from None

    def query_number(
        self, name: str, default: float | None, low: float, high: float, *, whole: bool = False
    ) -> float | None:
        raw = self.query(name)
        if raw is None or raw == "":
            return default
        if not (_WHOLE if whole else _NUMBER).fullmatch(raw):
            kind = "a whole number in plain digits" if whole else "a number in plain digits"
            raise ClientError(f"`{name}` must be {kind}, not {raw!r}.", name)
        value = float(raw)
        if not low <= value <= high:
            raise ClientError(f"`{name}` must be between {low:g} and {high:g}, not {raw}.", name)
        return value

    def known_uuid(self, uuid: str) -> str:
        if not is_uuid(uuid):
            raise NotFound(f"{uuid!r} is not a request id; ids look like the uuid in Location.")
        return uuid

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = _as_htq_error(kwargs.get("exc_info"), status_code, self._reason)
        self.clear()
        self.set_header("Content-Type", "application/json")
        self.set_status(error.status_code)
        if isinstance(error, Unauthorized):
            self.set_header("WWW-Authenticate", error.challenge)
        if error.status_code == 405:  # RFC 9110: say which methods are
            self.set_header("Allow", ", ".join(self.allowed_methods()))
        self.finish(json.dumps(error.to_json()) + "\n")

    @classmethod
    def allowed_methods(cls) -> list[str]:
        """The methods this resource answers (those its class implements)."""
        base = tornado.web.RequestHandler
        implemented = [
            method
            for method in ("GET", "POST", "DELETE", "OPTIONS")
            if getattr(cls, method.lower()) is not getattr(base, method.lower())
        ]
        if "GET" in implemented:
            implemented.insert(1, "HEAD")
        return implemented

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, HtqError):
            return
        if isinstance(value, REDIS_DOWN):
            return  # the store logs an outage once as it starts and once as it ends
        super().log_exception(typ, value, tb)


def _as_htq_error(exc_info: Any, status_code: int, reason: str) -> HtqError:
    exc = exc_info[1] if exc_info else None
    if isinstance(exc, HtqError):
        return exc
    if isinstance(exc, REDIS_DOWN):
        cause = str(exc).rstrip(".")
        return StoreUnavailable(f"The store (Redis) cannot be reached: {cause}. Try again shortly.")
    error = HtqError(reason or "Internal error.")
    if isinstance(exc, tornado.web.HTTPError) and exc.log_message:
        error.message = exc.log_message % exc.args if exc.args else exc.log_message
    error.status_code = status_code
    error.code = _REASONS.get(status_code, "internal" if status_code >= 500 else "bad_request")
    if status_code == 405:
        error.message = "This method is not allowed on this resource."
    return error
