"""The live table of requests: rows keyed by uuid, updated in place so nothing jumps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, ColumnKey, RowKey

from htq.models import Status
from htq.tui import format as fmt

#: (key, label, width); the URL takes whatever width is left, the method's fits the methods
#: shown (within METHOD_WIDTHS), and the ID gives way to the URL in a narrow terminal.
COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("uuid", "ID", 8),
    ("method", "Method", 0),
    ("url", "URL", 0),
    ("status", "Status", 8),
    ("code", "Code", 4),
    ("elapsed", "Elapsed", 7),
    ("age", "Age", 4),
)
METHOD_WIDTHS = (6, 12)  # "Method"; MKCALENDAR, VERSION-CONTROL is cut
#: The ID column shows only while the URL keeps at least this many columns.
URL_WIDTH_WITH_ID = 40
MIN_URL_WIDTH = 20


@dataclass(frozen=True, slots=True)
class IdCell:
    """The short id shown in the ID column."""

    uuid: str

    def __rich__(self) -> Text:
        return Text(fmt.short_uuid(self.uuid), style="dim")


@dataclass(frozen=True, slots=True)
class UrlCell:
    """The URL column's text; carries the full uuid for ordering (the ID column may be hidden)."""

    uuid: str
    text: Text

    def __rich__(self) -> Text:
        return self.text

    def __str__(self) -> str:
        return self.text.plain


@dataclass(frozen=True, slots=True)
class Fit:
    """Which columns show, how wide."""

    with_id: bool
    method: int
    url: int

    @property
    def columns(self) -> list[tuple[str, str, int]]:
        widths = {"method": self.method, "url": self.url}
        return [
            (key, label, widths.get(key, width))
            for key, label, width in COLUMNS
            if key != "uuid" or self.with_id
        ]


