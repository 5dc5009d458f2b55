"""The status filter: `1 all  2 queued  3 pending ...`, each with its count, clickable."""

from __future__ import annotations

from typing import Any

from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Static

from htq.models import Status
from htq.tui.format import STATUS_STYLE

#: The filters in key order: key 1 is every status, then the statuses in their life order.
FILTERS: tuple[Status | None, ...] = (None, *Status.__members__.values())


#: Names for a narrow terminal.
SHORT_NAMES = {
    "queued": "queue",
    "pending": "pend",
    "success": "ok",
    "error": "err",
    "timeout": "t/o",
    "canceled": "canc",
}


def filter_name(status: Status | None) -> str:
    return str(status) if status else "all"


class StatusTabs(Static):
    """Shows the active status filter and the count of each status (from /stats)."""

    active: reactive[Status | None] = reactive(None)
    counts: reactive[dict[str, Any]] = reactive(dict, always_update=True)

    def render(self) -> Content:
        wide = self._tabs(short=False)
        return wide if wide.cell_length <= self.size.width else self._tabs(short=True)

    def _tabs(self, *, short: bool) -> Content:
        """Every tab; `short` names and tighter spacing where the full ones would not fit
        (at 80 columns, say)."""
        pad = "" if short else " "
        parts: list[Content | str] = []
        for number, status in enumerate(FILTERS, start=1):
            name = filter_name(status)
            count = self.counts.get("total") if status is None else self.counts.get(str(status))
            tab = Content.assemble(
                pad,
                (str(number), "$text-muted"),
                " ",
                (SHORT_NAMES.get(name, name) if short else name,
                 f"ansi_{STATUS_STYLE[status]}" if status else ""),
                ("" if count is None else f" {count:,}", "$text-muted"),
                " ",
            ).stylize(f"@click=screen.filter_status('{name}')")  # fmt: skip
            parts.append(tab.stylize("reverse") if status == self.active else tab)
        return Content.assemble(*parts)
