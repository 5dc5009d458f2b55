"""Snapshots of the TUI's screens over fixed requests (fixed uuids, times and clock).

The requests are put in Redis with the store, as the server and a worker would have; the app
reads them through the real server. It is told the server is `http://htq.test:5000/` (so the
header is the same on every run) and its HTTP is routed to the test server's real port.
Update with `pytest tests/test_tui_snapshots.py --snapshot-update` and look at the SVGs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from textual.geometry import Region
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Button, Input, Label, Static, TextArea

from htq.config import StoreConfig, TuiConfig
from htq.models import RequestSpec, Status, response_resource
from htq.store import Store
from htq.tui import HtqApp, create_app
from htq.tui.screens.detail import DetailScreen
from htq.tui.widgets.request_table import RequestTable
from htq.tui.widgets.status_tabs import StatusTabs
from tests.support.server import ServerThread, server_config_for

SIZE = (120, 35)
SHOWN_URL = "http://htq.test:5000/"
T0 = 1_700_000_000_000  # 2023-11-14 22:13:20 UTC
NOW = T0 / 1000 + 15 * 60
Snap = Callable[..., bool]


def uuid(n: int) -> str:
    """`11111111-1111-4111-8111-111111111111` for 1 (`aaaaaaaa-...` for 10): fixed, and told
    apart by the short id."""
    d = f"{n:x}"
    return f"{d * 8}-{d * 4}-4{d * 3}-8{d * 3}-{d * 12}"


# (method, url, extra request fields, outcome): outcome None stays queued, "pending" is claimed.
REQUESTS: list[tuple[str, str, dict[str, Any], dict[str, Any] | str | None]] = [
    ("GET", "https://example.com/queued", {}, None),
    ("DELETE", "https://api.example.com/items/42", {}, "canceled"),
    (
        "GET", "https://slow.example.com/export", {"timeout": 5},
        {"status": Status.TIMEOUT, "elapsed_ms": 5000.0, "message": "No response within 5 s."},
    ),
    (
        "GET", "http://10.0.0.9:8080/health", {},
        {"status": Status.ERROR, "elapsed_ms": 3.1,
         "message": "Could not connect: [Errno 111] Connection refused"},
    ),
    (
        "PUT", "https://api.example.com/items/7", {"data": "name=seven"},
        {"status": Status.SUCCESS, "elapsed_ms": 240.5, "code": 500,
         "reason": "Internal Server Error", "data": "oops"},
    ),
    (
        "GET", "https://example.com/missing", {},
        {"status": Status.SUCCESS, "elapsed_ms": 35.0, "code": 404, "reason": "Not Found",
         "headers": {"Content-Type": "text/html"}, "data": "<h1>Not Found</h1>"},
    ),
    ("GET", "https://slow.example.com/report", {}, "pending"),
    (
        "POST", "https://hooks.example.com/deploy",
        {"data": {"service": "web", "version": "1.4.2"},
         "headers": {"Authorization": "Bearer t0k3n"}},
        {"status": Status.SUCCESS, "elapsed_ms": 1234.0, "code": 201, "reason": "Created",
         "headers": {"Content-Type": "application/json"}, "data": '{"id": 981, "queued": true}'},
    ),
    (
        "GET", "https://api.example.com/users?page=1",
        {"headers": {"Accept": "application/json"}, "id": "users-1"},
        {"status": Status.SUCCESS, "elapsed_ms": 83.4, "code": 200, "reason": "OK",
         "headers": {"Content-Type": "application/json", "Content-Length": "98"},
         "data": '{"users": [{"id": 1, "name": "Ada", "admin": true}, '
                 '{"id": 2, "name": "Linus", "admin": false}], "next": null}'},
    ),
    (
        "GET", "https://reports.example.com/api/v2/exports/2023/11/14/daily-summary.csv?tz=UTC",
        {}, {"status": Status.ERROR, "elapsed_ms": 12.0,
             "message": "Could not connect: [Errno 111] Connection refused"},
    ),
    (
        "PROPFIND", "https://dav.example.com/calendars/ada/work/2023-11-14-standup.ics",
        {"headers": {"Depth": "1"}},
        {"status": Status.TIMEOUT, "elapsed_ms": 60000.0, "message": "No response within 60 s."},
    ),
]  # fmt: skip
NEWEST = uuid(len(REQUESTS))
JSON_ANSWER = uuid(9)  # users-1: a JSON response


def fill(store: Store) -> None:
    """The requests above, oldest first, each 40 s after the last; done ones answered in 2 s."""
    for number, (method, url, extra, outcome) in enumerate(REQUESTS, start=1):
        spec = RequestSpec.from_resource(
            {"url": url, "method": method, "headers": {}, "data": None, "timeout": 60, **extra}
        )
        time_ms = T0 + number * 40_000
        store.enqueue(uuid(number), spec, time_ms)
        if outcome == "canceled":
            store.cancel(uuid(number))
        elif outcome is not None:
            claim = store.claim(uuid(number), "snapshot-worker", lease=3600)
            assert claim is not None
            if isinstance(outcome, dict):
                fields = {k: v for k, v in outcome.items() if k != "status"}
                answer = response_resource(
                    uuid(number), outcome["status"], time_ms=time_ms + 2000, **fields
                )
                assert store.complete(claim, answer)


class RouteTo(httpx.AsyncBaseTransport):
    """Sends every request to the test server's real address, whatever URL the app uses."""

    def __init__(self, real: str) -> None:
        url = httpx.URL(real)
        self.host, self.port = url.host, url.port
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(host=self.host, port=self.port)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture
def server(store_config: StoreConfig, store: Store) -> Iterator[ServerThread]:
    """The API, answering to the name the snapshots show (the app reaches it by RouteTo)."""
    thread = ServerThread(server_config_for(store_config, allowed_hosts=("htq.test",)))
    try:
        yield thread
    finally:
        thread.stop()