class RequestTable(DataTable[Any]):
    """Requests, newest first. `sync()` applies a fresh listing without moving the selection."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Open", tooltip="Show the request and its response"),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.items: dict[str, dict[str, Any]] = {}
        self.fit = Fit(with_id=True, method=METHOD_WIDTHS[0], url=MIN_URL_WIDTH)
        self._now = 0.0
        self._select_next: str | None = None

    def on_mount(self) -> None:
        self._add_columns()

    def _add_columns(self) -> None:
        for key, label, width in self.fit.columns:
            self.add_column(label, key=key, width=width)

    # Textual's home and end move across columns, which a row cursor has not: the first and
    # the last row instead, as g and G (the screen's keys) do.
    def action_scroll_home(self) -> None:
        self.action_scroll_top()

    def action_scroll_end(self) -> None:
        self.action_scroll_bottom()

    @property
    def selected(self) -> dict[str, Any] | None:
        """The request under the cursor, as last listed."""
        uuid = self.selected_uuid
        return self.items.get(uuid) if uuid else None

    @property
    def selected_uuid(self) -> str | None:
        if not self.row_count:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except CellDoesNotExist:
            return None
        return key.value

    def select(self, uuid: str) -> None:
        """Put the cursor on a request now, or as soon as a listing brings it."""
        if RowKey(uuid) in self.rows:
            self.move_cursor(row=self.get_row_index(uuid))
            self._select_next = None
        else:
            self._select_next = uuid

    def sync(self, items: list[dict[str, Any]], now: float) -> None:
        """Show exactly `items` (in that order): update cells in place, add and remove rows."""
        selected, old_row, old_scroll = self.selected_uuid, self.cursor_row, self.scroll_y
        wanted = {item["uuid"]: item for item in items}
        self._now = now
        rebuilt = self._relayout(wanted)
        for key in [key for key in self.rows if key.value not in wanted]:
            self.remove_row(key)
        for uuid, item in wanted.items():
            self._apply(uuid, _cells(item, now, self.fit))
        self.items = wanted
        self._order(list(wanted))
        if self._select_next in wanted:
            self.select(self._select_next or "")
        elif selected in wanted and rebuilt:
            self.select(selected or "")
        elif selected in wanted:
            self._keep(selected or "", old_row, old_scroll)

    def refresh_ages(self, now: float) -> None:
        for uuid, item in self.items.items():
            self._set(uuid, "age", fmt.age(item.get("time"), now))
            if item.get("due") is not None:  # "in 12s" counts down too
                self._set(uuid, "elapsed", _elapsed(item, now))

    def _apply(self, uuid: str, cells: dict[str, Any]) -> None:
        if RowKey(uuid) not in self.rows:
            self.add_row(*cells.values(), key=uuid)
            return
        for column, value in cells.items():
            self._set(uuid, column, value)

    def _set(self, uuid: str, column: str, value: Any) -> None:
        if self.get_cell(uuid, column) != value:
            self.update_cell(uuid, column, value)

    def _order(self, uuids: list[str]) -> None:
        if [row.key.value for row in self.ordered_rows] != uuids:
            position = {uuid: index for index, uuid in enumerate(uuids)}
            self.sort("url", key=lambda cell: position[cell.uuid])

    def _keep(self, uuid: str, old_row: int, old_scroll: float) -> None:
        """Keep the cursor on the same request; when rows arrive above it, keep the view still
        unless it was at the top (then the new rows show and the cursor moves down with its row)."""
        row = self.get_row_index(uuid)
        if row == old_row:
            return
        self.move_cursor(row=row, scroll=False)
        if old_scroll > 0:
            self.call_after_refresh(self.scroll_to, y=old_scroll + row - old_row, animate=False)

    def _relayout(self, items: dict[str, dict[str, Any]]) -> bool:
        """Fit the columns to the width and the methods of `items`; True if the rows were
        taken down to do so (the columns changed)."""
        methods = [len(str(item.get("method", ""))) for item in items.values()]
        method = min(max([METHOD_WIDTHS[0], *methods]), METHOD_WIDTHS[1])
        pad = 2 * self.cell_padding
        width = self.scrollable_content_region.width
        fixed = sum(w + pad for key, _, w in COLUMNS if key not in ("uuid", "method", "url"))
        url = width - fixed - (method + pad) - pad
        with_id = url - (8 + pad) >= URL_WIDTH_WITH_ID
        fit = Fit(with_id, method, max(MIN_URL_WIDTH, url - (8 + pad) * with_id))
        if fit == self.fit:
            return False
        rebuild = (fit.with_id, fit.method) != (self.fit.with_id, self.fit.method)
        self.fit = fit
        if rebuild:
            self.clear(columns=True)
            self._add_columns()
        else:
            self.columns[ColumnKey("url")].width = fit.url
            for uuid, item in self.items.items():
                self.update_cell(uuid, "url", UrlCell(uuid, _url(item, fit.url)), update_width=True)
        return rebuild

    def on_resize(self, event: events.Resize) -> None:
        if self._relayout(self.items) and self.items:
            selected = self.selected_uuid
            items, self.items = list(self.items.values()), {}
            self.sync(items, self._now)
            if selected:
                self.select(selected)


def _cells(item: dict[str, Any], now: float, fit: Fit) -> dict[str, Any]:
    result = item.get("result") or {}
    cells = {
        "uuid": IdCell(item["uuid"]),
        "method": Text(str(item.get("method", "")).upper(), no_wrap=True, overflow="ellipsis"),
        "url": UrlCell(item["uuid"], _url(item, fit.url)),
        "status": fmt.status_text(item.get("status")),
        "code": fmt.code_text(result.get("code")),
        "elapsed": _elapsed(item, now),
        "age": fmt.age(item.get("time"), now),
    }
    if not fit.with_id:
        del cells["uuid"]
    return cells


def _elapsed(item: dict[str, Any], now: float) -> Text:
    """How long it took; for a request waiting for its time (or its next attempt), when it
    is due; `deleted` once its response was."""
    result = item.get("result") or {}
    if item.get("due") is not None:
        return Text(fmt.until(item["due"], now), style="yellow", justify="right")
    if result.get("deleted"):
        return Text("deleted", style="dim italic", justify="right")
    return Text(fmt.elapsed(result.get("elapsed")), justify="right")


def _url(item: dict[str, Any], width: int) -> Text:
    """The URL, after how many attempts were made (once it was retried) and the user's `id`
    if it has one, and before why it failed if it did: the URL is cut before the reason is, down
    to a third of the width."""
    text = Text(no_wrap=True, overflow="ellipsis")
    attempts = item.get("attempts")
    if isinstance(attempts, int) and (attempts > 1 or item.get("due") is not None):
        text.append(f"{attempts}× ", style="yellow")  # noqa: RUF001 - a multiplication sign
    if item.get("id") is not None:
        text.append(f"{item['id']} ", style="cyan")
    text.append(str(item.get("url", "")))
    reason = (item.get("result") or {}).get("message")
    if reason and item.get("status") in (Status.ERROR, Status.TIMEOUT):
        why = Text(f"  {_short(str(reason))}", style="dim")
        room = max(width - why.cell_len, min(text.cell_len, width // 3))
        text.truncate(room, overflow="ellipsis")
        text.append_text(why)
    text.truncate(width, overflow="ellipsis", pad=True)
    return text


def _short(reason: str) -> str:
    """A failure's gist: its first clause ("Could not connect: [Errno 111] ..." -> "Could not
    connect")."""
    return reason.split(":", 1)[0].split(" (", 1)[0].rstrip(".")
