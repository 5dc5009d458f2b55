"""Reading a response body within a cap: as received, or decoded from one gzip or deflate
layer with the decoder's output held to the cap (a small body can decode to gigabytes)."""

from __future__ import annotations

import zlib
from collections.abc import Collection

import httpx

# What htq decodes, and its zlib window: gzip's header, or zlib's (deflate as RFC 9110 says).
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


class Undecodable(Exception):
    """A body htq does not decode: stacked or unknown encodings, or a corrupt stream."""


class _Inflater:
    """One gzip or deflate stream, decoded at most `limit` bytes at a time."""

    def __init__(self, coding: str) -> None:
        self._coding = coding
        self._zlib = zlib.decompressobj(_WBITS[coding])
        self._started = False

    @property
    def ended(self) -> bool:
        return self._zlib.eof

    def decode(self, data: bytes, limit: int) -> bytes:
        """Up to `limit` bytes decoded from `data`; input beyond it is left undecoded."""
        if not data:
            return b""
        try:
            out = self._zlib.decompress(data, limit)
        except zlib.error as exc:
            if self._coding != "deflate" or self._started:
                raise Undecodable(f"Could not decode the {self._coding} body: {exc}") from exc
            # Some servers send deflate without zlib's header (as httpx, try raw once).
            self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
            self._started = True
            return self.decode(data, limit)
        self._started = True
        return out


def codings(response: httpx.Response) -> list[str]:
    """The response's content codings, outermost last, `identity` left out."""
    listed = response.headers.get_list("content-encoding", split_commas=True)
    return [c for c in (c.strip().lower() for c in listed) if c and c != "identity"]


def read_body(
    response: httpx.Response, max_bytes: int, asked: Collection[str] = ()
) -> tuple[bytes, bool, bool]:
    """The body cut at `max_bytes` (decoded if encoded once with gzip or deflate); True if it
    was cut; True if it is still encoded (a coding in `asked`, the request's own
    Accept-Encoding, that htq does not decode: kept as received).

    Raises Undecodable for other codings, once a body comes. Memory: the cap, plus a chunk.
    """
    found = codings(response)
    if not found:
        body, truncated = read_raw(response, max_bytes)
        return body, truncated, False
    if len(found) == 1 and found[0] in _WBITS:
        body, truncated = _inflate(response, _Inflater(found[0]), max_bytes)
        return body, truncated, False
    if len(found) == 1 and found[0] in asked:
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
    return b"", False, False


def read_raw(response: httpx.Response, max_bytes: int) -> tuple[bytes, bool]:
    """The body as received (not decoded), read until `max_bytes`; True if there was more."""
    body = bytearray()
    for chunk in response.iter_raw():
        if len(body) + len(chunk) > max_bytes:
            body += chunk[: max_bytes - len(body)]
            return bytes(body), True
        body += chunk
    return bytes(body), False


def _inflate(response: httpx.Response, inflater: _Inflater, max_bytes: int) -> tuple[bytes, bool]:
    body = bytearray()
    for chunk in response.iter_raw():
        # One byte past the cap tells a cut body from one that ends there.
        body += inflater.decode(chunk, max_bytes - len(body) + 1)
        if len(body) > max_bytes:
            del body[max_bytes:]
            return bytes(body), True
        if inflater.ended:  # anything after the end of the stream is not the body
            break
    return bytes(body), False
