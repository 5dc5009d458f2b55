"""The terminal UI, driven by Textual's Pilot against real `htq server`, `htq worker` and Redis."""

from __future__ import annotations

import io
import time
import uuid as uuidlib
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console
from textual import events
from textual.pilot import Pilot
from textual.widgets import Input, Label, Static

from htq.config import StoreConfig, TuiConfig
from htq.models import Status
from htq.store import Store
from htq.tui import HtqApp, create_app
from htq.tui.commands import declared_bindings
from htq.tui.screens.confirm import ConfirmScreen
from htq.tui.screens.detail import DetailScreen
from htq.tui.screens.help import HelpScreen
from htq.tui.screens.main import MainScreen
from htq.tui.screens.submit import SubmitScreen
from htq.tui.widgets.request_table import RequestTable
from htq.tui.widgets.server_bar import Reach, ServerBar
from tests.support.api import TLS
from tests.support.processes import HtqProcess, start_server, start_worker
from tests.support.redis_server import free_port
from tests.support.target import Target

SIZE = (120, 35)
INTERVAL = 0.2


# -- one server, worker and target for the module (each test tags its own requests) ----------


@pytest.fixture(scope="module")
def prefix(redis_url: str) -> Iterator[str]:
    name = f"tui{uuidlib.uuid4().hex[:10]}"
    yield name
    store = Store(StoreConfig(redis_url=redis_url, prefix=name))
    keys = list(store.redis.scan_iter(match=f"{{{name}}}:*", count=1000))
    if keys:
        store.redis.delete(*keys)
    store.close()


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    with Target() as target:
        yield target


@pytest.fixture(scope="module")
def server(redis_url: str, prefix: str) -> Iterator[HtqProcess]:
    process = start_server(redis_url, prefix)
    yield process
    process.stop()


@pytest.fixture(scope="module")
def worker(redis_url: str, prefix: str) -> Iterator[HtqProcess]:
    process = start_worker(redis_url, prefix, threads=4)
    yield process
    process.stop()


@pytest.fixture
def tag() -> str:
    """A word only this test's URLs carry."""
    return uuidlib.uuid4().hex[:10]


def queue(server: HtqProcess, **fields: Any) -> str:
    """Queue a request through the API, as a script would; returns its uuid."""
    answer = httpx.post(server.url or "", json=fields, follow_redirects=False, verify=TLS)
    assert answer.status_code == 303, answer.text
    return answer.headers["Location"].rstrip("/").rsplit("/", 1)[-1]


@asynccontextmanager
async def running(url: str) -> AsyncIterator[tuple[HtqApp, Pilot[int]]]:
    app = create_app(TuiConfig(url=url, interval=INTERVAL))
    async with app.run_test(size=SIZE) as pilot:
        yield app, pilot


async def until(pilot: Pilot[int], check: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {check}")
        await pilot.pause(0.05)


def table(app: HtqApp) -> RequestTable:
    return _main(app).table


def _main(app: HtqApp) -> MainScreen:
    screen = app.screen_stack[0]
    assert isinstance(screen, MainScreen)
    return screen


async def open_detail(app: HtqApp, pilot: Pilot[int], uuid: str) -> DetailScreen:
    """Select a request in the list and open it, as a user does."""
    await until(pilot, lambda: uuid in table(app).items)
    table(app).select(uuid)
    await pilot.press("enter")
    await until(pilot, lambda: isinstance(app.screen, DetailScreen))
    screen = app.screen
    assert isinstance(screen, DetailScreen) and screen.uuid == uuid
    return screen


def status_of(app: HtqApp, uuid: str) -> str | None:
    item = table(app).items.get(uuid)
    return None if item is None else str(item["status"])


def text(widget: Static) -> str:
    """What a Static shows, as plain text."""
    console = Console(width=SIZE[0], record=True, file=io.StringIO(), color_system=None)
    console.print(widget.content)
    return console.export_text()


# -- the stories --------------------------------------------------------------------------


async def test_submit_a_request_and_see_it_succeed(
    server: HtqProcess, worker: HtqProcess, target: Target, tag: str
) -> None:
    async with running(server.url or "") as (app, pilot):
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, SubmitScreen))
        app.screen.query_one("#url", Input).value = f"{target.url}/ip?{tag}"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, MainScreen))
        rows = table(app)
        await until(pilot, lambda: any(tag in i["url"] for i in rows.items.values()))
        uuid = next(u for u, i in rows.items.items() if tag in i["url"])
        assert rows.selected_uuid == uuid
        await until(pilot, lambda: status_of(app, uuid) == "success")
        assert rows.items[uuid]["result"]["code"] == 200


