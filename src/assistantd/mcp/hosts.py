"""Which hosts an `mcp` tool may reach: the operator's allow and deny lists, and never a
link-local or cloud metadata address."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import urlsplit

import httpcore2

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


async def resolve(host: str, port: int) -> list[Address]:
    """The addresses of `host` (itself, for a literal address); OSError when it has none."""
    literal = _address(host)
    if literal is not None:
        return [literal]
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found = [_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    addresses = list(dict.fromkeys(a for a in found if a is not None))
    if not addresses:
        raise OSError(f"{host} has no address")
    return addresses


Resolver = Callable[[str, int], Awaitable[list[Address]]]


async def checked_addresses(
    host: str, port: int, settings: Settings, resolver: Resolver = resolve
) -> list[Address]:
    """`host`'s addresses, resolved once, each passing the policy (a name pointing at a
    metadata address is refused too); raises HostRefused, or OSError when it has none."""
    host = host.lower().rstrip(".")
    _check(host, _address(host), settings, by_name=True)
    addresses = await resolver(host, port)
    for address in addresses:
        _check(host, address, settings)
    return addresses


class CheckedBackend(httpcore2.AsyncNetworkBackend):
    """Opens an MCP client's connections to addresses just checked: the host is resolved
    once, every address passes the policy, and the socket goes to one of those (TLS and the
    Host header keep the name), so no second lookup can rebind it to a refused address."""

    def __init__(self, settings: Settings, resolver: Resolver = resolve) -> None:
        self.settings = settings
        self.resolver = resolver
        self.inner = httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        try:
            addresses = await checked_addresses(host, port, self.settings, self.resolver)
        except OSError as exc:
            raise httpcore2.ConnectError(f"{host} could not be resolved") from exc
        for number, address in enumerate(addresses):
            try:
                return await self.inner.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except (httpcore2.ConnectError, httpcore2.ConnectTimeout):
                if number == len(addresses) - 1:
                    raise
        raise httpcore2.ConnectError(f"{host} has no address")

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        raise httpcore2.ConnectError("MCP servers are reached over TCP only")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)
