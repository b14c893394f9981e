"""What the server's tools may fetch from the network, and a bounded fetch that keeps to it.

A URL a model chose (a page the `web_search` tool opens) is fetched only from a host the
operator's rules permit (`ASSISTANTD_OUTBOUND_ALLOWED_HOSTS` / `_DENIED_HOSTS`): with no allow
list, any host whose addresses are all public; loopback and private addresses only when listed.
Link-local and cloud metadata addresses are refused whatever the lists say. Every redirect is
checked again; the body is read up to a bound, within a deadline.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

from assistantd.settings import Settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Cloud metadata services (AWS, GCP, Azure, Oracle: 169.254.169.254, in link-local; AWS's IPv6
# one; Alibaba's), refused like every link-local address.
_ALWAYS_REFUSED: tuple[Network, ...] = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("fd00:ec2::254/128"),
    ipaddress.ip_network("100.100.100.200/32"),
)
_METADATA_NAMES = frozenset(
    {"metadata.google.internal", "metadata.goog", "metadata", "instance-data", "metadata.azure.com"}
)
MAX_REDIRECTS = 5


class OutboundRefused(Exception):
    """The URL may not be fetched; the message says why (the model reads it)."""


@dataclass(frozen=True)
class _Rule:
    domain: str | None = None  # the host or any of its subdomains
    network: Network | None = None

    def matches(self, host: str, addresses: list[Address]) -> bool:
        if self.domain is not None:
            return host == self.domain or host.endswith("." + self.domain)
        assert self.network is not None
        return any(address in self.network for address in addresses)


def _rules(spec: str) -> list[_Rule]:
    rules: list[_Rule] = []
    for raw in spec.split(","):
        entry = raw.strip().lower().rstrip(".")
        if not entry:
            continue
        try:
            rules.append(_Rule(network=ipaddress.ip_network(entry.strip("[]"), strict=False)))
        except ValueError:
            rules.append(_Rule(domain=entry))
    return rules


def _plain(address: Address) -> Address:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def always_refused(host: str, addresses: Iterable[Address]) -> bool:
    """Whether `host` (at `addresses`) is link-local or a cloud metadata service: refused to
    every tool that reaches out (web pages, MCP servers), whatever the operator lists."""
    if host in _METADATA_NAMES:
        return True
    for address in map(_plain, addresses):
        if address.is_link_local or any(address in net for net in _ALWAYS_REFUSED):
            return True
    return False


def domain_allowed(host: str, domains: list[str]) -> bool:
    """Whether `host` is one of `domains` or a subdomain of one (an empty list allows all)."""
    host = host.lower().rstrip(".")
    if not domains:
        return True
    for domain in domains:
        bare = domain.lower().strip().rstrip(".")
        bare = bare.removeprefix("https://").removeprefix("http://").split("/")[0]
        if bare and (host == bare or host.endswith("." + bare)):
            return True
    return False


class OutboundRules:
    def __init__(self, allowed: str = "", denied: str = "") -> None:
        self.allowed = _rules(allowed)
        self.denied = _rules(denied)

    @classmethod
    def of(cls, settings: Settings) -> OutboundRules:
        return cls(settings.outbound_allowed_hosts, settings.outbound_denied_hosts)

    async def check(self, url: str) -> list[Address]:
        """The addresses to fetch `url` from (its host resolved now); OutboundRefused unless
        `url` may be fetched."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise OutboundRefused(f"{url} is not an http(s) URL.")
        host = parts.hostname.lower().rstrip(".")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        addresses = await _resolve(host, port)
        self.permits(host, addresses)
        return list(dict.fromkeys(_plain(a) for a in addresses))

    def permits(self, host: str, addresses: list[Address]) -> None:
        """Raise OutboundRefused unless `host`, resolved to `addresses`, may be fetched."""
        addresses = [_plain(a) for a in addresses]
        if always_refused(host, addresses):
            raise OutboundRefused(f"{host} is a link-local or cloud metadata address: refused.")
        if any(rule.matches(host, addresses) for rule in self.denied):
            raise OutboundRefused(f"{host} is on this server's list of refused hosts.")
        listed = any(rule.matches(host, addresses) for rule in self.allowed)
        if self.allowed and not listed:
            raise OutboundRefused(f"{host} is not one of the hosts this server may fetch from.")
        private = [a for a in addresses if not a.is_global]
        if private and not listed:
            raise OutboundRefused(
                f"{host} resolves to a private or loopback address ({private[0]}); this server "
                "fetches from such hosts only when its operator lists them."
            )


async def _resolve(host: str, port: int) -> list[Address]:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise OutboundRefused(f"{host} could not be resolved.") from exc
    found = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not found:
        raise OutboundRefused(f"{host} could not be resolved.")
    return found


async def _send(
    http: httpx.AsyncClient, url: str, host: str, addresses: list[Address]
) -> httpx.Response:
    """GET `url` from the first of `addresses` that takes the connection."""
    headers = {"Host": httpx.URL(url).netloc.decode("ascii")}
    extensions = {"sni_hostname": host} if url.startswith("https:") else {}
    for number, address in enumerate(addresses):
        pinned = httpx.URL(url).copy_with(host=str(address))
        request = http.build_request("GET", pinned, headers=headers, extensions=extensions)
        try:
            return await http.send(request, stream=True, follow_redirects=False)
        except httpx.ConnectError:
            if number == len(addresses) - 1:
                raise
    raise OutboundRefused(f"{host} has no address.")


@dataclass
class Fetched:
    url: str  # after redirects
    content_type: str  # e.g. "text/html"
    charset: str | None
    body: bytes
    truncated: bool


async def fetch(
    http: httpx.AsyncClient,
    rules: OutboundRules,
    url: str,
    *,
    max_bytes: int,
    timeout: float,
    also_allowed: list[str] | None = None,
) -> Fetched:
    """GET `url` (and its redirects, each checked), at most `max_bytes` of its body, within
    `timeout` seconds. `also_allowed`: domains every hop must be in (an empty list: any).
    Raises OutboundRefused, or httpx's errors (a timeout, a refused connection)."""
    async with asyncio.timeout(timeout):
        for _ in range(MAX_REDIRECTS + 1):
            host = urlsplit(url).hostname or ""
            if also_allowed and not domain_allowed(host, also_allowed):
                raise OutboundRefused(f"{host} is not one of the request's allowed domains.")
            # Connect to the address just checked (not one a second lookup might give): the
            # Host header and TLS name stay the URL's.
            answer = await _send(http, url, host, await rules.check(url))
            try:
                location = answer.headers.get("location")
                if answer.is_redirect and location:
                    url = urljoin(url, location)
                    continue
                if answer.status_code >= 400:
                    raise OutboundRefused(f"{url} answered HTTP {answer.status_code}.")
                body = bytearray()
                truncated = False
                async for chunk in answer.aiter_bytes():
                    body += chunk
                    if len(body) > max_bytes:
                        del body[max_bytes:]
                        truncated = True
                        break
                kind = answer.headers.get("content-type", "").split(";")[0].strip().lower()
                return Fetched(url, kind, answer.charset_encoding, bytes(body), truncated)
            finally:
                await answer.aclose()
        raise OutboundRefused(f"{url} redirected more than {MAX_REDIRECTS} times.")
