"""Settings as frozen dataclasses built from parsed options; the only module reading env vars."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

from htq.errors import ConfigError

T = TypeVar("T")

DEFAULT_PREFIX = "htq"
DEFAULT_TTL = 7 * 24 * 3600
DEFAULT_MAX_BODY = 10 * 1024 * 1024
DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024

# Always fullmatched: `$` would let a trailing newline through.
_PREFIX = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_HOST_PORT = re.compile(
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[^:/\s\[\]]+)(?::(?P<port>[0-9]+))?(?:/(?P<db>[0-9]+))?"
)


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """Where the shared state lives and how long finished requests are kept."""

    redis_url: str = "redis://localhost:6379/0"
    prefix: str = DEFAULT_PREFIX
    ttl: int = DEFAULT_TTL  # seconds a finished request is kept; 0 keeps it forever


@dataclass(frozen=True, slots=True)
class OutboundConfig:
    """Where workers may send (see htq/outbound.py); the server refuses literal addresses."""

    allow: tuple[str, ...] = ()  # hosts, *.domain patterns, addresses, networks
    deny: tuple[str, ...] = ()  # the same; "*" for everything not allowed
    deny_private: bool = False  # refuse every address that is not global
    any_method: bool = False  # send methods that are not HTTP's too


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "localhost"
    port: int = 5000
    store: StoreConfig = field(default_factory=StoreConfig)
    debug: bool = False
    xheaders: bool = False
    processes: int = 1  # 0 = one per core
    max_body: int = DEFAULT_MAX_BODY
    max_timeout: float = 3600.0  # the longest `timeout` a request may ask for
    show_secrets: bool = False  # show credential headers and URL passwords unmasked
    allowed_hosts: tuple[str, ...] = ()  # Host names answered besides loopback ones; "*": any
    cors_origins: tuple[str, ...] = ()  # web origins that may call the API; "*": any
    tokens: tuple[str, ...] = field(default=(), repr=False)  # bearer tokens; none: no auth
    outbound: OutboundConfig = field(default_factory=OutboundConfig)
    idempotency_ttl: float = 86400.0  # seconds an Idempotency-Key is remembered
    header_timeout: float = 10.0  # seconds a new connection has to send a request head, whole
    body_timeout: float = 60.0  # seconds a request body may take, whole
    idle_timeout: float = 60.0  # seconds a kept-alive connection waits for its next request
    max_connections: int = 0  # open connections at most; 0: the descriptor limit less a reserve


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    threads: int = 10
    store: StoreConfig = field(default_factory=StoreConfig)
    debug: bool = False
    lease: float = 10.0  # seconds a claim lasts without renewal
    grace: float = 30.0  # seconds in-flight requests may finish after SIGTERM
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    trust_env: bool = False  # honour HTTP(S)_PROXY and friends
    max_attempts: int = 3  # deliveries before a request whose workers keep dying is an error
    outbound: OutboundConfig = field(default_factory=OutboundConfig)
    signing_secrets: tuple[str, ...] = field(default=(), repr=False)  # whsec_...; first current


@dataclass(frozen=True, slots=True)
class TuiConfig:
    url: str = "http://localhost:5000/"
    interval: float = 1.0
    token: str | None = field(default=None, repr=False)  # sent as `Authorization: Bearer`


def env_name(option: str) -> str:
    """`--max-response-bytes` -> `HTQ_MAX_RESPONSE_BYTES`."""
    return "HTQ_" + option.lstrip("-").upper().replace("-", "_")


def merge_env(
    args: Mapping[str, Any], argv: Sequence[str], environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Options not given on the command line take their HTQ_* environment variable, if set."""
    environ = os.environ if environ is None else environ
    given = {arg.split("=", 1)[0] for arg in argv if arg.startswith("--")}
    merged = dict(args)
    for option, value in args.items():
        if not option.startswith("--") or option in given or option in ("--help", "--version"):
            continue
        env = environ.get(env_name(option))
        if env is None:
            continue
        if isinstance(value, bool):
            merged[option] = env.strip().lower() in ("1", "true", "yes", "on")
        else:
            merged[option] = env
    return merged


def explicitly_set(
    option: str, argv: Sequence[str], environ: Mapping[str, str] | None = None
) -> bool:
    environ = os.environ if environ is None else environ
    given = {arg.split("=", 1)[0] for arg in argv if arg.startswith("--")}
    return option in given or env_name(option) in environ


MIN_TOKEN_LENGTH = 16
# RFC 6750's b64token: what a Bearer header can carry as is.
_TOKEN = re.compile(r"[A-Za-z0-9._~+/-]+=*")


