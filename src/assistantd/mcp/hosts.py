"""Which hosts an `mcp` tool may reach: the operator's allow and deny lists, and never a
link-local or cloud metadata address."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from assistantd.settings import Settings
from assistantd.tools.outbound import always_refused

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class HostRefused(Exception):
    """The URL's host may not be reached; the message says why."""


def _entries(raw: str | None) -> list[str]:
    return [part.strip().lower() for part in (raw or "").split(",") if part.strip()]


def _matches(host: str, address: Address | None, entry: str) -> bool:
    if entry.startswith("*."):
        return host.endswith(entry[1:])
    try:
        network = ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return host == entry
    return address is not None and address in network


def _address(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def host_of(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HostRefused("it must be an http or https URL")
    return parts.hostname.lower().rstrip(".")


def check_name(url: str, settings: Settings) -> str:
    """The URL's host, if its name or literal address passes (a name an allowed network may
    hold passes here: its addresses are checked when it is reached); raises HostRefused."""
    host = host_of(url)
    _check(host, _address(host), settings, by_name=True)
    return host


def _is_network(entry: str) -> bool:
    try:
        ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return False
    return True


def _check(
    host: str, address: Address | None, settings: Settings, *, by_name: bool = False
) -> None:
    if always_refused(host, [] if address is None else [address]):
        raise HostRefused(f"the host '{host}' is a link-local or cloud metadata address")
    if any(_matches(host, address, e) for e in _entries(settings.mcp_denied_hosts)):
        raise HostRefused(f"the host '{host}' is denied by this server")
    allowed = _entries(settings.mcp_allowed_hosts)
    if by_name and address is None and any(_is_network(e) for e in allowed):
        return
    if allowed and not any(_matches(host, address, e) for e in allowed):
        raise HostRefused(f"the host '{host}' is not among the hosts this server allows")


async def check_resolved(url: str, settings: Settings) -> None:
    """Check every address the URL's host resolves to (a name pointing at a metadata address
    is refused too); raises HostRefused."""
    host = check_name(url, settings)
    if _address(host) is not None:
        return
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return  # unresolvable: connecting fails and says so
    for info in infos:
        address = _address(str(info[4][0]).split("%", 1)[0])
        if address is not None:
            _check(host, address, settings)
