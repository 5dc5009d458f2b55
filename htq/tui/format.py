"""How the TUI shows things: status colours, ages, durations, bodies. Pure functions, no I/O."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.syntax import Syntax
from rich.text import Text

from htq.models import Status

#: One colour per status, used in the table, the tabs, the header and the detail view.
STATUS_STYLE: dict[Status, str] = {
    Status.QUEUED: "yellow",
    Status.PENDING: "cyan",
    Status.SUCCESS: "green",
    Status.ERROR: "red",
    Status.TIMEOUT: "magenta",
    Status.CANCELED: "bright_black",
}

#: Bodies longer than this are shown cut (the full body is a curl away).
MAX_SHOWN_BODY = 200_000
SYNTAX_THEME = "ansi_dark"


def parse_status(value: Any) -> Status | None:
    try:
        return Status(value)
    except ValueError:
        return None


def status_text(value: Any) -> Text:
    status = parse_status(value)
    if status is None:
        return Text(str(value or "?"), style="bold")
    return Text(str(status), style=f"bold {STATUS_STYLE[status]}")


def code_text(code: Any) -> Text:
    if not isinstance(code, int):
        return Text("")
    style = {2: "green", 3: "cyan", 4: "yellow", 5: "red"}.get(code // 100, "")
    return Text(str(code), style=style)


def short_uuid(uuid: str) -> str:
    return uuid[:8]


def age(time_ms: Any, now: float) -> str:
    """`now` in seconds since the epoch; `12s`, `5m`, `3h`, `2d`."""
    if not isinstance(time_ms, int | float):
        return ""
    return _span(now - time_ms / 1000)


def until(time_ms: Any, now: float) -> str:
    """How long until `time_ms` (`now` in seconds since the epoch): `in 12s`, `in 5m`, `now`."""
    if not isinstance(time_ms, int | float):
        return ""
    if time_ms / 1000 <= now:
        return "now"
    return f"in {_span(time_ms / 1000 - now + 0.999)}"


def _span(seconds: float) -> str:
    """`12s`, `5m`, `3h`, `2d` (whole units, rounded down)."""
    whole = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if whole >= size:
            return f"{whole // size}{unit}"
    return f"{whole}s"


def elapsed(ms: Any) -> str:
    if not isinstance(ms, int | float):
        return ""
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.2f} s"
    return f"{ms / 60_000:.1f} min"


def timestamp(time_ms: Any) -> str:
    if not isinstance(time_ms, int | float):
        return "?"
    moment = datetime.fromtimestamp(time_ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def seconds(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{value} s"


def body(data: Any, content_type: str = "") -> RenderableType:
    """A body for reading: JSON pretty-printed and highlighted, markup highlighted, text as is."""
    if data is None or data == "":
        return Text("(empty)", style="dim")
    if not isinstance(data, str):
        return _json(data)
    if "json" in content_type or data.lstrip()[:1] in ("{", "["):
        try:
            return _json(json.loads(data))
        except ValueError:
            pass
    shown, cut = data[:MAX_SHOWN_BODY], len(data) > MAX_SHOWN_BODY
    lexer = next((name for name in ("html", "xml") if name in content_type), None)
    renderable: RenderableType = (
        Syntax(shown, lexer, theme=SYNTAX_THEME, word_wrap=True) if lexer else Text(shown)
    )
    if cut:
        return _with_note(renderable, f"… {len(data) - MAX_SHOWN_BODY:,} more characters not shown")
    return renderable


def _json(value: Any) -> RenderableType:
    text = json.dumps(value, indent=2, ensure_ascii=False)
    shown = text[:MAX_SHOWN_BODY]
    syntax = Syntax(shown, "json", theme=SYNTAX_THEME, word_wrap=True)
    if len(text) > MAX_SHOWN_BODY:
        return _with_note(syntax, f"… {len(text) - MAX_SHOWN_BODY:,} more characters not shown")
    return syntax


def _with_note(renderable: RenderableType, note: str) -> RenderableType:
    return Group(renderable, Text(note, style="dim italic"))


def header_value(headers: Any, name: str) -> str:
    if not isinstance(headers, dict):
        return ""
    wanted = name.lower()
    return next((str(v) for k, v in headers.items() if str(k).lower() == wanted), "")


def parse_headers(text: str) -> dict[str, str]:
    """`Name: value` per line (blank lines skipped); ValueError names the bad line."""
    headers: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise ValueError(f"Line {number}: expected `Name: value`, not {line.strip()!r}.")
        headers[name.strip()] = value.strip()
    return headers
