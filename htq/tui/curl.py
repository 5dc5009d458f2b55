"""A request resource as the curl command that sends the same request."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from htq.masking import MASK
from htq.models import RequestSpec

#: What a masked credential header becomes: a shell variable the person sets, so the command
#: works without the secret ever being copied. Not HTQ_TOKEN: that is htq's own token, and the
#: target must not get it.
_STAND_INS = {"authorization": "Bearer $TOKEN"}
_PLAIN_NAME = re.compile(r"[A-Za-z0-9-]+")


@dataclass(frozen=True, slots=True)
class CurlCommand:
    """`text` to paste; `variables` to set first, for the credentials the server masked."""

    text: str
    variables: tuple[str, ...] = ()


def curl_command(resource: dict[str, Any]) -> CurlCommand:
    """One line a person can paste into a POSIX shell: method, headers, body, the request's
    timeout and its URL taken literally (`--globoff`: `[1-5]` and `{a,b}` are not globs)."""
    spec = RequestSpec.from_resource(resource)
    words = ["curl"]
    variables: list[str] = []
    body = spec.body()
    inferred = "POST" if body is not None else "GET"
    if spec.method == "HEAD":
        words.append("--head")
    elif spec.method != inferred:
        words += ["-X", shlex.quote(spec.method)]
    for name, value in spec.send_headers().items():
        if value == MASK:
            stand_in = _STAND_INS.get(name.lower(), f"${_variable(name)}")
            variables.append(stand_in.rsplit("$", 1)[1])
            words += ["-H", _with_variable(f"{name}: {stand_in}")]
        else:
            words += ["-H", shlex.quote(f"{name}: {value}")]
    if body is not None:
        words += ["--data-raw", shlex.quote(body.decode("utf-8", errors="replace"))]
    words += ["--max-time", f"{spec.timeout:g}", "--globoff", _url(spec.url, variables)]
    return CurlCommand(" ".join(words), tuple(dict.fromkeys(variables)))


def _variable(header: str) -> str:
    """`X-Api-Key` -> `X_API_KEY`."""
    return re.sub(r"[^A-Z0-9]+", "_", header.upper()).strip("_") or "SECRET"


def _with_variable(text: str) -> str:
    """`text`, whose one `$NAME` the shell expands and nothing else."""
    before, variable = text.rsplit("$", 1)
    if _PLAIN_NAME.fullmatch(before.split(":", 1)[0]):
        return f'"{before}${variable}"'
    return f'{shlex.quote(before)}"${variable}"'


def _url(url: str, variables: list[str]) -> str:
    """The URL quoted for the shell; a masked password becomes `$PASSWORD`."""
    parts = urlsplit(url)
    if parts.password != MASK:
        return shlex.quote(url)
    variables.append("PASSWORD")
    before, after = url.split(f":{MASK}@", 1)
    return f'{shlex.quote(before + ":")}"$PASSWORD"{shlex.quote("@" + after)}'
