"""The small pieces the document is built from: references, content, patterns."""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]

UUID_PATTERN = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
#: RFC 9110 token characters: what a method or a header name may hold.
TOKEN_CHARS = "!#$%&'*+.^_`|~0-9A-Za-z-"
NO_CONTROL = "^[^\\x00-\\x1f\\x7f]+$"
#: A header value: Latin-1 (what HTTP carries) without control characters but the tab.
HEADER_VALUE = "^[\\t\\x20-\\x7e\\x80-\\xff]*$"
#: An `Idempotency-Key`: visible ASCII.
IDEMPOTENCY_KEY = "^[\\x21-\\x7e]+$"
#: The relations of a request's `Link` header, in the order it gives them (the spec's three,
#: then htq's own).
LINKS = ("response", "self", "status", "attempts")


def ref(kind: str, name: str) -> Json:
    return {"$ref": f"#/components/{kind}/{name}"}


def schema_ref(name: str) -> Json:
    return ref("schemas", name)


def content(schema: Json) -> Json:
    """A JSON body of this schema."""
    return {"application/json": {"schema": schema}}


def any_case(word: str) -> str:
    """A regular expression matching `word` in any case (JSON Schema patterns have no flags)."""
    return "".join(f"[{c.upper()}{c}]" if c.isalpha() else c for c in word)