async def test_detail_shows_the_response_body(
    server: HtqProcess, worker: HtqProcess, target: Target, tag: str
) -> None:
    uuid = queue(server, url=f"{target.url}/echo?{tag}", data={"hello": tag})
    async with running(server.url or "") as (app, pilot):
        screen = await open_detail(app, pilot, uuid)
        await until(pilot, lambda: screen.response is not None)
        shown = text(screen.query_one("#response", Static))
        assert "200 OK" in shown
        assert '"method": "POST"' in shown  # the JSON body, pretty-printed
        assert tag in text(screen.query_one("#request", Static))
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, MainScreen))


async def test_detail_follows_the_request_after_it_is_done(
    server: HtqProcess, target: Target, tag: str
) -> None:
    # Slow to answer (a worker may be running): it stays queued or pending.
    uuid = queue(server, url=f"{target.url}/delay/30/{tag}", id=tag)
    async with running(server.url or "") as (app, pilot):
        screen = await open_detail(app, pilot, uuid)
        title = screen.query_one("#detail-title", Static)
        await until(pilot, lambda: "queued" in text(title) or "pending" in text(title))
        ages = {text(screen.query_one("#request", Static)).split("ago")[0]}
        replacement = queue(server, url=f"{target.url}/delay/30/{tag}/2", id=tag)
        await until(pilot, lambda: "canceled" in text(title))  # replaced: canceled, live
        await until(pilot, lambda: "replaced" in text(screen.query_one("#request", Static)))
        await until(
            pilot, lambda: text(screen.query_one("#request", Static)).split("ago")[0] not in ages
        )  # the age moves on
        assert replacement[:8] in text(screen.query_one("#request", Static))
    httpx.delete(f"{server.url}{replacement}/")  # a worker need not sit on it


async def test_cancel_a_slow_request(
    server: HtqProcess, worker: HtqProcess, target: Target, tag: str
) -> None:
    uuid = queue(server, url=f"{target.url}/delay/30/{tag}")
    async with running(server.url or "") as (app, pilot):
        await until(pilot, lambda: status_of(app, uuid) == "pending")
        table(app).select(uuid)
        await pilot.press("c")
        await pilot.press("y")  # the confirmation
        await until(pilot, lambda: status_of(app, uuid) == "canceled")
    assert target.wait_for_delete(f"/delay/30/{tag}", timeout=5) is not None


async def test_filter_by_status_and_by_url_text(
    server: HtqProcess, worker: HtqProcess, target: Target, tag: str
) -> None:
    ok = queue(server, url=f"{target.url}/ip?{tag}")
    refused = queue(server, url=f"http://127.0.0.1:{free_port()}/{tag}")
    async with running(server.url or "") as (app, pilot):
        await until(pilot, lambda: status_of(app, ok) == "success")
        await until(pilot, lambda: status_of(app, refused) == "error")
        await pilot.press("5")  # error only
        await until(pilot, lambda: ok not in table(app).items and refused in table(app).items)
        assert {i["status"] for i in table(app).items.values()} == {"error"}
        await pilot.press("1", "slash", *tag)
        await until(pilot, lambda: set(table(app).items) == {ok, refused})
        info = app.screen.query_one("#find-info", Static)
        assert str(info.render()) == "2 matches"
        await pilot.press("x")
        await until(pilot, lambda: not table(app).items)
        assert str(info.render()) == "no match"
        await pilot.press("escape")  # clears the text filter
        assert _main(app).text_filter == ""
        assert "Could not connect" in str(table(app).get_cell(refused, "url")), "why it failed"


async def test_the_users_id_is_shown_and_found(server: HtqProcess, tag: str) -> None:
    mine = queue(server, url=f"http://127.0.0.1:9/{tag}", id=f"invoice-{tag}")
    other = queue(server, url=f"http://127.0.0.1:9/other/{tag}")
    async with running(server.url or "") as (app, pilot):
        await pilot.press("1")
        await until(pilot, lambda: {mine, other} <= set(table(app).items))
        assert str(table(app).get_cell(mine, "url")).startswith(f"invoice-{tag} ")
        await pilot.press("slash", *f"invoice-{tag}", "enter")
        await until(pilot, lambda: set(table(app).items) == {mine})


