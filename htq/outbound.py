"""Where the worker may send: the outbound guard, shared by the server (literal addresses and
methods are refused at `POST /`) and the worker (every address a name resolves to is checked,
and the connection goes to the address that was checked).

In order, for each address a request would connect to:
1. htq's own endpoints are always refused: its Redis (a request `{"url":
   "http://127.0.0.1:6379/", "method": "SET"}` would run SET in it) and its servers (a request
   to `POST /` that is retried on 303 queues itself again on every attempt). One on this
   machine is refused on every address of it (loopback, unspecified, each interface's);
   one elsewhere on the addresses it resolved to (Redis) or announced (servers, see `listening`).
2. `--allow` (hosts, `*.domain` patterns, addresses and CIDR networks) allows.
3. `--deny` (the same forms; `*` for everything) refuses.
4. Link-local and cloud metadata addresses are refused (169.254.0.0/16, fe80::/10,
   fd00:ec2::254, 100.100.100.200; `metadata.google.internal`).
5. With `--deny-private`, every address that is not global is refused: loopback, private,
   CGNAT, unique-local, unspecified, reserved; an IPv4 address inside an IPv6 one (mapped,
   NAT64, 6to4) is judged as that IPv4 address.
Methods: those of RFC 9110 and PATCH, and the common WebDAV ones; `--any-method` allows others.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from htq._interfaces import local_addresses
from htq.config import OutboundConfig
from htq.errors import ConfigError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: RFC 9110's methods, PATCH (RFC 5789), QUERY, and the common WebDAV and CalDAV ones.
HTTP_METHODS = frozenset(
    {
        *("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"),
        "QUERY",
        *("PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK"),
        *("REPORT", "SEARCH", "MKCALENDAR", "ACL"),
    }
)

_METADATA = tuple(
    ipaddress.ip_network(net)
    for net in ("169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128", "100.100.100.200/32")
)
_METADATA_NAMES = frozenset({"metadata.google.internal", "metadata"})
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_UNKNOWN = object()  # no verdict kept yet
_ORIGIN = re.compile(r"[^:/?#]*://[^/?#]*")  # the scheme and host part of a URL
REDIS = "htq's own Redis"
SERVER = "htq's own server (a request to its API could queue itself again and again)"


class Refused(Exception):
    """The guard refuses this destination; the message says why and how to allow it."""


@dataclass(frozen=True, slots=True)
class Rules:
    """`--allow` or `--deny` values: names, `*.domain` patterns, networks; `*` matches all."""

    every: bool = False
    names: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()  # ".example.com" for `*.example.com`
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, values: Iterable[str], option: str) -> Rules:
        every = False
        names: set[str] = set()
        suffixes: list[str] = []
        networks: list[IPNetwork] = []
        for value in (v.strip().lower().rstrip(".") for v in values):
            if not value:
                continue
            if value == "*":
                every = True
            elif value.startswith("*.") and _plausible_name(value[2:]):
                suffixes.append(value[1:])
            else:
                try:
                    networks.append(ipaddress.ip_network(value.strip("[]"), strict=False))
                except ValueError:
                    if "*" in value or "/" in value or not _plausible_name(value):
                        raise ConfigError(
                            f"{option}: {value!r} is not a host, *.domain, address or network"
                        ) from None
                    names.add(value)
        return cls(every, frozenset(names), tuple(suffixes), tuple(networks))

    def match_name(self, name: str) -> bool:
        return self.every or name in self.names or name.endswith(self.suffixes)

    def match_address(self, address: IPAddress) -> bool:
        return self.every or any(address in net for net in self.networks if _same(address, net))


@dataclass(frozen=True, slots=True)
class Own:
    """htq's own endpoints, never sent to: `ports` on every address of this machine, `pairs`
    (an address of another machine, a port) as they are; each says what it is."""

    local: frozenset[IPAddress] = frozenset()  # this machine's addresses
    ports: Mapping[int, str] = field(default_factory=dict)
    pairs: Mapping[tuple[IPAddress, int], str] = field(default_factory=dict)

    def what(self, address: IPAddress, port: int) -> str | None:
        found = self.pairs.get((address, port))
        if found is None and port in self.ports and _is_local(address, self.local):
            found = self.ports[port]
        return found

    def with_servers(self, servers: Iterable[Mapping[str, Any]]) -> Own:
        """These endpoints and the servers announced in the store (see `listening`): each on
        what it announced, and one on this machine on every local address too. A server is on
        this machine if one of its addresses is, or (listening on loopback only) if its host
        name is this one's: two machines may share a name (cloned images), not an address."""
        me, local = socket.gethostname(), local_addresses()
        ports, pairs = dict(self.ports), dict(self.pairs)
        for server in servers:
            port = server.get("port")
            if not isinstance(port, int):
                continue
            found = (literal_address(str(text)) for text in server.get("addresses") or ())
            reachable = {
                a for a in found if a is not None and not (a.is_loopback or a.is_unspecified)
            }
            pairs.update(dict.fromkeys(((a, port) for a in reachable), SERVER))
            if reachable & local or (not reachable and server.get("host") == me):
                ports.setdefault(port, SERVER)
        return Own(local, ports, pairs)


