"""Which hosts an `mcp` tool may reach (a unit test of the policy; the 400s are in
tests/responses/test_mcp*.py)."""

from __future__ import annotations

import asyncio

import pytest

from assistantd.mcp.hosts import HostRefused, check_name, check_resolved
from assistantd.settings import Settings


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
        asyncio.run(check_resolved("http://localhost:1/mcp", settings))
    asyncio.run(check_resolved("http://localhost:1/mcp", _settings()))