async def test_new_rows_keep_the_selected_row_where_it_is(
    server: HtqProcess, worker: HtqProcess, target: Target, tag: str
) -> None:
    for number in range(40):
        queue(server, url=f"{target.url}/ip?{tag}-{number}")
    async with running(server.url or "") as (app, pilot):
        rows = table(app)
        await until(pilot, lambda: rows.row_count >= 40)
        rows.move_cursor(row=30)
        await pilot.pause()
        chosen, on_screen = rows.selected_uuid, rows.cursor_row - int(rows.scroll_y)
        assert rows.scroll_y > 0
        new = [queue(server, url=f"{target.url}/ip?{tag}-new{n}") for n in range(3)]
        await until(pilot, lambda: all(uuid in rows.items for uuid in new))
        await pilot.pause()
        assert rows.selected_uuid == chosen
        assert rows.cursor_row - int(rows.scroll_y) == on_screen  # the view did not move


async def test_a_burst_does_not_push_the_selected_row_off_the_page(
    server: HtqProcess, tag: str
) -> None:
    for number in range(40):
        queue(server, url=f"http://127.0.0.1:9/{tag}-{number}")
    async with running(server.url or "") as (app, pilot):
        rows = table(app)
        await pilot.press("1")  # every status: a worker may be running
        await until(pilot, lambda: rows.row_count >= 40)
        rows.move_cursor(row=30)
        await pilot.pause()
        chosen, on_screen = rows.selected_uuid, rows.cursor_row - int(rows.scroll_y)
        burst = [queue(server, url=f"http://127.0.0.1:9/{tag}-new{n}") for n in range(230)]
        await until(pilot, lambda: all(uuid in rows.items for uuid in burst), timeout=20)
        await pilot.pause()
        assert chosen in rows.items and rows.selected_uuid == chosen, "still there, still chosen"
        assert rows.cursor_row - int(rows.scroll_y) == on_screen  # the view did not move


async def test_server_down_then_back(redis_url: str, prefix: str, tag: str) -> None:
    port = free_port()
    process = start_server(redis_url, prefix, port=port)
    uuid = queue(process, url=f"http://127.0.0.1:1/{tag}")
    try:
        async with running(process.url or "") as (app, pilot):
            await until(pilot, lambda: uuid in table(app).items)
            process.stop()
            await until(pilot, lambda: app.connection.reach is Reach.UNREACHABLE)
            assert uuid in table(app).items  # the last data stays
            await pilot.pause(3 * INTERVAL)
            assert app.is_running
            process = start_server(redis_url, prefix, port=port)
            await until(pilot, lambda: app.connection.reach is Reach.ONLINE)
            assert uuid in table(app).items
    finally:
        process.stop()


async def test_unreachable_server_at_start_is_shown_not_fatal() -> None:
    async with running(f"http://127.0.0.1:{free_port()}/") as (app, pilot):
        await until(pilot, lambda: app.connection.reach is Reach.UNREACHABLE)
        assert table(app).row_count == 0
        waiting = app.screen.query_one("#waiting", Static)
        await until(pilot, lambda: "make run" in str(waiting.render()))
        assert waiting.display and not table(app).display, "how to start one, not an empty table"
        await pilot.press("n")  # the app still works
        assert isinstance(app.screen, SubmitScreen)


async def test_a_server_that_comes_up_replaces_the_advice(redis_url: str, prefix: str) -> None:
    port = free_port()
    async with running(f"http://127.0.0.1:{port}/") as (app, pilot):
        waiting = app.screen.query_one("#waiting", Static)
        await until(pilot, lambda: waiting.display)
        process = start_server(redis_url, prefix, port=port)
        try:
            await until(pilot, lambda: app.connection.reach is Reach.ONLINE)
            await until(pilot, lambda: not waiting.display and table(app).display)
        finally:
            process.stop()


async def test_ctrl_c_quits() -> None:
    async with running(f"http://127.0.0.1:{free_port()}/") as (app, pilot):
        await pilot.press("ctrl+c")
        await until(pilot, lambda: not app.is_running)


async def test_the_form_shows_the_api_message_beside_the_field(server: HtqProcess) -> None:
    async with running(server.url or "") as (app, pilot):
        await pilot.press("n")
        app.screen.query_one("#url", Input).value = "ftp://example.com/file"
        await pilot.press("ctrl+s")
        error = app.screen.query_one("#url-error", Label)
        await until(pilot, lambda: "http:// or https://" in str(error.content))
        assert isinstance(app.screen, SubmitScreen)
        app.screen.query_one("#url", Input).value = "http://example.com/"
        app.screen.query_one("#headers").text = "no colon here"  # type: ignore[attr-defined]
        await pilot.press("ctrl+s")
        assert "Line 1" in str(app.screen.query_one("#headers-error", Label).content)
        # Refused by the server, which names the field: the message goes beside it.
        app.screen.query_one("#headers").text = "Transfer-Encoding: chunked"  # type: ignore[attr-defined]
        await pilot.press("ctrl+s")
        error = app.screen.query_one("#headers-error", Label)
        await until(pilot, lambda: "cannot be set" in str(error.content))
        app.screen.query_one("#headers").text = ""  # type: ignore[attr-defined]
        app.screen.query_one("#timeout", Input).value = "0"
        await pilot.press("ctrl+s")
        error = app.screen.query_one("#timeout-error", Label)
        await until(pilot, lambda: ", not 0." in str(error.content))
        assert "not 0.0" not in str(error.content), "said as the user typed it"


