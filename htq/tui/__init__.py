"""The terminal UI: a Textual app that watches and drives an htq server through its REST API."""

from htq.tui.app import HtqApp, create_app, run_tui

__all__ = ["HtqApp", "create_app", "run_tui"]
