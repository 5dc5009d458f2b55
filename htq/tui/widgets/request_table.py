"""The live table of requests: rows keyed by uuid, updated in place so nothing jumps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, RowKey

from htq.models import Status
from htq.tui import format as fmt

#: (key, label, width); the URL takes whatever width is left.
COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("uuid", "ID", 8),
    ("method", "Method", 7),
    ("url", "URL", 0),
    ("status", "Status", 8),
    ("code", "Code", 4),
    ("elapsed", "Elapsed", 8),
    ("age", "Age", 4),
)
MIN_URL_WIDTH = 20


@dataclass(frozen=True, slots=True)
class IdCell:
    """The short id shown in the ID column; carries the full uuid for ordering."""

    uuid: str

    def __rich__(self) -> Text:
        return Text(fmt.short_uuid(self.uuid), style="dim")


class RequestTable(DataTable[Any]):
    """Requests, newest first. `sync()` applies a fresh listing without moving the selection."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Open", tooltip="Show the request and its response"),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("g", "scroll_top", "Top", show=False),
        Binding("G", "scroll_bottom", "Bottom", show=False),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.items: dict[str, dict[str, Any]] = {}
        self._url_width = 0
        self._select_next: str | None = None

    def on_mount(self) -> None:
        for key, label, width in COLUMNS:
            self.add_column(label, key=key, width=width or None)

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
        for key in [key for key in self.rows if key.value not in wanted]:
            self.remove_row(key)
        width = self._fit_url_width()
        resized, self._url_width = width != self._url_width, width
        for uuid, item in wanted.items():
            self._apply(uuid, _cells(item, now, width), resized)
        self.items = wanted
        self._order(list(wanted))
        if self._select_next in wanted:
            self.select(self._select_next or "")
        elif selected in wanted:
            self._keep(selected or "", old_row, old_scroll)

    def refresh_ages(self, now: float) -> None:
        for uuid, item in self.items.items():
            self._set(uuid, "age", fmt.age(item.get("time"), now))
            if item.get("due") is not None:  # "in 12s" counts down too
                self._set(uuid, "elapsed", _elapsed(item, now))

    def _apply(self, uuid: str, cells: dict[str, Any], resized: bool) -> None:
        if RowKey(uuid) not in self.rows:
            self.add_row(*cells.values(), key=uuid)
            return
        for column, value in cells.items():
            self._set(uuid, column, value, update_width=resized and column == "url")

    def _set(self, uuid: str, column: str, value: Any, *, update_width: bool = False) -> None:
        if update_width or self.get_cell(uuid, column) != value:
            self.update_cell(uuid, column, value, update_width=update_width)

    def _order(self, uuids: list[str]) -> None:
        if [row.key.value for row in self.ordered_rows] != uuids:
            position = {uuid: index for index, uuid in enumerate(uuids)}
            self.sort("uuid", key=lambda cell: position[cell.uuid])

    def _keep(self, uuid: str, old_row: int, old_scroll: float) -> None:
        """Keep the cursor on the same request; when rows arrive above it, keep the view still
        unless it was at the top (then the new rows show and the cursor moves down with its row)."""
        row = self.get_row_index(uuid)
        if row == old_row:
            return
        self.move_cursor(row=row, scroll=False)
        if old_scroll > 0:
            self.call_after_refresh(self.scroll_to, y=old_scroll + row - old_row, animate=False)

    def _fit_url_width(self) -> int:
        others = sum(width + 2 * self.cell_padding for key, _, width in COLUMNS if key != "url")
        available = self.scrollable_content_region.width - others - 2 * self.cell_padding
        return max(MIN_URL_WIDTH, available)

    def on_resize(self, event: events.Resize) -> None:
        width = self._fit_url_width()
        if width != self._url_width and self.items:
            self._url_width = width
            for uuid, item in self.items.items():
                self._set(uuid, "url", _url(item, width), update_width=True)


def _cells(item: dict[str, Any], now: float, url_width: int) -> dict[str, Any]:
    result = item.get("result") or {}
    return {
        "uuid": IdCell(item["uuid"]),
        "method": str(item.get("method", "")).upper(),
        "url": _url(item, url_width),
        "status": fmt.status_text(item.get("status")),
        "code": fmt.code_text(result.get("code")),
        "elapsed": _elapsed(item, now),
        "age": fmt.age(item.get("time"), now),
    }


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
    if it has one, and before why it failed if it did."""
    text = Text(no_wrap=True, overflow="ellipsis")
    attempts = item.get("attempts")
    if isinstance(attempts, int) and (attempts > 1 or item.get("due") is not None):
        text.append(f"{attempts}× ", style="yellow")  # noqa: RUF001 - a multiplication sign
    if item.get("id") is not None:
        text.append(f"{item['id']} ", style="cyan")
    text.append(str(item.get("url", "")))
    reason = (item.get("result") or {}).get("message")
    if reason and item.get("status") in (Status.ERROR, Status.TIMEOUT):
        text.append(f"  {_short(str(reason))}", style="dim")
    text.truncate(width, overflow="ellipsis", pad=True)
    return text


def _short(reason: str) -> str:
    """A failure's gist: its first clause ("Could not connect: [Errno 111] ..." -> "Could not
    connect")."""
    return reason.split(":", 1)[0].split(" (", 1)[0].rstrip(".")