def tokens(
    given: Sequence[str], path: str | None, environ: Mapping[str, str] | None = None
) -> tuple[str, ...]:
    """The server's tokens: `--token` (each; HTQ_TOKEN), HTQ_TOKENS (comma-separated),
    `--token-file` (one per line; blank lines and `#` comments skipped). None: no auth."""
    listed = (os.environ if environ is None else environ).get("HTQ_TOKENS")
    from_env = [part.strip() for part in (listed or "").split(",") if part.strip()]
    if listed is not None and not from_env:
        raise ConfigError(
            "HTQ_TOKENS is empty: give it tokens, comma-separated, or unset HTQ_TOKENS to run "
            "without any"
        )
    found = [*given, *from_env]
    where = {token: "--token" for token in given}
    if path:
        try:
            with open(path, encoding="utf-8") as file:
                lines = [line.strip() for line in file]
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise ConfigError(f"--token-file: cannot read {path}: {reason}") from None
        from_file = [line for line in lines if line and not line.startswith("#")]
        if not from_file:
            raise ConfigError(f"--token-file: {path} holds no token (one per line)")
        found += from_file
        where.update({token: "--token-file" for token in from_file})
    for token in found:
        check_token(token, where.get(token, "HTQ_TOKENS"))
    return tuple(dict.fromkeys(found))


def check_token(token: str, option: str) -> str:
    if not token:
        raise ConfigError(f"{option}: the token is empty")
    if not _TOKEN.fullmatch(token):
        raise ConfigError(
            f"{option}: a token is letters, digits and -._~+/ (then any =), with no spaces"
        )
    if len(token) < MIN_TOKEN_LENGTH:
        raise ConfigError(
            f"{option}: a token must be at least {MIN_TOKEN_LENGTH} characters (make one with: "
            'python3 -c "import secrets; print(secrets.token_urlsafe())")'
        )
    return token


def redis_url(address: str) -> str:
    """Turn the spec's `host:port[/db]` or a redis://, rediss://, unix:// URL into a URL."""
    address = address.strip()
    if "://" in address:
        scheme = address.split("://", 1)[0].lower()
        if scheme not in ("redis", "rediss", "unix"):
            raise ConfigError(
                f"--redis: unsupported scheme {scheme!r} in {address!r}; "
                "use host:port, redis://, rediss:// or unix://"
            )
        try:
            parts = urlsplit(address)
            parts.port  # noqa: B018 - validates the port
        except ValueError as exc:
            raise ConfigError(f"--redis: invalid URL {address!r}: {exc}") from None
        if scheme == "unix" and not parts.path:
            raise ConfigError(f"--redis: {address!r} names no socket path")
        if scheme != "unix" and not parts.hostname:
            raise ConfigError(f"--redis: {address!r} names no host")
        return address
    match = _HOST_PORT.fullmatch(address)
    if not match:
        raise ConfigError(
            f"--redis: expected host:port, host:port/db or a redis:// URL, not {address!r}"
        )
    port = int(match["port"] or 6379)
    if not 0 < port < 65536:
        raise ConfigError(f"--redis: port must be 1-65535, not {port}")
    return f"redis://{match['host']}:{port}/{int(match['db'] or 0)}"


def describe_redis(url: str) -> str:
    """A short, password-free name for a Redis URL, for messages."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"unix:{parts.path}"
    host = parts.hostname or "localhost"
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{parts.port or 6379}"


def number(
    option: str, raw: Any, kind: Callable[[str], T], *, low: float, high: float | None = None
) -> T:
    """Parse an option value as `kind` within [low, high], or raise a one-line ConfigError."""
    try:
        value = kind(str(raw).strip())
    except ValueError:
        raise ConfigError(f"{option}: expected a number, not {raw!r}") from None
    if value < low or (high is not None and value > high):  # type: ignore[operator]
        bound = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
        raise ConfigError(f"{option}: must be {bound}, not {raw}")
    return value


def prefix(raw: str) -> str:
    if not _PREFIX.fullmatch(raw):
        raise ConfigError(f"--prefix: use 1-64 letters, digits or _.:- characters, not {raw!r}")
    return raw


def http_url(raw: str) -> str:
    """The TUI's server URL: http(s) with a host, always ending in '/'."""
    parts = urlsplit(raw if "://" in raw else f"http://{raw}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"--url: expected the server's http:// URL, such as http://localhost:5000/, not {raw!r}"
        )
    try:
        parts.port  # noqa: B018 - validates the port
    except ValueError:
        raise ConfigError(f"--url: invalid port in {raw!r}") from None
    url = parts.geturl()
    return url if url.endswith("/") else url + "/"
