"""HTTP Task Queue (htq) command-line interface

Usage:
    htq server [--host <host>] [--port <port>] [--redis <redis>] [--debug]
    htq worker [--threads <n>] [--redis <redis>] [--debug]
    htq tui [--url <url>] [--interval <seconds>]
    htq up [--host <host>] [--port <port>] [--redis <redis>] [--threads <n>] [--debug]
    htq (server|worker|up) [options]
    htq -h | --help
    htq -v | --version

Options:
    -h --help           Show this screen.
    -v --version        Show version.
    --debug             Turns on debug logging.
    --host <host>       Host of the HTTP service [default: localhost].
    --port <port>       Port of the HTTP service [default: 5000].
    --redis <redis>     Host/port of the Redis server [default: localhost:6379].
    --threads <n>       Number of threads a worker should spawn [default: 10].

More options:
    --prefix <name>     Namespace of htq's keys in Redis [default: htq].
    --ttl <seconds>     Keep finished requests this long, 0 = forever [default: 604800].
    --xheaders          Server: trust X-Forwarded-* headers (behind a proxy).
    --processes <n>     Server: processes to fork, 0 = one per core [default: 1].
    --max-body <bytes>  Server: largest request description accepted [default: 10485760].
    --max-timeout <seconds>  Server: longest `timeout` a request may ask for [default: 3600].
    --idempotency-ttl <seconds>  Server: remember Idempotency-Keys this long [default: 86400].
    --show-secrets      Server: show credential headers and URL passwords unmasked.
    --header-timeout <seconds>  Server: time a connection has to send a request's head
                        [default: 10].
    --body-timeout <seconds>  Server: time a request's body may take, whole [default: 60].
    --idle-timeout <seconds>  Server: close kept-alive connections idle this long [default: 60].
    --max-connections <n>  Server: open connections at most, 0 = the descriptor limit less
                        a reserve [default: 0].
    --allowed-hosts <hosts>  Server: more Host names to answer, comma-separated (* any).
    --cors-origins <origins>  Server: web origins that may call it, comma-separated.
    --token <token>     Server: require this bearer token (repeatable; HTQ_TOKENS=a,b).
                        TUI: send it (HTQ_TOKEN).
    --token-file <file>  Server: require one of the tokens in this file, one per line.
    --allow <hosts>     Send to these even if refused otherwise: hosts, *.domains, networks.
    --deny <hosts>      Never send to these (same forms, comma-separated; * for all).
    --deny-private      Never send to loopback, private or other non-public addresses.
    --any-method        Send methods that are not HTTP's (RFC 9110, WebDAV) too.
    --lease <seconds>   Worker: a claim lasts this long unless renewed [default: 10].
    --grace <seconds>   Worker: time in-flight requests get after SIGTERM [default: 30].
    --max-response-bytes <bytes>  Worker: cut response bodies above this [default: 10485760].
    --signing-secret <secrets>  Worker: sign requests (Standard Webhooks) with these
                        whsec_... secrets, comma-separated (the first is current).
    --trust-env         Worker: use HTTP(S)_PROXY and other proxy variables.
    --data-dir <dir>    Up: where the embedded Valkey keeps its data [default: .htq].
    --url <url>         TUI: the htq server to talk to [default: http://localhost:5000/].
    --interval <seconds>  TUI: seconds between refreshes [default: 1].

Every option can also be set by an environment variable named HTQ_ and the option's
name in capitals, with dashes as underscores: HTQ_REDIS, HTQ_PORT, HTQ_MAX_RESPONSE_BYTES...
A command-line option wins over its variable.

`htq up` runs the server and a worker together on an embedded Valkey that keeps its data
in the data directory, unless a Redis is named with --redis or HTQ_REDIS.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import Any

from docopt import DocoptExit, docopt

from htq import __version__
from htq._sockets import raise_descriptor_limit
from htq.config import (
    OutboundConfig,
    ServerConfig,
    StoreConfig,
    TuiConfig,
    WorkerConfig,
    check_token,
    explicitly_set,
    http_url,
    merge_env,
    number,
    prefix,
    redis_url,
    tokens,
)
from htq.errors import ConfigError
from htq.outbound import Rules
from htq.signing import decode_secret

# Which options each command takes (the `[options]` line accepts all; the rest are refused).
_COMMON = {"--redis", "--debug", "--prefix", "--ttl"}
_OUTBOUND = {"--allow", "--deny", "--deny-private", "--any-method"}
_SERVER = (
    _COMMON
    | _OUTBOUND
    | {
        "--host",
        "--port",
        "--xheaders",
        "--processes",
        "--max-body",
        "--max-timeout",
        "--idempotency-ttl",
        "--show-secrets",
        "--header-timeout",
        "--body-timeout",
        "--idle-timeout",
        "--max-connections",
        "--allowed-hosts",
        "--cors-origins",
        "--token",
        "--token-file",
    }
)
_WORKER = (
    _COMMON
    | _OUTBOUND
    | {
        "--threads",
        "--lease",
        "--grace",
        "--max-response-bytes",
        "--trust-env",
        "--signing-secret",
    }
)
_ALLOWED = {
    "server": _SERVER,
    "worker": _WORKER,
    # one server process beside the worker; its Valkey's data directory
    "up": (_SERVER - {"--processes"}) | _WORKER | {"--data-dir"},
    "tui": {"--url", "--interval", "--token"},
}


def _parsing_usage(doc: str) -> str:
    """The usage docopt parses: the printed one, each command line also taking [options].

    docopt's [options] stands only for options no pattern names, so the spec's lines (kept
    verbatim in the help) get it appended here, and the summary line is dropped.
    """
    lines = []
    for line in doc.splitlines():
        if line.strip().startswith("htq (server|worker|up)"):
            continue
        if line.strip().startswith(("htq server", "htq worker", "htq up", "htq tui")):
            line += " [options]"
        lines.append(line)
    return "\n".join(lines)


_USAGE = _parsing_usage(__doc__ or "")


# What each command does, for its own help (`htq <command> -h`).
_PURPOSE = {
    "server": "Run the HTTP REST interface (the API that queues, shows and cancels requests).",
    "worker": "Send the queued requests in the background and store their responses.",
    "up": "Run the server and a worker in one process, on an embedded Valkey unless --redis.",
    "tui": "Watch, submit and cancel requests in the terminal, through the server's API.",
}


def command_help(command: str) -> str:
    """One line on what the command does, its usage and only its options."""
    doc = __doc__ or ""
    usage = next(
        line.strip() for line in doc.splitlines() if line.strip().startswith(f"htq {command} ")
    )
    options, included = [], False
    for line in doc.splitlines():
        if line.startswith("    -"):
            included = _option_name(line) in _ALLOWED[command] | {"--help"}
        elif not line.startswith(" " * 8):  # not an option's second line
            included = False
        if included:
            options.append(line)
    env = "Each option can also be set as HTQ_<NAME> (e.g. HTQ_REDIS); see `htq -h`."
    return "\n".join(
        [_PURPOSE[command], "", "Usage:", f"    {usage}", "", "Options:", *options, "", env]
    )


def _option_name(line: str) -> str:
    return next((word for word in line.split() if word.startswith("--")), "").rstrip(",")


def _known_options() -> set[str]:
    return {_option_name(line) for line in (__doc__ or "").splitlines() if line.startswith("    -")}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in _PURPOSE and any(arg in ("-h", "--help") for arg in argv[1:]):
        print(command_help(argv[0]))
        return 0
    unknown = [
        arg.split("=", 1)[0]
        for arg in argv
        if arg.startswith("--") and arg.split("=", 1)[0] not in _known_options()
    ]
    if unknown:
        print(f"htq: unknown option {unknown[0]} (see htq -h)", file=sys.stderr)
        return 2
    try:
        given_tokens, rest = _take_tokens(argv)
    except ConfigError as exc:
        print(f"htq: {exc.message}", file=sys.stderr)
        return 2
    try:
        args: dict[str, Any] = docopt(_USAGE, argv=rest, default_help=False)
    except DocoptExit:
        usage = (__doc__ or "").split("\n\n")[1]
        what = f"not a valid command line: htq {' '.join(argv)}" if argv else "which command?"
        print(
            f"htq: {what}\n\n{usage}\n\nSee `htq -h` for every command and option, "
            "`htq <command> -h` for one.",
            file=sys.stderr,
        )
        return 2
    if args["--help"]:
        print((__doc__ or "").strip())
        return 0
    if args["--version"]:
        print(f"htq {__version__}")
        return 0
    command = next(c for c in ("server", "worker", "tui", "up") if args[c])
    try:
        _refuse_foreign_options(command, argv)
        options = merge_env(args, argv)
        options["--token"] = token_option(command, given_tokens, options["--token"])
        return _dispatch(command, options, argv)
    except ConfigError as exc:
        print(f"htq {command}: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _take_tokens(argv: list[str]) -> tuple[list[str], list[str]]:
    """Every `--token` given, and the rest of the command line: the option repeats, which
    docopt's `[options]` does not allow."""
    tokens: list[str] = []
    rest: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg == "--token":
            value = next(args, None)
            if value is None or value.startswith("--"):
                raise ConfigError("--token requires a value")
            tokens.append(value)
        elif arg.startswith("--token="):
            tokens.append(arg.split("=", 1)[1])
        else:
            rest.append(arg)
    return tokens, rest


