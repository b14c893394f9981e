"""Which hosts an `mcp` tool may reach (a unit test of the policy; the 400s are in
tests/responses/test_mcp*.py)."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from assistantd.mcp import client
from assistantd.mcp.hosts import (
    Address,
    CheckedBackend,
    HostRefused,
    check_name,
    checked_addresses,
)
from assistantd.settings import Settings
from tests.support.mcp_server import McpServer


def _settings(allowed: str | None = None, denied: str | None = None) -> Settings:
    return Settings(mcp_allowed_hosts=allowed, mcp_denied_hosts=denied)


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data",
        "http://[fd00:ec2::254]/",
        "http://metadata.google.internal/computeMetadata/v1",
        "http://[fe80::1]/",
        "ftp://example.com/",
        "not a url",
    ],
)
def test_always_refused(url: str) -> None:
    with pytest.raises(HostRefused):
        check_name(url, _settings(allowed="*.internal,169.254.0.0/16"))


@pytest.mark.parametrize("url", ["http://[::ffff:169.254.169.254]/", "http://metadata.azure.com/"])
def test_metadata_in_other_spellings_is_refused_with_no_lists(url: str) -> None:
    with pytest.raises(HostRefused, match="link-local or cloud metadata"):
        check_name(url, _settings())


def test_loopback_is_allowed_unless_denied() -> None:
    assert check_name("http://127.0.0.1:8000/mcp", _settings()) == "127.0.0.1"
    with pytest.raises(HostRefused):
        check_name("http://127.0.0.1:8000/mcp", _settings(denied="127.0.0.0/8"))


def test_allow_list() -> None:
    settings = _settings(allowed="mcp.example.com,*.corp.example,10.0.0.0/8")
    assert check_name("https://mcp.example.com/mcp", settings)
    assert check_name("https://a.b.corp.example/mcp", settings)
    assert check_name("http://10.2.3.4/mcp", settings)
    # a name an allowed network may hold: its addresses are checked when it is reached
    assert check_name("http://tools.lan/mcp", settings)
    with pytest.raises(HostRefused):
        check_name("http://192.168.1.1/mcp", settings)
    with pytest.raises(HostRefused):
        check_name("https://evil.example.org/mcp", _settings(allowed="mcp.example.com"))


def test_deny_list_wins() -> None:
    settings = _settings(allowed="*.example.com", denied="bad.example.com")
    with pytest.raises(HostRefused):
        check_name("https://bad.example.com/", settings)


def test_a_name_is_checked_by_its_addresses_when_reached() -> None:
    settings = _settings(denied="127.0.0.0/8")
    assert check_name("http://localhost:1/mcp", settings)  # the name alone passes
    with pytest.raises(HostRefused):
        asyncio.run(checked_addresses("localhost", 1, settings))
    assert asyncio.run(checked_addresses("localhost", 1, _settings()))


def test_a_name_resolving_to_a_refused_address_is_not_connected_to() -> None:
    """The check is made as the MCP client connects: a name whose address the lists refuse
    gets a failed list and call, and the server hears nothing."""
    server = McpServer().start()
    try:
        url = f"http://localhost:{server.port}/mcp"
        settings = _settings(denied="127.0.0.0/8")
        with pytest.raises(client.McpError, match="refused"):
            asyncio.run(client.list_tools(client.Server(url, {}), settings))
        done = asyncio.run(client.call_tool(client.Server(url, {}), settings, "add", {}))
        assert done.error is not None
        assert "refused" in done.error["message"]
        assert server.headers_seen == []
        listed = asyncio.run(client.list_tools(client.Server(url, {}), _settings()))
        assert "add" in {tool["name"] for tool in listed}
    finally:
        server.stop()


def test_a_connection_goes_to_the_address_that_was_checked() -> None:
    """One lookup per connection, checked, and the socket opened to that address: a name
    that answers a permitted address, then a metadata one (DNS rebinding), is refused on the
    second connection rather than reaching the metadata service."""
    server = McpServer().start()
    answers = [["127.0.0.1"], ["169.254.169.254"]]
    asked: list[str] = []

    async def resolver(host: str, port: int) -> list[Address]:
        asked.append(host)
        return [ipaddress.ip_address(a) for a in answers[len(asked) - 1]]

    async def connect() -> tuple[str, int]:
        backend = CheckedBackend(_settings(), resolver)
        stream = await backend.connect_tcp("mcp.rebind.test", server.port, timeout=5)
        try:
            peer: tuple[str, int] = stream.get_extra_info("server_addr")
            return peer
        finally:
            await stream.aclose()

    try:
        assert asyncio.run(connect()) == ("127.0.0.1", server.port)
        with pytest.raises(HostRefused, match="link-local or cloud metadata"):
            asyncio.run(connect())
        assert asked == ["mcp.rebind.test", "mcp.rebind.test"]
    finally:
        server.stop()
