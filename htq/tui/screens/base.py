"""What the list and the detail screens share: the actions on one request, with their toasts."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from textual import work
from textual.binding import Binding, BindingType
from textual.css.query import NoMatches
from textual.screen import Screen

from htq.models import ANSWERED, Status
from htq.tui import format as fmt
from htq.tui.api import ApiError
from htq.tui.context import HtqContext, context_of
from htq.tui.curl import curl_command
from htq.tui.screens.confirm import ConfirmScreen


def request_bindings(*, footer: bool = True) -> list[BindingType]:
    """The keys of the actions on one request; each screen places them among its own. Without
    `footer`, `d` is left out of the footer (the list's is full at 80 columns)."""
    return [
        Binding("c", "cancel_request", "Cancel", tooltip="Cancel it (a stored response goes too)"),
        Binding(
            "d",
            "delete_response",
            "Delete resp.",
            show=footer,
            tooltip="Delete the stored response",
        ),
        Binding("y", "copy_curl", "Curl", tooltip="Copy the request as a curl command"),
        Binding("t", "retry_request", "Retry", tooltip="Queue a finished request again"),
        # Not in the footer (the screens refresh by themselves), in the help and palette.
        Binding("r", "refresh", "Refresh", show=False, tooltip="Ask the server again now"),
    ]


class RequestScreen(Screen[None]):
    """A screen about requests; subclasses say which one is current and how to show a change."""

    @property
    def htq(self) -> HtqContext:
        return context_of(self.app)

    @property
    def live(self) -> bool:
        """False once the app quits or this screen has left the stack (it is then taken down).

        A network answer can arrive after that, when the widgets it would fill are gone. A
        popped screen leaves the stack before Textual starts to remove its widgets.
        """
        return self.is_attached and self in self.app.screen_stack

    def when_live(self, show: Callable[[], None]) -> None:
        """Run `show` (which fills widgets) unless this screen is gone or going: the app may
        be quitting, its widgets removed while the screen still stands in the stack."""
        if self.live:
            with contextlib.suppress(NoMatches):
                show()

    def current_request(self) -> dict[str, Any] | None:
        """The request the actions apply to."""
        raise NotImplementedError

    def response_deleted(self) -> bool:
        """True if the current request's response is known to be deleted (as listings say)."""
        request = self.current_request() or {}
        return bool((request.get("result") or {}).get("deleted"))

    def changed(self, uuid: str) -> None:
        """A request was changed by an action here: show its new state."""
        raise NotImplementedError

    def action_refresh(self) -> None:
        raise NotImplementedError

    def _chosen(self) -> tuple[str, str, Status | None] | None:
        request = self.current_request()
        if request is None:
            self.notify("No request selected.", severity="warning")
            return None
        uuid = str(request["uuid"])
        return uuid, fmt.short_uuid(uuid), fmt.parse_status(request.get("status"))

    def action_cancel_request(self) -> None:
        chosen = self._chosen()
        if chosen is None:
            return
        uuid, short, status = chosen
        if status is Status.CANCELED:
            self.notify(f"{short} is already canceled.")
            return
        consequence = (
            "Its stored response will be deleted."
            if status in ANSWERED
            else "A worker sending it is interrupted and the target gets a DELETE."
        )
        self.app.push_screen(
            ConfirmScreen(f"Cancel request {short}?\n{consequence}", yes="Cancel it", no="Keep it"),
            partial(self._confirmed, self._cancel, uuid, short),
        )

    def action_delete_response(self) -> None:
        chosen = self._chosen()
        if chosen is None:
            return
        uuid, short, status = chosen
        if status not in ANSWERED:
            self.notify(f"{short} has no stored response ({status}).", severity="warning")
            return
        if self.response_deleted():
            self.notify(f"The response of {short} was deleted already.", severity="warning")
            return
        self.app.push_screen(
            ConfirmScreen(f"Delete the stored response of {short}?", yes="Delete", no="Keep"),
            partial(self._confirmed, self._delete_response, uuid, short),
        )

    def action_retry_request(self) -> None:
        chosen = self._chosen()
        if chosen is None:
            return
        uuid, short, status = chosen
        if status not in ANSWERED and status is not Status.CANCELED:
            self.notify(f"{short} is {status}: only a finished request is retried.")
            return
        self._act(self.htq.api.retry, uuid, f"retry {short}", f"Queued {short} again.")

    def action_copy_curl(self) -> None:
        chosen = self._chosen()
        if chosen is not None:
            self._copy_curl(*chosen[:2])

    @work(group="request-action")
    async def _copy_curl(self, uuid: str, short: str) -> None:
        request = self.current_request()
        if request is None or "headers" not in request:  # listings carry no headers or body
            try:
                request = await self.htq.api.get(uuid)
            except ApiError as exc:
                self.notify(f"Could not read {short}: {exc.message}", severity="error")
                return
        try:
            command = curl_command(request)
        except (KeyError, TypeError, ValueError) as exc:
            self.notify(f"Cannot build a curl command: {exc}", severity="error")
            return
        self.app.copy_to_clipboard(command.text)
        note = ""
        if command.variables:
            names = ", ".join(f"${name}" for name in command.variables)
            note = f"\n\nThe server masks credentials: set {names} before running it."
        self.notify(command.text + note, title="Copied as curl", markup=False, timeout=8)

    @staticmethod
    def _confirmed(
        act: Callable[[str, str], object], uuid: str, short: str, yes: bool | None
    ) -> None:
        if yes:
            act(uuid, short)

    def _cancel(self, uuid: str, short: str) -> None:
        self._act(self.htq.api.cancel, uuid, f"cancel {short}", f"Canceled {short}.")

    def _delete_response(self, uuid: str, short: str) -> None:
        self._act(
            self.htq.api.delete_response,
            uuid,
            f"delete the response of {short}",
            f"Deleted the stored response of {short}.",
        )

    # Actions change the queue, so one must never cancel another: not exclusive.
    @work(group="request-action")
    async def _act(
        self, call: Callable[[str], Awaitable[None]], uuid: str, what: str, done: str
    ) -> None:
        """`call(uuid)`, then say it was `done` and show the change; or say why not."""
        try:
            await call(uuid)
        except ApiError as exc:
            self.notify(f"Could not {what}: {exc.message}", severity="error")
            return
        self.notify(done)
        self.changed(uuid)