async def test_copy_as_curl_and_delete_response(
    server: HtqProcess, worker: HtqProcess, target: Target, tag: str
) -> None:
    secret = {"Authorization": f"Basic {tag}"}
    uuid = queue(server, url=f"{target.url}/ip?{tag}", headers={"X-Tag": tag, **secret})
    async with running(server.url or "") as (app, pilot):
        await until(pilot, lambda: status_of(app, uuid) == "success")
        table(app).select(uuid)
        await pilot.press("y")
        await until(pilot, lambda: app.clipboard.startswith("curl"))
        assert app.clipboard == (
            f"curl -H 'X-Tag: {tag}' -H \"Authorization: Bearer $TOKEN\" --max-time 60 --globoff "
            f"'{target.url}/ip?{tag}'"
        ), "the credential, masked by the server, is never copied: a variable stands in"
        await pilot.press("d", "y")
        async with httpx.AsyncClient() as client:
            for _ in range(100):
                answer = await client.get(f"{server.url}{uuid}/response/")
                if answer.status_code == 404:
                    break
                await pilot.pause(0.05)
        assert answer.status_code == 404
        await until(pilot, lambda: (table(app).items[uuid].get("result") or {}).get("deleted"))
        assert "deleted" in str(table(app).get_cell(uuid, "elapsed"))
        await pilot.press("d")  # nothing left to delete: said at once, not asked
        await pilot.pause(0.1)
        assert not isinstance(app.screen, ConfirmScreen)


async def test_help_lists_every_key_and_the_palette_offers_the_actions(server: HtqProcess) -> None:
    async with running(server.url or "") as (app, pilot):
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        shown = text(app.screen.query_one("#help-keys", Static))
        for binding in declared_bindings(MainScreen):
            assert binding.description in shown
        await pilot.press("escape")
        await pilot.press("ctrl+p")
        await pilot.press(*"New")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, SubmitScreen))


def test_statuses_have_a_filter_key_each() -> None:
    keys = {b.key: b.action for b in declared_bindings(MainScreen)}
    for number, name in enumerate(["all", *Status.__members__.values()], start=1):
        assert keys[str(number)] == f"filter_status('{name}')"


# -- delivery: retries, scheduling, requeue ----------------------------------------------------


async def test_the_form_takes_retries_and_a_delay(server: HtqProcess, tag: str) -> None:
    async with running(server.url or "") as (app, pilot):
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, SubmitScreen))
        app.screen.query_one("#url", Input).value = f"http://127.0.0.1:9/{tag}"
        app.screen.query_one("#retries", Input).value = "2"
        app.screen.query_one("#delay", Input).value = "600"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, MainScreen))
        rows = table(app)
        await until(pilot, lambda: any(tag in i["url"] for i in rows.items.values()))
        uuid = next(u for u, i in rows.items.items() if tag in i["url"])
        await until(pilot, lambda: str(rows.get_cell(uuid, "elapsed")) == "in 9m")
    shown = httpx.get(f"{server.url}{uuid}/").json()
    assert shown["retries"] == 2 and shown["due"] > time.time() * 1000 + 590_000
    httpx.delete(f"{server.url}{uuid}/")


async def test_a_bad_retries_value_is_shown_by_the_field(server: HtqProcess) -> None:
    async with running(server.url or "") as (app, pilot):
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, SubmitScreen))
        app.screen.query_one("#url", Input).value = "http://127.0.0.1:9/"
        app.screen.query_one("#retries", Input).value = "500"
        await pilot.press("ctrl+s")
        error = app.screen.query_one("#retries-error", Label)
        await until(pilot, lambda: "0 to 100" in str(error.render()))
        assert isinstance(app.screen, SubmitScreen), "the form stays open"


