"""One request and, once done, its response; follows the request live until it finishes."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, ClassVar

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.css.query import NoMatches
from textual.widgets import Footer, Static

from htq.models import ANSWERED, Status
from htq.tui import format as fmt
from htq.tui.api import ApiError
from htq.tui.screens.base import RequestScreen, request_bindings
from htq.tui.widgets.server_bar import ServerBar

#: Longest a single long-poll for the response may wait before the status is asked again.
MAX_WAIT = 5.0


class DetailScreen(RequestScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,backspace", "back", "Back", tooltip="Back to the list"),
        *request_bindings(),
    ]

    def __init__(self, uuid: str, request: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.uuid = uuid
        self.request = request
        self.response: dict[str, Any] | None = None
        self.attempts: list[dict[str, Any]] = []  # shown once there is more than one
        self.note = ""  # why there is no response to show (yet)
        self._answered: Status | None = None  # the status whose response is on screen

    def compose(self) -> ComposeResult:
        yield ServerBar(self.htq.config.url)
        yield Static(id="detail-title")
        with VerticalScroll(id="detail-body"):
            yield Static("Request", classes="section")
            yield Static(id="request")
            yield Static("Attempts", classes="section attempts")
            yield Static(id="attempts", classes="attempts")
            yield Static("Response", classes="section")
            yield Static(id="response")
        yield Footer(compact=True, show_command_palette=False)  # `?` and the help tell it

    def on_mount(self) -> None:
        self.query_one("#detail-body").focus()
        self.render_request()
        self.render_attempts()
        self.render_response()
        self.follow()

    # -- the request actions' hooks ------------------------------------------------------

    def current_request(self) -> dict[str, Any] | None:
        return self.request

    def response_deleted(self) -> bool:
        return self._answered in ANSWERED and self.response is None

    def changed(self, uuid: str) -> None:
        self._answered = None  # show the outcome again, whatever it is now
        self.follow()

    def action_refresh(self) -> None:
        self._answered = None
        self.follow()
        self.notify("Refreshing…", timeout=1.5)

    def action_back(self) -> None:
        self.dismiss(None)

    # -- following the request -----------------------------------------------------------

    @work(exclusive=True, group="follow")
    async def follow(self) -> None:
        """Fetch the request; until it is done, long-poll its response; then show the outcome."""
        with contextlib.suppress(NoMatches):  # the screen was taken down meanwhile
            await self._follow()

    async def _follow(self) -> None:
        interval = self.htq.config.interval
        wait = min(max(interval, 0.5), MAX_WAIT)
        while True:
            try:
                done = await self._step(wait)
            except ApiError as exc:
                if exc.not_found:
                    self.note = exc.message
                    self.render_response()
                    return
                self.htq.failed(exc)
                await asyncio.sleep(interval)
                continue
            self.htq.reached()
            if not self.live:
                return
            if done:  # still followed: it may be canceled or replaced, and it ages
                await asyncio.sleep(interval)

    async def _step(self, wait: float) -> bool:
        """One look at the request; True once it is done and its outcome is shown."""
        api = self.htq.api
        request = await api.get(self.uuid)
        if not self.live:
            return True
        self.request = request
        self.render_request()
        if request.get("retries") or int(request.get("attempts") or 0) > 1:
            self.attempts = await api.attempts(self.uuid)
            if not self.live:
                return True
            self.render_attempts()
        status = fmt.parse_status(self.request.get("status"))
        if status is self._answered:
            return True  # its outcome is on screen already
        if status is Status.CANCELED:
            self.response, self.note = None, "Canceled: there is no response."
        elif status in ANSWERED:
            try:
                self.response, self.note = await api.response(self.uuid, 0), ""
            except ApiError as exc:
                if not exc.not_found:
                    raise
                self.response, self.note = None, exc.message
        else:
            self.response = None
            self.note = "Waiting for a worker…" if status is Status.QUEUED else "Being sent…"
            self.render_response()
            try:  # returns early once done; the next step shows how it ended
                await api.response(self.uuid, wait)
            except ApiError as exc:
                if not exc.not_found:  # 404: it ended with no response (canceled, replaced)
                    raise
            return not self.live
        if self.live:
            self._answered = status
            self.render_response()
        return True

    # -- rendering -----------------------------------------------------------------------

    def render_request(self) -> None:
        request = self.request or {"uuid": self.uuid}
        title = Text.assemble(
            ("Request ", "bold"), (self.uuid, "bold"), "  ", fmt.status_text(request.get("status"))
        )
        self.query_one("#detail-title", Static).update(title)
        self.query_one("#request", Static).update(_request_view(request, self.htq.clock()))

    def render_attempts(self) -> None:
        shown = len(self.attempts) > 1 or bool((self.request or {}).get("retries"))
        for widget in self.query(".attempts"):
            widget.display = shown
        if shown:
            self.query_one("#attempts", Static).update(_attempts_view(self.attempts))

    def render_response(self) -> None:
        view: RenderableType
        if self.response is not None:
            view = _response_view(self.response)
        else:
            view = Text(self.note or "Loading…", style="dim italic")
        self.query_one("#response", Static).update(view)


def _request_view(request: dict[str, Any], now: float) -> RenderableType:
    if "url" not in request:
        return Text("Loading…", style="dim italic")
    line = Text.assemble((str(request.get("method", "")).upper(), "bold"), " ", str(request["url"]))
    facts = [
        f"queued {fmt.timestamp(request.get('time'))} ({fmt.age(request.get('time'), now)} ago)",
        f"timeout {fmt.seconds(request.get('timeout'))}",
    ]
    if request.get("id") is not None:
        facts.append(f"id {request['id']}")
    if request.get("replaced_by"):
        facts.append(f"replaced by {fmt.short_uuid(str(request['replaced_by']))}")
    headers = request.get("headers") or {}
    content_type = fmt.header_value(headers, "content-type")
    parts: list[RenderableType] = [line, Text(" · ".join(facts), style="dim")]
    delivery = _delivery_facts(request, now)
    if delivery:
        parts.append(Text(" · ".join(delivery), style="yellow"))
    parts += [_label("Headers"), _headers_table(headers)]
    if request.get("data") is not None:
        parts += [_label("Body"), fmt.body(request["data"], content_type)]
    return Group(*parts)


def _delivery_facts(request: dict[str, Any], now: float) -> list[str]:
    """Retries, due time and callbacks, as far as the request has any."""
    facts = []
    if request.get("due") is not None:
        facts.append(f"due {fmt.until(request['due'], now)} ({fmt.timestamp(request['due'])})")
    retries = request.get("retries")
    if retries:
        made = request.get("attempts") or 0
        facts.append(f"attempts {made} of up to {int(retries) + 1}")
    for name in ("callback", "failure_callback"):
        if request.get(name):
            facts.append(f"{name.replace('_', ' ')} {request[name]}")
    result = request.get("callback_result")
    if isinstance(result, dict):
        outcome = result.get("code", result.get("error", "?"))
        tries = result.get("attempts")
        facts.append(f"called back: {outcome} ({tries} {'try' if tries == 1 else 'tries'})")
    return facts


def _attempts_view(attempts: list[dict[str, Any]]) -> RenderableType:
    if not attempts:
        return Text("None yet.", style="dim italic")
    table = Table(box=None, show_header=True, header_style="dim", padding=(0, 2, 0, 0))
    for name in ("#", "started", "took", "outcome"):
        table.add_column(name, no_wrap=True)
    table.add_column("result", overflow="fold")
    for attempt in attempts:
        code = attempt.get("code")
        result = (
            Text.assemble(fmt.code_text(code), " ", str(attempt.get("reason") or ""))
            if code is not None
            else Text(str(attempt.get("message") or ""), style="dim")
        )
        table.add_row(
            str(attempt.get("attempt", "?")),
            fmt.timestamp(attempt.get("start")) if attempt.get("start") else "",
            fmt.elapsed(attempt.get("elapsed")),
            fmt.status_text(attempt.get("outcome")),
            result,
        )
    return table


def _response_view(response: dict[str, Any]) -> RenderableType:
    status = fmt.parse_status(response.get("status"))
    received = fmt.timestamp(response.get("time"))
    facts = f"{fmt.elapsed(response.get('elapsed'))} · received {received}"
    if status is not Status.SUCCESS:
        return Group(
            Text.assemble(fmt.status_text(response.get("status")), "  ", (facts, "dim")),
            Text(str(response.get("message") or "(no message)")),
        )
    code = response.get("code")
    line = Text.assemble(
        fmt.code_text(code), " ", (str(response.get("reason") or ""), "bold"), "  ", (facts, "dim")
    )
    headers = response.get("headers") or {}
    parts: list[RenderableType] = [line, _label("Headers"), _headers_table(headers), _label("Body")]
    if response.get("encoding") == "base64":
        size = len(str(response.get("data") or "")) * 3 // 4
        parts.append(Text(f"Binary body, about {size:,} bytes (base64 in the API).", style="dim"))
    else:
        parts.append(fmt.body(response.get("data"), fmt.header_value(headers, "content-type")))
    if response.get("truncated"):
        parts.append(Text("The body was cut at the worker's size limit.", style="yellow"))
    return Group(*parts)


def _label(text: str) -> Text:
    return Text(f"\n{text}", style="bold")


def _headers_table(headers: Any) -> RenderableType:
    if not isinstance(headers, dict) or not headers:
        return Text("(none)", style="dim")
    table = Table(box=None, show_header=False, padding=(0, 2, 0, 0))
    table.add_column("name", style="cyan", no_wrap=True)
    table.add_column("value", overflow="fold")
    for name, value in headers.items():
        table.add_row(str(name), str(value))
    return table
