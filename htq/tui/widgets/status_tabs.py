"""The status filter: `1 all  2 queued  3 pending ...`, each with its count, clickable; and, at
the right, where the page is (`201-400 of 1,011`) once there is more than one."""

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
#: (short names, padding inside a tab, space between tabs), widest first.
_FORMS = ((False, " ", ""), (True, " ", ""), (True, "", "  "), (True, "", " "))


def filter_name(status: Status | None) -> str:
    return str(status) if status else "all"


class StatusTabs(Static):
    """Shows the active status filter and the count of each status (from /stats)."""

    active: reactive[Status | None] = reactive(None)
    counts: reactive[dict[str, Any]] = reactive(dict, always_update=True)
    info: reactive[str] = reactive("")

    def render(self) -> Content:
        """The widest form of the tabs that fits with the page info; every tab before the info
        (it goes when nothing else fits)."""
        width = self.content_region.width
        info = Content.styled(f"  {self.info} ", "$text-muted") if self.info else Content("")
        for shown in (info, Content("")):
            for short, pad, gap in _FORMS:
                tabs = self._tabs(short=short, pad=pad, gap=gap)
                room = width - tabs.cell_length - shown.cell_length
                if room >= 0:
                    return Content.assemble(tabs, " " * room, shown)
        return tabs

    def _tabs(self, *, short: bool, pad: str, gap: str) -> Content:
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
                pad,
            ).stylize(f"@click=screen.filter_status('{name}')")  # fmt: skip
            parts += [
                gap if number > 1 else "",
                tab.stylize("reverse") if status == self.active else tab,
            ]
        return Content.assemble(*parts)