@dataclass(slots=True)
class Outbound:
    """The guard of one process, from its settings and where its Redis and servers are."""

    allow: Rules = field(default_factory=Rules)
    deny: Rules = field(default_factory=Rules)
    deny_private: bool = False
    any_method: bool = False
    own: Own = field(default_factory=Own)  # what `of` found; `learn_servers` adds servers
    _base: Own = field(default_factory=Own, init=False, repr=False, compare=False)
    # check_literal's verdicts by scheme and host part (None: allowed; else why refused)
    _verdicts: dict[str, str | None] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        self._base = self.own

    @classmethod
    def of(
        cls, config: OutboundConfig, redis_url: str, server_ports: Iterable[int] = ()
    ) -> Outbound:
        """The guard of a process whose Redis is `redis_url` and whose (or whose `htq up`'s)
        server listens on `server_ports`."""
        local = local_addresses()
        ports: dict[int, str] = dict.fromkeys(server_ports, SERVER)
        pairs: dict[tuple[IPAddress, int], str] = {}
        redis, port, named_local = _redis_addresses(redis_url)
        if port is not None:
            pairs.update(dict.fromkeys(((a, port) for a in redis), REDIS))
            if named_local or any(_is_local(a, local) for a in redis):
                ports[port] = REDIS
        return cls(
            allow=Rules.parse(config.allow, "--allow"),
            deny=Rules.parse(config.deny, "--deny"),
            deny_private=config.deny_private,
            any_method=config.any_method,
            own=Own(local, ports, pairs),
        )

    def learn_servers(self, servers: Iterable[Mapping[str, Any]]) -> None:
        """Refuse the servers announced in the store too (a worker, now and then): the view
        is replaced whole, so a thread checking meanwhile sees the old one or the new one."""
        self.own = self._base.with_servers(servers)
        self._verdicts.clear()

    # -- checks ------------------------------------------------------------------------------

    def check_method(self, method: str) -> None:
        if not self.any_method and method.upper() not in HTTP_METHODS:
            raise Refused(
                f"{method} is not an HTTP method htq sends (start the server and workers with "
                "--any-method to allow any)."
            )

    def check_literal(self, url: str) -> None:
        """At `POST /`: refuse a URL whose host is a refused address or name, without DNS.
        The verdict depends only on the scheme and host part, and is kept for the next URL
        with the same (on enqueue's hot path, where most URLs share a few hosts)."""
        found = _ORIGIN.match(url)
        origin = found.group(0) if found else url
        verdict = self._verdicts.get(origin, _UNKNOWN)
        if verdict is _UNKNOWN:
            try:
                self._check_literal(url)
                verdict = None
            except Refused as exc:
                verdict = str(exc)
            if len(self._verdicts) < 4096:  # a bound: hosts are the client's to vary
                self._verdicts[origin] = verdict
        if verdict is not None:
            raise Refused(verdict)

    def _check_literal(self, url: str) -> None:
        parts = urlsplit(url)
        try:
            host = url_host(parts.hostname or "").rstrip(".")
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            return  # the URL's own validation says what is wrong with it
        self.check_name(host)
        address = literal_address(host)
        if address is not None:
            self.check_address(host, address, port)
        elif _is_localhost(host):
            self.check_address(host, ipaddress.ip_address("127.0.0.1"), port)

    def check_name(self, host: str) -> None:
        """Rules by name, before any address is known."""
        name = host.lower().rstrip(".")
        if self.allow.match_name(name):
            return
        if self.deny.match_name(name):
            raise Refused(f"{name} is refused by --deny.")
        if name in _METADATA_NAMES:
            raise Refused(f"{name} is a cloud metadata service; htq never sends to one.")

    def permitted(self, host: str, address: IPAddress, port: int) -> bool:
        try:
            self.check_address(host, address, port)
        except Refused:
            return False
        return True

    def check_address(self, host: str, address: IPAddress, port: int) -> None:
        """One address `host` resolved to (or is), and the port to connect to."""
        judged = _embedded_ipv4(address) or address
        where = host if host == str(address) else f"{host} ({address})"
        what = self.own.what(judged, port)
        if what is not None:
            raise Refused(f"{where} port {port} is {what}; htq never sends to it.")
        name = host.lower().rstrip(".")
        if self.allow.match_name(name) or self.allow.match_address(judged):
            return
        if self.deny.match_address(judged):
            raise Refused(f"{where} is refused by --deny.")
        if any(judged in net for net in _METADATA if _same(judged, net)):
            raise Refused(
                f"{where} is a link-local or cloud metadata address; allow it with --allow "
                f"{judged} if it should be reached."
            )
        if self.deny_private and not judged.is_global:
            raise Refused(
                f"{where} is not a public address (--deny-private); allow it with --allow "
                f"{judged} if it should be reached."
            )


