"""The TUI's only way to the queue: a small async client for htq's REST API, over httpx.

ApiError            the server answered with an error, or could not be asked
├── Unreachable     no answer at all (connection refused, DNS, timeout...)
└── (status 4xx/5xx carried in `.status`, the API's `message` in `.message`)
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from htq.models import Status

#: Seconds any single call may take, beyond a long-poll's own wait.
CALL_TIMEOUT = 10.0


#: What the table needs of each listed request: no bodies or headers, which may be large.
LIST_FIELDS = "uuid,method,url,status,time,id,result,due,attempts"


class ApiError(Exception):
    """An answer that is not what we asked for; `message` is for a person."""

    def __init__(
        self, message: str, *, status: int | None = None, code: str = "", field: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.field = field  # the request field a 422 is about

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def unauthorized(self) -> bool:
        return self.status == 401

    @property
    def store_down(self) -> bool:
        """The server is up but cannot reach Redis (503)."""
        return self.status == 503


class Unreachable(ApiError):
    """The server did not answer (it is down, restarting, or the URL is wrong)."""


@dataclass(frozen=True, slots=True)
class Page:
    """One page of the listing, newest first; `cursor` asks for the next page (None: last)."""

    items: list[dict[str, Any]]
    cursor: str | None


class ApiClient:
    """htq's REST API, one method per endpoint the TUI uses."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url
        self._last_list: tuple[str, str, Page] | None = None  # (query, ETag, page)
        headers = {"Accept": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.AsyncClient(
            base_url=base_url,
            timeout=CALL_TIMEOUT,
            transport=transport,
            follow_redirects=False,
            headers=headers,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def list(self, status: Status | None, limit: int, cursor: str | None = None) -> Page:
        """One page, newest first. Polled every second, so an unchanged page (same ETag) is
        answered 304 and not sent or decoded again."""
        params: dict[str, str | int] = {
            "status": str(status or "all"),
            "limit": limit,
            "fields": LIST_FIELDS,
        }
        if cursor:
            params["cursor"] = cursor
        query = str(httpx.QueryParams(params))
        headers = {}
        if self._last_list is not None and self._last_list[0] == query:
            headers["If-None-Match"] = self._last_list[1]
        answer = await self._call("GET", "", params=params, headers=headers)
        if answer.status_code == 304 and self._last_list is not None:
            return self._last_list[2]
        items = answer.json()
        if not isinstance(items, list):
            raise ApiError(f"GET / answered {type(items).__name__}, not a list of requests.")
        page = Page(items, _next_cursor(answer))
        etag = answer.headers.get("ETag")
        self._last_list = (query, etag, page) if etag else None
        return page

    async def stats(self) -> dict[str, Any]:
        return _object(await self._call("GET", "stats"))

    async def get(self, uuid: str) -> dict[str, Any]:
        return _object(await self._call("GET", f"{uuid}/"))

    async def response(self, uuid: str, wait: float) -> dict[str, Any] | None:
        """The stored response, or None if the request is still not done after `wait` seconds."""
        answer = await self._call(
            "GET", f"{uuid}/response/", params={"wait": f"{wait:g}"}, timeout=CALL_TIMEOUT + wait
        )
        return None if answer.status_code == 202 else _object(answer)

    async def submit(self, payload: dict[str, Any]) -> str:
        """Queue a request; returns its uuid (from the 303's Location)."""
        answer = await self._call("POST", "", json=payload)
        location = str(answer.headers.get("Location", ""))
        uuid = location.rstrip("/").rsplit("/", 1)[-1]
        if answer.status_code != 303 or not uuid:
            raise ApiError(f"POST / answered {answer.status_code} without a Location.")
        return uuid

    async def cancel(self, uuid: str) -> None:
        await self._call("DELETE", f"{uuid}/")

    async def delete_response(self, uuid: str) -> None:
        await self._call("DELETE", f"{uuid}/response/")

    async def attempts(self, uuid: str) -> builtins.list[dict[str, Any]]:
        """Every attempt to send the request, oldest first."""
        answer = await self._call("GET", f"{uuid}/attempts/")
        items = answer.json()
        if not isinstance(items, list):
            raise ApiError(f"The attempts came as {type(items).__name__}, not a list.")
        return [item for item in items if isinstance(item, dict)]

    async def retry(self, uuid: str) -> None:
        """Queue a finished request again (409: it is not finished)."""
        await self._call("POST", f"{uuid}/retry/")

    async def _call(
        self, method: str, path: str, *, timeout: float = CALL_TIMEOUT, **kwargs: Any
    ) -> httpx.Response:
        try:
            answer = await self._http.request(method, path, timeout=timeout, **kwargs)
        except httpx.TransportError as exc:
            raise Unreachable(_describe(exc)) from exc
        if answer.status_code == 401:
            raise ApiError(
                "The server refused the token given with --token or HTQ_TOKEN."
                if "Authorization" in self._http.headers
                else "The server needs a token: start the TUI with --token or HTQ_TOKEN.",
                status=401,
                code="unauthorized",
            )
        if answer.status_code >= 400:
            raise _error(answer)
        return answer


def _object(answer: httpx.Response) -> dict[str, Any]:
    try:
        body = answer.json()
    except ValueError:
        raise ApiError(f"The server answered {answer.status_code} with no JSON.") from None
    if not isinstance(body, dict):
        raise ApiError(f"The server answered {type(body).__name__}, not a JSON object.")
    return body


def _error(answer: httpx.Response) -> ApiError:
    try:
        body = answer.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        field = body.get("field")
        return ApiError(
            body["message"],
            status=answer.status_code,
            code=str(body.get("error", "")),
            field=field if isinstance(field, str) else None,
        )
    reason = answer.reason_phrase or "error"
    message = f"The server answered {answer.status_code} {reason}."
    return ApiError(message, status=answer.status_code)


def _next_cursor(answer: httpx.Response) -> str | None:
    link = answer.links.get("next")
    if not link or "url" not in link:
        return None
    values = parse_qs(urlsplit(link["url"]).query).get("cursor")
    return values[0] if values else None


def _describe(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return "connection refused" if "refused" in str(exc).lower() else "cannot connect"
    if isinstance(exc, httpx.TimeoutException):
        return "no answer (timed out)"
    return f"connection lost ({type(exc).__name__})"
