"""The form that queues a new request; the API's own 4xx message shows beside the field."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Input, Label, Select, Static, TextArea

from htq.tui import format as fmt
from htq.tui.api import ApiError, Unreachable
from htq.tui.context import HtqContext, context_of

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
AUTO = "auto"
#: The fields of the form, by the name the API gives them in a 422's `field`.
_FIELDS = frozenset({"url", "method", "headers", "data", "timeout", "id", "retries", "delay"})


class SubmitScreen(ModalScreen[tuple[str, str] | None]):
    """Dismisses with (uuid, url) once the server accepted the request, None if abandoned."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "send", "Queue it", tooltip="Send the form to the server"),
        Binding("escape", "abandon", "Close", key_display="esc", tooltip="Close without queuing"),
    ]

    @property
    def htq(self) -> HtqContext:
        return context_of(self.app)

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static("New request", id="title")
            with VerticalScroll(id="form"):
                with Horizontal(classes="row"):
                    yield Select(
                        [("auto: GET/POST", AUTO), *((m, m) for m in METHODS)],
                        value=AUTO,
                        allow_blank=False,
                        id="method",
                        compact=True,
                    )
                    yield Input(placeholder="https://example.com/path", id="url", compact=True)
                yield Label(classes="error", id="method-error")
                yield Label(classes="error", id="url-error")
                yield Label("Headers, one `Name: value` per line", classes="hint")
                yield TextArea(id="headers", compact=True, soft_wrap=False)
                yield Label(classes="error", id="headers-error")
                yield Label(
                    "Body: JSON objects and arrays go as JSON, the rest as text (auto: POST)",
                    classes="hint",
                )
                yield TextArea(id="data", compact=True)
                yield Label(classes="error", id="data-error")
                with Horizontal(classes="row"):
                    yield Label("Timeout (s)", classes="inline-hint")
                    yield Input(placeholder="60", id="timeout", type="number", compact=True)
                    yield Label("Id", classes="inline-hint")
                    yield Input(
                        placeholder="optional; queuing it again replaces this one",
                        id="id",
                        compact=True,
                    )
                yield Label(classes="error", id="timeout-error")
                yield Label(classes="error", id="id-error")
                with Horizontal(classes="row"):
                    yield Label("Retries", classes="inline-hint")
                    yield Input(placeholder="0", id="retries", type="integer", compact=True)
                    yield Label("Delay (s)", classes="inline-hint")
                    yield Input(
                        placeholder="0: send at once", id="delay", type="number", compact=True
                    )
                yield Label(classes="error", id="retries-error")
                yield Label(classes="error", id="delay-error")
                yield Label(classes="error", id="form-error")
            with Horizontal(id="buttons"):
                yield Button("Queue (ctrl+s)", id="send", variant="primary", compact=True)
                yield Button("Close (esc)", id="abandon", compact=True)
        # Its keys at the bottom, whatever the form's height: the list's would be wrong here.
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#url", Input).focus()

    @on(Button.Pressed, "#send")
    def _send_pressed(self) -> None:
        self.action_send()

    @on(Button.Pressed, "#abandon")
    def action_abandon(self) -> None:
        self.dismiss(None)

    @on(Input.Submitted)
    def _input_submitted(self) -> None:
        self.action_send()

    def action_send(self) -> None:
        self._clear_errors()
        try:
            payload = self.payload()
        except FieldError as exc:
            self._show_error(exc.field, exc.message)
            return
        self.send(payload)

    def payload(self) -> dict[str, Any]:
        """The request description from the form; FieldError names what is wrong where."""
        url = self.query_one("#url", Input).value.strip()
        if not url:
            raise FieldError("url", "The URL is required.")
        payload: dict[str, Any] = {"url": url}
        method = self.query_one("#method", Select).value
        if method != AUTO:
            payload["method"] = method
        try:
            headers = fmt.parse_headers(self.query_one("#headers", TextArea).text)
        except ValueError as exc:
            raise FieldError("headers", str(exc)) from None
        if headers:
            payload["headers"] = headers
        data = self.query_one("#data", TextArea).text
        if data.strip():
            payload["data"] = _body(data)
        self._number(payload, "timeout", "The timeout must be a number of seconds")
        ident = self.query_one("#id", Input).value.strip()
        if ident:
            payload["id"] = ident
        self._number(payload, "retries", "Retries must be a whole number", whole=True)
        self._number(payload, "delay", "The delay must be a number of seconds")
        return payload

    def _number(
        self, payload: dict[str, Any], field: str, must: str, *, whole: bool = False
    ) -> None:
        """The number typed in `#field`, if any, into the payload (whole ones as integers);
        FieldError (`must`, then what was typed) if it is not one."""
        typed = self.query_one(f"#{field}", Input).value.strip()
        if not typed:
            return
        try:
            number = float(typed) if not whole else int(typed)
        except ValueError:
            raise FieldError(field, f"{must}, not {typed!r}.") from None
        payload[field] = int(number) if float(number).is_integer() else number

    @work(exclusive=True, group="submit")
    async def send(self, payload: dict[str, Any]) -> None:
        button = self.query_one("#send", Button)
        button.disabled = True
        try:
            uuid = await self.htq.api.submit(payload)
        except Unreachable as exc:
            self.htq.failed(exc)
            self._show_error("form", f"The server cannot be reached ({exc.message}). Try again.")
            return
        except ApiError as exc:
            self._show_error(exc.field if exc.field in _FIELDS else "form", exc.message)
            return
        finally:
            button.disabled = False
        method = payload.get("method", "POST" if "data" in payload else "GET")
        self.notify(
            f"{method} {payload['url']}", title=f"Queued {fmt.short_uuid(uuid)}", markup=False
        )
        self.dismiss((uuid, payload["url"]))

    def _clear_errors(self) -> None:
        for label in self.query(".error").results(Label):
            label.update("")
            label.remove_class("-shown")

    def _show_error(self, field: str, message: str) -> None:
        label = self.query_one(f"#{field}-error", Label)
        label.update(Content(message))
        label.add_class("-shown")
        # Beside the field, not in a toast: a toast would cover the form.
        if field == "form":
            label.scroll_visible()
        else:
            self.query_one(f"#{field}").focus()


class FieldError(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _body(text: str) -> Any:
    """A JSON object or array goes as JSON (the worker sets its Content-Type); the rest as text."""
    if text.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(text)
        except ValueError:
            pass
    return text
