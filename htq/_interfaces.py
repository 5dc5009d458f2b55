"""This machine's own addresses (every interface's), read without new dependencies."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from pathlib import Path

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_FIB_TRIE = Path("/proc/net/fib_trie")  # Linux: the kernel's IPv4 routing tables
_IF_INET6 = Path("/proc/net/if_inet6")  # Linux: every IPv6 address, one a line


def local_addresses() -> frozenset[IPAddress]:
    """The addresses of this machine's interfaces: on Linux from the kernel's own tables (every
    interface, up or not yet named in DNS); elsewhere what the host name resolves to."""
    found = _ipv4_locals() | _ipv6_locals()
    if not found:
        found = _resolved(socket.gethostname())
    return frozenset(found | {ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")})


def _ipv4_locals() -> set[IPAddress]:
    """The `/32 host LOCAL` entries of fib_trie: the addresses the kernel answers for."""
    found: set[IPAddress] = set()
    with contextlib.suppress(OSError, UnicodeDecodeError):
        last = ""
        for line in _FIB_TRIE.read_text().splitlines():
            text = line.strip()
            if text.startswith("|-- "):
                last = text[4:]
            elif text == "/32 host LOCAL" and last:
                with contextlib.suppress(ValueError):
                    found.add(ipaddress.ip_address(last))
    return found


def _ipv6_locals() -> set[IPAddress]:
    found: set[IPAddress] = set()
    with contextlib.suppress(OSError, UnicodeDecodeError):
        for line in _IF_INET6.read_text().splitlines():
            with contextlib.suppress(ValueError, IndexError):
                found.add(ipaddress.IPv6Address(int(line.split()[0], 16)))
    return found


def _resolved(name: str) -> set[IPAddress]:
    found: set[IPAddress] = set()
    with contextlib.suppress(OSError):
        for info in socket.getaddrinfo(name, None, type=socket.SOCK_STREAM):
            with contextlib.suppress(ValueError):
                found.add(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]))
    return found
