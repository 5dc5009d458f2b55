"""Who may call the API: bearer tokens, and the Host and Origin checks (DNS rebinding, CSRF).

htq sends requests for whoever reaches its API. With tokens (`--token`, `HTQ_TOKENS`,
`--token-file`), every call but `/healthz` needs `Authorization: Bearer <token>` (401
otherwise). Whatever the tokens, a web page the user opens must not be able to call it:
- a page rebound to 127.0.0.1 sends `Host: attacker.example`: refused unless that host is
  allowed (by default, when bound to a loopback address, only loopback names are);
- a page sends its `Origin`: refused unless `--cors-origins` names it (none by default);
  allowed origins get CORS answers, preflight included.
Bodies of POST / must be JSON (`application/json`), which a browser cannot send cross-site
without a preflight (the handler answers 415 otherwise).
"""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass, field

from htq.errors import ClientError, Forbidden, Unauthorized

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost"})
#: What a preflight may ask for.
ALLOW_METHODS = "GET, POST, DELETE, OPTIONS"
ALLOW_HEADERS = "Content-Type, Authorization, Idempotency-Key"


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    host = host.strip("[]").lower()
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str:
    """The name in a Host header, without its port (`[::1]:5000` -> `::1`)."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


@dataclass(frozen=True, slots=True)
class Tokens:
    """The bearer tokens a server accepts; none: every caller is accepted (local use)."""

    accepted: tuple[bytes, ...] = field(default=(), repr=False)

    @classmethod
    def of(cls, tokens: tuple[str, ...]) -> Tokens:
        return cls(tuple(token.encode("ascii") for token in tokens))

    def check(self, authorization: str | None) -> None:
        if not self.accepted:
            return
        if authorization is None:
            raise Unauthorized(
                "This server needs a token: send `Authorization: Bearer <token>`.", _CHALLENGE
            )
        scheme, _, given = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            raise Unauthorized(
                "The Authorization header must be `Bearer <token>`.",
                f'{_CHALLENGE}, error="invalid_request"',
            )
        # Latin-1 is how the header was decoded; compared with every token, in constant time.
        candidate = given.strip().encode("latin-1", "replace")
        matched = False
        for token in self.accepted:
            matched |= hmac.compare_digest(candidate, token)
        if not matched:
            raise Unauthorized(
                "This token is not one the server accepts.", f'{_CHALLENGE}, error="invalid_token"'
            )


_CHALLENGE = 'Bearer realm="htq"'


@dataclass(frozen=True, slots=True)
class Guard:
    """The checks of one server, from its settings."""

    bound_host: str
    allowed_hosts: frozenset[str]  # lower-case names; "*" allows any
    cors_origins: frozenset[str]  # exact origins; "*" allows any
    tokens: Tokens = field(default_factory=Tokens)
    # Host headers seen and found allowed: every request checks, on the enqueue path.
    _answered: set[str] = field(default_factory=set, init=False, repr=False, compare=False)

    @classmethod
    def of(
        cls,
        bound_host: str,
        allowed: tuple[str, ...],
        origins: tuple[str, ...],
        tokens: tuple[str, ...] = (),
    ) -> Guard:
        hosts = frozenset(host_name(h) if h != "*" else "*" for h in allowed if h)
        if not is_loopback(bound_host) and not hosts:
            hosts = frozenset({"*"})  # bound for the network: any name, unless told otherwise
        cors = frozenset(o.rstrip("/") for o in origins if o)
        return cls(bound_host.lower(), hosts, cors, Tokens.of(tokens))

    def check_host(self, header: str) -> None:
        if header in self._answered or "*" in self.allowed_hosts:
            return
        name = host_name(header)
        if name in self.allowed_hosts or name == self.bound_host or is_loopback(name):
            if len(self._answered) < 1024:  # a bound: Host headers are the client's to vary
                self._answered.add(header)
            return
        raise ClientError(
            f"This server does not answer to the host {name!r}; start it with "
            f"--allowed-hosts {name} if it should."
        )

    def origin_allowed(self, origin: str | None) -> bool:
        """None: no Origin (not a browser's cross-origin call); else whether it may call."""
        return origin is None or "*" in self.cors_origins or origin in self.cors_origins

    def check_origin(self, origin: str | None) -> None:
        if not self.origin_allowed(origin):
            raise Forbidden(
                f"Web pages from {origin} may not call this server; start it with "
                f"--cors-origins {origin} if they should."
            )