async def test_the_detail_shows_every_attempt_and_t_retries(
    server: HtqProcess, worker: HtqProcess, target: Target, tag: str
) -> None:
    fast = {"min": 0.05, "max": 0.1}
    uuid = queue(server, url=f"{target.url}/status/503/{tag}", retries=1, backoff=fast)
    async with running(server.url or "") as (app, pilot):
        await until(pilot, lambda: status_of(app, uuid) == "success")
        assert str(table(app).get_cell(uuid, "url")).startswith("2× ")  # noqa: RUF001
        screen = await open_detail(app, pilot, uuid)
        attempts = screen.query_one("#attempts", Static)
        await until(pilot, lambda: attempts.display and len(screen.attempts) == 2)
        shown = text(attempts)
        assert shown.count("503") == 2 and "success" in shown
        assert "attempts 2 of up to 2" in text(screen.query_one("#request", Static))
        await pilot.press("t")
        await until(pilot, lambda: len(screen.attempts) == 3, timeout=15)
    assert len(httpx.get(f"{server.url}{uuid}/attempts/").json()) == 3


async def test_retry_is_refused_for_a_request_not_finished(server: HtqProcess, tag: str) -> None:
    uuid = queue(server, url=f"http://127.0.0.1:9/{tag}", delay=600)
    async with running(server.url or "") as (app, pilot):
        told: list[str] = []
        notify = app.notify
        app.notify = lambda message, *args, **kwargs: (
            told.append(str(message))
            or notify(  # type: ignore[method-assign]
                message, *args, **kwargs
            )
        )
        await until(pilot, lambda: uuid in table(app).items)
        table(app).select(uuid)
        await pilot.press("t")
        await until(pilot, lambda: any("only a finished request is retried" in m for m in told))
        assert status_of(app, uuid) == "queued"
    httpx.delete(f"{server.url}{uuid}/")


# -- keys, header and footer ---------------------------------------------------------------


async def test_home_end_and_g_G_go_to_the_first_and_last_row(server: HtqProcess, tag: str) -> None:
    for number in range(30):
        queue(server, url=f"http://127.0.0.1:9/{tag}-{number}", delay=600)
    async with running(server.url or "") as (app, pilot):
        rows = table(app)
        await pilot.press("2")  # queued: these, and maybe others'
        await until(pilot, lambda: rows.row_count >= 30)
        rows.move_cursor(row=10)
        for key, row in (("end", rows.row_count - 1), ("home", 0), ("G", -1), ("g", 0)):
            await pilot.press(key)
            assert rows.cursor_row == (row if row >= 0 else rows.row_count - 1), key
    for uuid in [i["uuid"] for i in httpx.get(f"{server.url}?status=queued").json()]:
        if tag in httpx.get(f"{server.url}{uuid}/").json()["url"]:
            httpx.delete(f"{server.url}{uuid}/")


async def test_keys_typed_fast_after_slash_go_to_the_filter(server: HtqProcess, tag: str) -> None:
    """`/cancel` typed at once filters by "cancel": its `c` must not cancel the selected row."""
    uuid = queue(server, url=f"http://127.0.0.1:9/{tag}", delay=600)
    async with running(server.url or "") as (app, pilot):
        await until(pilot, lambda: uuid in table(app).items)
        table(app).select(uuid)
        for key in ("slash", "c", "a"):  # posted together, as a terminal delivers them
            key_event = events.Key(key, "/" if key == "slash" else key)
            key_event.set_sender(app)
            app._driver.send_message(key_event)  # type: ignore[union-attr]
        await until(pilot, lambda: _main(app).text_filter == "ca")
        assert not isinstance(app.screen, ConfirmScreen)
    httpx.delete(f"{server.url}{uuid}/")


@pytest.mark.parametrize("token", [None, "wrong"])
async def test_the_header_says_a_token_is_needed_or_refused(
    redis_url: str, prefix: str, token: str | None
) -> None:
    process = start_server(redis_url, prefix, "--token", "the-right-token-of-the-server")
    try:
        app = create_app(TuiConfig(url=process.url or "", interval=INTERVAL, token=token))
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: app.connection.reach is Reach.UNAUTHORIZED)
            bar = app.screen.query_one(ServerBar)
            shown = "token needed" if token is None else "token refused"
            await until(pilot, lambda: shown in str(bar.render()))
            assert "connecting" not in str(bar.render())
    finally:
        process.stop()


async def test_the_header_says_unreachable_as_the_readme_does() -> None:
    async with running(f"http://127.0.0.1:{free_port()}/") as (app, pilot):
        bar = app.screen.query_one(ServerBar)
        await until(pilot, lambda: "● unreachable (" in str(bar.render()))
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme.split("## The terminal UI", 1)[1].split("\n## ", 1)[0]
    assert "`unreachable`" in section and "offline" not in section
