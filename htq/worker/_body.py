"""Reading a response body within a cap: as received, or decoded from one gzip or deflate
layer with the decoder's output held to the cap (a small body can decode to gigabytes)."""

from __future__ import annotations

import zlib
from collections.abc import Mapping

import httpx

_STEP = 1 << 16  # bytes decoded at a time, at most
# What htq decodes, and its zlib window: gzip's header, or zlib's (deflate as RFC 9110 says).
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


class Undecodable(Exception):
    """A body htq does not decode: stacked or unknown encodings, or a corrupt stream."""


class _Inflater:
    """One gzip or deflate stream, decoded a step at a time: the output of one call to zlib
    is never more than asked for (a network chunk can decode to gigabytes)."""

    def __init__(self, coding: str) -> None:
        self._coding = coding
        self._zlib = zlib.decompressobj(_WBITS[coding])
        self._started = False
        self._input = b""  # received, not yet decoded
        self._pending = False  # zlib may hold output back although all input went in

    @property
    def ended(self) -> bool:
        return self._zlib.eof

    def feed(self, data: bytes) -> None:
        self._input = data

    def read(self, limit: int) -> bytes:
        """Up to `limit` bytes decoded from what was fed; b"" when it needs more."""
        if not self._input and not self._pending:
            return b""
        try:
            out = self._zlib.decompress(self._input, limit)
        except zlib.error as exc:
            if self._coding != "deflate" or self._started:
                raise Undecodable(f"Could not decode the {self._coding} body: {exc}") from exc
            # Some servers send deflate without zlib's header (as httpx, try raw once).
            self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
            self._started = True
            return self.read(limit)
        self._started = True
        self._input = self._zlib.unconsumed_tail
        self._pending = len(out) == limit and not self._zlib.eof
        return out


def codings(response: httpx.Response) -> list[str]:
    """The response's content codings, outermost last, `identity` left out."""
    listed = response.headers.get_list("content-encoding", split_commas=True)
    return [c for c in (c.strip().lower() for c in listed) if c and c != "identity"]


def read_body(
    response: httpx.Response, max_bytes: int, sent: Mapping[str, str] | None = None
) -> tuple[bytearray, bool, bool]:
    """The body cut at `max_bytes` (decoded if encoded once with gzip or deflate); True if it
    was cut; True if it is still encoded (a coding the request asked for in the
    Accept-Encoding of its `sent` headers, that htq does not decode: kept as received).

    Raises Undecodable for other codings, once a body comes. Memory: the cap, plus a step.
    """
    found = codings(response)
    if not found:
        body, truncated = read_raw(response, max_bytes)
        return body, truncated, False
    if len(found) == 1 and found[0] in _WBITS:
        body, truncated = _inflate(response, _Inflater(found[0]), max_bytes)
        return body, truncated, False
    if len(found) == 1 and found[0] in _accepted(sent or {}):
        body, truncated = read_raw(response, max_bytes)
        return body, truncated, True
    for chunk in response.iter_raw():
        if chunk:
            shown = ", ".join(found)
            raise Undecodable(
                f"Refused: the response's Content-Encoding is {shown!r}; htq decodes one "
                "gzip or deflate layer, and keeps as received only an encoding the request "
                "asked for in its own Accept-Encoding."
            )
    return bytearray(), False, False


def read_raw(response: httpx.Response, max_bytes: int) -> tuple[bytearray, bool]:
    """The body as received (not decoded), read until `max_bytes`; True if there was more."""
    body = bytearray()
    for chunk in response.iter_raw():
        if len(body) + len(chunk) > max_bytes:
            body += memoryview(chunk)[: max_bytes - len(body)]
            return body, True
        body += chunk
    return body, False


def _inflate(
    response: httpx.Response, inflater: _Inflater, max_bytes: int
) -> tuple[bytearray, bool]:
    body = bytearray()
    for chunk in response.iter_raw():
        inflater.feed(chunk)
        # One byte past the cap tells a cut body from one that ends there.
        while out := inflater.read(min(_STEP, max_bytes + 1 - len(body))):
            body += out
            if len(body) > max_bytes:
                del body[max_bytes:]
                return body, True
        if inflater.ended:  # anything after the end of the stream is not the body
            break
    return body, False


def _accepted(headers: Mapping[str, str]) -> set[str]:
    """The codings an Accept-Encoding among `headers` names (none if there is none)."""
    value = next((v for k, v in headers.items() if k.lower() == "accept-encoding"), "")
    return {c.split(";")[0].strip().lower() for c in value.split(",")} - {""}
