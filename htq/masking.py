"""Credentials are stored (they must be sent) but never shown back: the masks of a request
resource. No I/O."""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import urlsplit

#: Headers whose values are credentials: stored (they must be sent) but shown masked.
SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "x-api-key", "api-key", "x-auth-token"}
)
MASK = "********"
# `scheme://` and an authority holding a `@`, in any text: greedy up to the authority's last
# `@`, as urlsplit reads a password that holds one. Any character but those that end an
# authority: a quote is valid in a password (and httpx sends it).
_AUTHORITY = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#\s]*@")
_FORMATTER = logging.Formatter()


def masked(resource: dict[str, Any]) -> dict[str, Any]:
    """A request resource as it is shown: credential headers and the passwords of its URLs
    masked (the resource itself when it holds neither, as most do)."""
    headers = resource.get("headers")
    secret_headers = isinstance(headers, dict) and any(
        name.lower() in SECRET_HEADERS for name in headers
    )
    result = resource.get("callback_result")
    urls = {name: resource.get(name) for name in _URL_FIELDS}
    if isinstance(result, dict):
        urls["callback_result"] = result.get("url")
    with_password = [name for name, url in urls.items() if _has_password(url)]
    if not secret_headers and not with_password:
        return resource
    shown = dict(resource)
    if secret_headers:
        assert isinstance(headers, dict)
        shown["headers"] = {
            name: MASK if name.lower() in SECRET_HEADERS else value
            for name, value in headers.items()
        }
    for name in with_password:
        if name == "callback_result":
            shown[name] = {**resource[name], "url": _mask_password(str(urls[name]))}
        else:
            shown[name] = _mask_password(str(urls[name]))
    return shown


_URL_FIELDS = ("url", "callback", "failure_callback")


def mask_url(url: str) -> str:
    """`url` with its password, if it has one, masked (as every read and log line shows it)."""
    return _mask_password(url) if _has_password(url) else url


def _has_password(url: Any) -> bool:
    return isinstance(url, str) and "@" in url and bool(urlsplit(url).password)


def _mask_password(url: str) -> str:
    parts = urlsplit(url)
    user, _, host = parts.netloc.rpartition("@")
    return parts._replace(netloc=f"{user.split(':', 1)[0]}:{MASK}@{host}").geturl()


def mask_text(text: str) -> str:
    """`text` with the password of every URL in it masked."""
    return _AUTHORITY.sub(_masked_authority, text) if "@" in text else text


def _masked_authority(match: re.Match[str]) -> str:
    """`scheme://user:password@` as `scheme://user:********@` (read as urlsplit reads it)."""
    scheme, _, userinfo = match.group()[:-1].partition("://")
    user, colon, _ = userinfo.partition(":")
    return f"{scheme}://{user}:{MASK}@" if colon else match.group()


class MaskPasswords(logging.Filter):
    """Log records with the passwords of the URLs they mention masked, in the message and in
    the traceback of an exception (a logger's filter: it holds wherever the records go)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: the handler reports it, not the caller
            return True
        shown = mask_text(message)
        if shown != message:
            record.msg, record.args = shown, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = _FORMATTER.formatException(record.exc_info)  # as format() would
        if record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info)
        return True
