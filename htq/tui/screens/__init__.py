"""The TUI's screens: the request list, a request's detail, the submit form, help, confirm."""
