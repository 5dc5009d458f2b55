"""One sender thread's HTTP transport: httpx's public transport API over httpcore's pools.

Like httpx's own HTTPTransport, but with htq's network backend (sockets the thread's InFlight can
interrupt and hold to the request's deadline), so nothing private of httpx is touched.
Connections are kept alive for the next request to the same host; nothing else is kept (no
cookies: requests go to the transport, never through a Client). A URL's credentials
(`user:password@`) are sent as Basic authorization, as a Client would send them.
"""

from __future__ import annotations

import base64
import contextlib
import urllib.request
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import cast

import httpcore
import httpx

from htq.outbound import Outbound, Refused
from htq.worker._backend import InterruptibleBackend
from htq.worker._in_flight import InFlight
from htq.worker._resolver import Resolver

# httpcore's errors as httpx's, most specific first (what httpx's own transport does).
_ERRORS: tuple[tuple[type[Exception], type[httpx.HTTPError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextlib.contextmanager
def _as_httpx_errors() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for core, mapped in _ERRORS:
            if isinstance(exc, core):
                raise mapped(str(exc)) from exc
        raise


class InterruptibleTransport(httpx.BaseTransport):
    """Sends requests on connections whose sockets belong to `in_flight`.

    With `trust_env`, the proxy variables (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, NO_PROXY) and
    SSL_CERT_FILE / SSL_CERT_DIR are honoured, as httpx does; without, none of them.

    `outbound` guards every request: its method and host name here, every address the name
    resolves to in the backend (which connects only to an address it checked). Through a
    proxy, the proxy resolves the name: only the name and a literal address are checked.
    `resolver` looks names up (the worker process's shared one unless given).
    """

    def __init__(
        self,
        in_flight: InFlight,
        *,
        trust_env: bool,
        outbound: Outbound,
        resolver: Resolver | None = None,
    ) -> None:
        self.in_flight = in_flight
        self._ssl_context = httpx.create_ssl_context(trust_env=trust_env)
        self._outbound = outbound
        self._backend = InterruptibleBackend(in_flight, outbound, resolver)
        self._through_proxy = InterruptibleBackend(in_flight, None, resolver)
        self._direct = self._pool(None)
        self._proxies = urllib.request.getproxies() if trust_env else {}
        self._proxied: dict[str, httpcore.ConnectionPool] = {}

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        pool = self._pool_for(url)
        try:
            self._outbound.check_method(request.method)
            if pool is self._direct:
                self._outbound.check_name(url.host)
            else:
                self._outbound.check_literal(str(url))
        except Refused as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        if url.userinfo and "authorization" not in request.headers:
            request.headers["Authorization"] = _basic(url.username, url.password)
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
            ),
            headers=request.headers.raw,
            content=request.stream,  # a SyncByteStream: bytes chunks
            extensions=request.extensions,
        )
        with _as_httpx_errors():
            response = pool.handle_request(core)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_Body(cast("Iterable[bytes]", response.stream)),  # a sync pool's is sync
            extensions=response.extensions,
        )

    def close(self) -> None:
        for pool in [self._direct, *self._proxied.values()]:
            pool.close()

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        self.close()

    def _pool_for(self, url: httpx.URL) -> httpcore.ConnectionPool:
        proxy = self._proxies.get(url.scheme) or self._proxies.get("all")
        if not proxy or urllib.request.proxy_bypass(url.host):
            return self._direct
        if proxy not in self._proxied:
            self._proxied[proxy] = self._pool(proxy)
        return self._proxied[proxy]

    def _pool(self, proxy: str | None) -> httpcore.ConnectionPool:
        return httpcore.ConnectionPool(
            ssl_context=self._ssl_context,
            proxy=httpcore.Proxy(proxy) if proxy else None,
            # the proxy is the worker's own choice: its address is not the guard's to judge
            network_backend=self._through_proxy if proxy else self._backend,
        )


def _basic(username: str, password: str) -> str:
    """A URL's credentials (`user:password@`), sent as httpx.Client would send them: Basic."""
    pair = f"{username}:{password}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


class _Body(httpx.SyncByteStream):
    """A response body as httpx reads it, with httpcore's errors as httpx's."""

    def __init__(self, stream: Iterable[bytes]) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        with _as_httpx_errors():
            yield from self._stream

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()