def token_option(command: str, given: list[str], env: str | None) -> list[str]:
    """The `--token` values: those given, else HTQ_TOKEN's. An empty HTQ_TOKEN is no token for
    the TUI, and an error for a server: a variable set to nothing must not start it unguarded."""
    if given or env is None:
        return given
    if env.strip():
        return [env]
    if command in ("server", "up"):
        raise ConfigError(
            "HTQ_TOKEN is empty: give it a token, or unset HTQ_TOKEN to run without one"
        )
    return []


def _refuse_foreign_options(command: str, argv: Sequence[str]) -> None:
    for arg in argv:
        name = arg.split("=", 1)[0]
        if name.startswith("--") and name not in _ALLOWED[command] | {"--help", "--version"}:
            raise ConfigError(f"{name} is not an option of `htq {command}` (see htq -h)")


def _dispatch(command: str, options: dict[str, Any], argv: Sequence[str]) -> int:
    # Every option is checked before anything starts, so a bad value costs one line, not a trace.
    if command == "tui":
        tui = tui_config(options)
        from htq.tui import run_tui

        return run_tui(tui)
    _setup_logging(bool(options.get("--debug")))
    raise_descriptor_limit()
    if command == "server":
        server = server_config(options)
        from htq.server import serve

        return serve(server)
    if command == "worker":
        worker = worker_config(options)
        from htq.worker import work

        return work(worker)
    server, worker = server_config(options), worker_config(options)
    from htq.up import up

    embedded = not explicitly_set("--redis", argv)
    return up(server, worker, embedded=embedded, data_dir=options["--data-dir"])