@pytest.fixture
def app(server: Any, store: Store) -> HtqApp:
    fill(store)
    return create_app(
        TuiConfig(url=SHOWN_URL, interval=60), clock=lambda: NOW, transport=RouteTo(server.url)
    )


async def until(pilot: Pilot[Any], check: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {check}"
        await pilot.pause(0.05)


async def loaded(pilot: Pilot[Any]) -> None:
    table = pilot.app.query_one(RequestTable)
    await until(pilot, lambda: table.row_count == len(REQUESTS))
    await pilot.pause()


def test_main_screen(snap_compare: Snap, app: HtqApp) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        await pilot.press("down", "down")  # the cursor row is drawn too

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_detail_screen(snap_compare: Snap, app: HtqApp) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await open_detail(pilot, JSON_ANSWER)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


async def open_detail(pilot: Pilot[Any], uuid: str) -> None:
    await loaded(pilot)
    pilot.app.query_one(RequestTable).select(uuid)
    await pilot.press("enter")
    await until(pilot, lambda: isinstance(pilot.app.screen, DetailScreen))
    screen = pilot.app.screen
    assert isinstance(screen, DetailScreen) and screen.uuid == uuid
    await until(pilot, lambda: screen.response is not None)
    await pilot.pause()


async def form_with_an_api_error(pilot: Pilot[Any]) -> None:
    await loaded(pilot)
    await pilot.press("n")
    screen = pilot.app.screen
    for field in screen.query(Input):
        field.cursor_blink = False
    for area in screen.query(TextArea):
        area.cursor_blink = False
    screen.query_one("#url", Input).value = "ftp://example.com/file"
    screen.query_one("#headers", TextArea).text = "Accept: text/plain"
    await pilot.press("ctrl+s")
    error = screen.query_one("#url-error", Label)
    await until(pilot, lambda: bool(str(error.content)))
    await pilot.pause()


def test_submit_form_with_an_api_error(snap_compare: Snap, app: HtqApp) -> None:
    assert snap_compare(app, terminal_size=SIZE, run_before=form_with_an_api_error)


def test_help_screen(snap_compare: Snap, app: HtqApp) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


# -- 80x24, the smallest terminal htq promises to fit: each screen shows its primary action -----

SMALL = (80, 24)


def inside(widget: Widget, screen: Region) -> bool:
    """Shown whole: on the screen, and in its parent's visible part (not scrolled away)."""
    region = widget.region
    return bool(region.width) and screen.contains_region(region)


def footer_keys(pilot: Pilot[Any]) -> dict[str, Widget]:
    keys = pilot.app.screen.query("FooterKey")
    footer = pilot.app.screen.query_one("Footer").region
    return {getattr(key, "key", ""): key for key in keys if inside(key, footer)}


def test_main_screen_at_80_by_24(snap_compare: Snap, app: HtqApp) -> None:
    """Every tab, the footer's keys, whole methods and why requests failed."""

    async def run_before(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        tabs = pilot.app.screen.query_one(StatusTabs)
        shown = tabs.render()
        assert shown.cell_length <= tabs.size.width and "7 canc" in shown.plain
        keys = footer_keys(pilot)
        for key in ("enter", "n", "c", "y", "t", "slash", "g", "G", "question_mark", "q"):
            assert key in keys, f"{key} is not in the footer, or cut off"
        rows = pilot.app.query_one(RequestTable)
        assert str(rows.get_cell(NEWEST, "method")) == "PROPFIND"
        for number in (4, len(REQUESTS) - 1, len(REQUESTS)):  # refused, long URL, timed out
            url = str(rows.get_cell(uuid(number), "url"))
            assert "Could not connect" in url or "No response within 60 s" in url, url

    assert snap_compare(app, terminal_size=SMALL, run_before=run_before)


def test_main_screen_filtering_at_80_by_24(snap_compare: Snap, app: HtqApp) -> None:
    """The match count shows beside the filter, not over the tabs."""

    async def run_before(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        await pilot.press("slash", *"api.example", "enter")
        tabs = pilot.app.screen.query_one(StatusTabs)
        assert "7 canc" in tabs.render().plain
        assert str(pilot.app.screen.query_one("#find-info", Static).render()) == "3 matches"

    assert snap_compare(app, terminal_size=SMALL, run_before=run_before)


def test_submit_form_at_80_by_24(snap_compare: Snap, app: HtqApp) -> None:
    """The form's error shows beside its field (no toast over the form); its buttons and its
    keys show."""

    async def run_before(pilot: Pilot[Any]) -> None:
        await form_with_an_api_error(pilot)
        screen = pilot.app.screen.region
        for button in pilot.app.screen.query(Button):
            assert inside(button, screen), f"{button.id} is cut off"
        assert "ctrl+s" in footer_keys(pilot)
        assert not pilot.app.query("Toast")

    assert snap_compare(app, terminal_size=SMALL, run_before=run_before)


def test_detail_screen_at_80_by_24(snap_compare: Snap, app: HtqApp) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await open_detail(pilot, NEWEST)
        keys = footer_keys(pilot)
        for key in ("escape", "c", "d", "y", "t", "question_mark", "q"):
            assert key in keys, f"{key} is not in the footer, or cut off"

    assert snap_compare(app, terminal_size=SMALL, run_before=run_before)


def test_help_screen_at_80_by_24(snap_compare: Snap, app: HtqApp) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SMALL, run_before=run_before)