def url_host(host: str) -> str:
    """A URL's host as the worker's URL parser (httpx) makes it: lower case, and a name that is
    not ASCII through IDNA (UTS 46 maps `127。0。0。1` and other dots to `.`); ValueError if
    the worker could not send to it."""
    if host.isascii():
        return host.lower()
    import httpx  # only for the rare host that is not ASCII

    try:
        return httpx.URL(scheme="http", host=host).host
    except (httpx.InvalidURL, ValueError) as exc:  # idna's errors are ValueErrors
        raise ValueError(str(exc) or type(exc).__name__) from None


def listening(addresses: Iterable[tuple[str, int]]) -> list[dict[str, Any]]:
    """What a server announces in the store of the addresses it listens on (those of its
    sockets; all of this machine's for an unspecified one), one entry per port."""
    by_port: dict[int, set[str]] = {}
    for host, port in addresses:
        address = literal_address(host)
        if address is not None and address.is_unspecified:
            found = {str(a) for a in local_addresses() if not a.is_loopback}
        else:
            found = {host}
        by_port.setdefault(port, set()).update(found)
    me, pid = socket.gethostname(), os.getpid()  # the pid: forked siblings announce apart
    return [
        {"host": me, "pid": pid, "port": port, "addresses": sorted(found)}
        for port, found in sorted(by_port.items())
    ]


def literal_address(host: str) -> IPAddress | None:
    """The address a host written as one means, in any form the resolver takes: `127.0.0.1`,
    `[::ffff:127.0.0.1]`, and the old numeric ones (`2130706433`, `0x7f.1`, `127.1`)."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    if not host or not all(c in "0123456789abcdefxABCDEFX." for c in host):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, NAT64, 6to4), judged in its place."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _same(address: IPAddress, network: IPNetwork) -> bool:
    return address.version == network.version


def _is_local(address: IPAddress, local: frozenset[IPAddress]) -> bool:
    return address.is_loopback or address.is_unspecified or address in local


def _is_localhost(host: str) -> bool:
    name = host.lower()
    return name == "localhost" or name.endswith(".localhost")


def _plausible_name(value: str) -> bool:
    return all(part and all(c.isalnum() or c in "-_" for c in part) for part in value.split("."))


def _redis_addresses(url: str) -> tuple[frozenset[IPAddress], int | None, bool]:
    """Where htq's Redis is, as its name resolves now, its port, and whether it is named
    `localhost` (a unix socket: nowhere on TCP, no port)."""
    parts = urlsplit(url)
    if parts.scheme == "unix" or not parts.hostname:
        return frozenset(), None, False
    port = parts.port or 6379
    try:
        found = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except OSError:
        found = []
    addresses = {ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in found}
    literal = literal_address(parts.hostname)
    if literal is not None:
        addresses.add(literal)
    return frozenset(addresses), port, _is_localhost(parts.hostname)