def store_config(options: dict[str, Any]) -> StoreConfig:
    return StoreConfig(
        redis_url=redis_url(options["--redis"]),
        prefix=prefix(options["--prefix"]),
        ttl=number("--ttl", options["--ttl"], int, low=0),
    )


def server_config(options: dict[str, Any]) -> ServerConfig:
    host = options["--host"].strip()
    if not host:
        raise ConfigError("--host: must not be empty")
    return ServerConfig(
        host=host,
        port=number("--port", options["--port"], int, low=0, high=65535),
        store=store_config(options),
        debug=bool(options["--debug"]),
        xheaders=bool(options["--xheaders"]),
        processes=number("--processes", options["--processes"], int, low=0, high=256),
        max_body=number("--max-body", options["--max-body"], int, low=1024),
        max_timeout=number("--max-timeout", options["--max-timeout"], float, low=1, high=604800),
        show_secrets=bool(options["--show-secrets"]),
        allowed_hosts=_listed(options["--allowed-hosts"]),
        cors_origins=_listed(options["--cors-origins"]),
        tokens=tokens(options["--token"] or [], options["--token-file"]),
        outbound=outbound_config(options),
        idempotency_ttl=number(
            "--idempotency-ttl", options["--idempotency-ttl"], float, low=1, high=30 * 86400
        ),
        header_timeout=_seconds("--header-timeout", options),
        body_timeout=_seconds("--body-timeout", options),
        idle_timeout=_seconds("--idle-timeout", options),
        max_connections=number(
            "--max-connections", options["--max-connections"], int, low=0, high=1 << 20
        ),
    )


def _seconds(option: str, options: dict[str, Any]) -> float:
    return number(option, options[option], float, low=0.1, high=86400)


def outbound_config(options: dict[str, Any]) -> OutboundConfig:
    config = OutboundConfig(
        allow=_listed(options["--allow"]),
        deny=_listed(options["--deny"]),
        deny_private=bool(options["--deny-private"]),
        any_method=bool(options["--any-method"]),
    )
    Rules.parse(config.allow, "--allow")  # a bad value is one line now, not a trace later
    Rules.parse(config.deny, "--deny")
    return config


def _listed(raw: str | None) -> tuple[str, ...]:
    """A comma-separated option's values."""
    return tuple(part.strip() for part in (raw or "").split(",") if part.strip())


def worker_config(options: dict[str, Any]) -> WorkerConfig:
    return WorkerConfig(
        threads=number("--threads", options["--threads"], int, low=1, high=1000),
        store=store_config(options),
        debug=bool(options["--debug"]),
        lease=number("--lease", options["--lease"], float, low=1, high=3600),
        grace=number("--grace", options["--grace"], float, low=0, high=86400),
        max_response_bytes=number(
            "--max-response-bytes", options["--max-response-bytes"], int, low=0
        ),
        trust_env=bool(options["--trust-env"]),
        outbound=outbound_config(options),
        signing_secrets=_signing_secrets(options["--signing-secret"]),
    )


def _signing_secrets(raw: str | None) -> tuple[str, ...]:
    secrets = _listed(raw)
    for secret in secrets:
        try:
            decode_secret(secret)
        except ValueError as exc:  # the message never holds the secret
            raise ConfigError(
                f'--signing-secret: {exc} (make one with: python3 -c "import base64, secrets; '
                "print('whsec_' + base64.b64encode(secrets.token_bytes(32)).decode())\")"
            ) from None
    return secrets


def tui_config(options: dict[str, Any]) -> TuiConfig:
    given: list[str] = options["--token"] or []
    if len(given) > 1:
        raise ConfigError("--token: the TUI sends one token; give it once")
    return TuiConfig(
        url=http_url(options["--url"]),
        interval=number("--interval", options["--interval"], float, low=0.1, high=3600),
        token=check_token(given[0], "--token") if given else None,
    )


def _setup_logging(debug: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO,
        format="%(message)s",
        stream=sys.stdout,
    )
    # Third-party chatter would drown the spec's `[<uuid>] ...` lines in --debug mode.
    # tornado.general says it for each connection a deadline closes: a slow-loris's log flood.
    for noisy in ("httpx", "httpcore", "asyncio", "tornado.access", "tornado.general", "redis"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
