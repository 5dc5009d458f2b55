"""The request list: live table, status tabs with counts, URL filter, paging."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any, ClassVar

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import DataTable, Footer, Input, Static
from textual.worker import Worker

from htq.models import Status
from htq.tui.api import ApiError, Page
from htq.tui.screens.base import RequestScreen, request_bindings
from htq.tui.screens.detail import DetailScreen
from htq.tui.screens.submit import SubmitScreen
from htq.tui.widgets.request_table import RequestTable
from htq.tui.widgets.server_bar import ServerBar
from htq.tui.widgets.status_tabs import FILTERS, StatusTabs, filter_name

#: Requests shown at once; `[` and `]` page through the rest.
PAGE_SIZE = 200
#: The most one listing asks for (the server's limit): a page grows to this while new requests
#: arrive above a selected row, so the row stays.
MAX_PAGE = 1000


def _filter_bindings() -> list[BindingType]:
    return [
        Binding(
            str(number),
            f"filter_status('{filter_name(status)}')",
            f"Show {filter_name(status)}",
            tooltip=f"Only {status} requests" if status else "Requests of every status",
            show=False,
        )
        for number, status in enumerate(FILTERS, start=1)
    ]


#: g and G share one place in the footer.
_ENDS = Binding.Group("First/last", compact=True)


class MainScreen(RequestScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Open", tooltip="Show the request and its response"),
        Binding("n", "submit", "New", tooltip="Queue a new request"),
        *request_bindings(footer=False),
        Binding("slash", "find", "Filter", key_display="/", tooltip="Filter by URL or id text"),
        Binding(
            "g,home", "first_row", "First", key_display="g", group=_ENDS, tooltip="The newest shown"
        ),
        Binding(
            "G,end",
            "last_row",
            "Last",
            key_display="G",
            group=_ENDS,
            tooltip="The oldest shown",
        ),
        Binding(
            "escape",
            "clear_find",
            "Clear filter",
            key_display="esc",
            show=False,
            tooltip="Show every URL again",
        ),
        *_filter_bindings(),
        Binding(
            "right_square_bracket",
            "page(1)",
            "Older page",
            key_display="]",
            show=False,
            tooltip=f"The next {PAGE_SIZE} older requests",
        ),
        Binding(
            "left_square_bracket",
            "page(-1)",
            "Newer page",
            key_display="[",
            show=False,
            tooltip="Back towards the newest",
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.status_filter: Status | None = None
        self.text_filter = ""
        self.loaded: list[dict[str, Any]] = []
        self._pages: list[str | None] = [None]  # cursors of the pages walked into
        self._firsts = [0]  # how many newer requests each of those pages has before its first
        self._next_page: str | None = None
        self._loader: Worker[None] | None = None

    def compose(self) -> ComposeResult:
        yield ServerBar(self.htq.config.url)
        yield StatusTabs(id="tabs")
        with Horizontal(id="find-row"):
            yield Input(
                placeholder="filter by URL or id text (enter: keep, esc: clear)",
                id="find",
                compact=True,
            )
            yield Static(id="find-info")
        yield RequestTable(id="requests")
        yield Static(id="waiting")
        yield Footer(compact=True, show_command_palette=False)  # `?` and the help tell it

    @property
    def table(self) -> RequestTable:
        return self.query_one(RequestTable)

    def on_mount(self) -> None:
        self.table.focus()
        self.set_interval(self.htq.config.interval, self._tick)
        self._load()

    def _tick(self) -> None:
        # A slow server must not pile calls up: skip a tick while the last load runs.
        if self._loader is None or self._loader.is_finished:
            self._load()

    def _load(self) -> None:
        self._loader = self.load()

    @work(exclusive=True, group="load")
    async def load(self) -> None:
        """Fetch the current page and the counts, then show them."""
        api = self.htq.api
        size, selected = self._page_size(), self.table.selected_uuid
        try:
            page, stats = await asyncio.gather(
                api.list(self.status_filter, size, self._pages[-1]), api.stats()
            )
            # More arrived above the selected row than the page had room for: a longer page
            # brings it back (at most MAX_PAGE rows), so it never drops out from under the user.
            while size > PAGE_SIZE and size < MAX_PAGE and page.cursor and selected:
                if any(item["uuid"] == selected for item in page.items):
                    break
                size = min(MAX_PAGE, size * 2)
                page = await api.list(self.status_filter, size, None)
        except ApiError as exc:
            self.when_live(partial(self._failed, exc))
            return
        self.when_live(partial(self._loaded, page, stats))

    def _page_size(self) -> int:
        """A page of the newest requests reaches PAGE_SIZE rows past the selected one, so that
        requests arriving above it do not push it off the page (unless it is at the top,
        where the newest are what the user watches)."""
        row = self.table.cursor_row
        if len(self._pages) > 1 or row <= 0:
            return PAGE_SIZE
        return min(MAX_PAGE, max(PAGE_SIZE, row + PAGE_SIZE))

    def _failed(self, error: ApiError) -> None:
        self.htq.failed(error)
        self.table.refresh_ages(self.htq.clock())  # the last data stays, and ages on
        self._waiting(error)

    def _loaded(self, page: Page, stats: dict[str, Any]) -> None:
        self._waiting(None)
        self.htq.reached(stats)
        self.loaded, self._next_page = page.items, page.cursor
        self.query_one(StatusTabs).counts = {**stats.get("counts", {}), "total": stats.get("total")}
        self.show()

    def show(self) -> None:
        """Apply the text filter to what was loaded and sync the table with it."""
        needle = self.text_filter.lower()
        shown = [item for item in self.loaded if not needle or needle in _haystack(item)]
        self.table.sync(shown, self.htq.clock())
        self.query_one(StatusTabs).info = self._describe()
        self.query_one("#find-info", Static).update(_matches(len(shown)))

    def _waiting(self, error: ApiError | None) -> None:
        """Before the server ever answered: say how to start one, instead of an empty table."""
        waiting = self.query_one("#waiting", Static)
        shown = error is not None and self.htq.stats is None
        waiting.set_class(shown, "-shown")
        self.table.display = not shown
        if error is not None and shown and error.unauthorized:
            waiting.update(
                f"The htq server at {self.htq.config.url} asks for a token.\n\n"
                f"{error.message}\nFor example: `htq tui --token <token>`, or set HTQ_TOKEN.\n\n"
                f"Trying again every {self.htq.config.interval:g} s..."
            )
        elif error is not None and shown:
            waiting.update(
                f"No htq server answers at {self.htq.config.url} ({error.message.rstrip('.')}).\n\n"
                "Start one in another terminal: `make run` in htq's folder, or `htq up`.\n"
                "Another address: `htq tui --url http://host:port/`.\n\n"
                f"Trying again every {self.htq.config.interval:g} s..."
            )

    def _describe(self) -> str:
        """`201-400 of 1,011`: where this page is among the requests of its status, once there
        is more than one page."""
        if len(self._pages) == 1 and not self._next_page:
            return ""
        counts = self.query_one(StatusTabs).counts
        total = counts.get(str(self.status_filter) if self.status_filter else "total")
        first = self._firsts[-1] + 1
        info = f"{first:,}-{first + len(self.loaded) - 1:,}" if self.loaded else "none"
        return info + (f" of {total:,}" if isinstance(total, int) else "")

    # -- the request actions' hooks ------------------------------------------------------

    def current_request(self) -> dict[str, Any] | None:
        return self.table.selected

    def changed(self, uuid: str) -> None:
        self._load()

    def action_refresh(self) -> None:
        self._load()
        self.notify("Refreshing…", timeout=1.5)

    # -- navigation ----------------------------------------------------------------------

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_open(self) -> None:
        request = self.table.selected
        if request is None:
            self.notify("No request selected.", severity="warning")
            return
        self.app.push_screen(DetailScreen(str(request["uuid"]), request))

    def action_submit(self) -> None:
        self.app.push_screen(SubmitScreen(), self._submitted)

    def _submitted(self, result: tuple[str, str] | None) -> None:
        if result is None:
            return
        uuid, url = result
        if self.status_filter not in (None, Status.QUEUED):
            self.action_filter_status("all")
        if self.text_filter and self.text_filter.lower() not in url.lower():
            self._set_text_filter("")
        self.table.select(uuid)
        self._load()

    def action_filter_status(self, name: str) -> None:
        status = None if name == "all" else Status(name)
        self.query_one(StatusTabs).active = status
        if status == self.status_filter and len(self._pages) == 1:
            return
        self.status_filter = status
        self._pages, self._next_page, self._firsts = [None], None, [0]
        self.loaded = []
        self.show()
        self._load()

    def action_page(self, step: int) -> None:
        if step > 0:
            if not self._next_page:
                self.notify("This is the oldest page.")
                return
            self._pages.append(self._next_page)
            self._firsts.append(self._firsts[-1] + len(self.loaded))  # the newest page may grow
        else:
            if len(self._pages) == 1:
                self.notify("This is the newest page.")
                return
            self._pages.pop()
            self._firsts.pop()
        self._next_page = None
        self._load()

    def action_first_row(self) -> None:
        self.table.action_scroll_top()

    def action_last_row(self) -> None:
        self.table.action_scroll_bottom()

    # -- the URL filter ------------------------------------------------------------------

    def action_find(self) -> None:
        find = self.query_one("#find", Input)
        self._show_find(True)
        self.set_focus(find)

    def action_clear_find(self) -> None:
        self._set_text_filter("")

    def _set_text_filter(self, text: str) -> None:
        find = self.query_one("#find", Input)
        with find.prevent(Input.Changed):
            find.value = text
        self.text_filter = text
        self._show_find(bool(text))
        if not text:
            self.set_focus(self.table)
        self.show()

    def _show_find(self, shown: bool) -> None:
        row = self.query_one("#find-row")
        row.set_class(shown, "-active")
        row.display = shown  # now, not once the class has restyled it: `/` then keys at once

    def on_key(self, event: events.Key) -> None:
        # A terminal delivers `/cancel` typed fast (or pasted) at once, and Textual passes each
        # key up from the table before it runs the `/` binding: the rest would be lost (or run
        # as keys). So `/` moves the focus here, and what follows is the filter's text.
        find = self.query_one("#find", Input)
        if event.key == "slash" and self.focused is self.table:
            event.stop()
            event.prevent_default()
            self.action_find()
        elif event.is_printable and event.character and self.focused is find:
            event.stop()
            event.prevent_default()
            find.insert_text_at_cursor(event.character)

    @on(Input.Changed, "#find")
    def _find_changed(self, event: Input.Changed) -> None:
        self.text_filter = event.value
        self.show()

    @on(Input.Submitted, "#find")
    def _find_submitted(self, event: Input.Submitted) -> None:
        self._show_find(bool(event.value))
        self.set_focus(self.table)


def _haystack(item: dict[str, Any]) -> str:
    """What `/` searches: the method, URL, uuid and the user's own `id`."""
    fields = (item.get("method"), item.get("url"), item.get("uuid"), item.get("id"))
    return " ".join(str(field) for field in fields if field is not None).lower()


def _matches(count: int) -> str:
    return "no match" if not count else f"{count:,} match" + "es" * (count > 1)
