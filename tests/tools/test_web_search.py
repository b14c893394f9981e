"""Unit tests of the web search tool's pure parts: the outbound rules, the model's arguments,
the SearxNG locale, and the citations found in an answer."""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path

import httpx
import pytest

from assistantd.settings import Settings
from assistantd.tools.base import ToolContext, ToolResult
from assistantd.tools.outbound import (
    Fetched,
    OutboundRefused,
    OutboundRules,
    domain_allowed,
    fetch,
)
from assistantd.tools.web_search import WebSearchTool, action_of, locale, parse_arguments
from tests.support.searxng import FakeSearx


def addresses(*given: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    return [ipaddress.ip_address(a) for a in given]


@pytest.mark.parametrize(
    "address",
    ["169.254.169.254", "169.254.1.1", "fe80::1", "fd00:ec2::254", "::ffff:169.254.169.254"],
)
def test_link_local_and_metadata_always_refused(address: str) -> None:
    rules = OutboundRules(allowed="169.254.0.0/16,fe80::/10,fd00::/8,metadata.example")
    with pytest.raises(OutboundRefused, match="link-local or cloud metadata"):
        rules.permits("metadata.example", addresses(address))
    with pytest.raises(OutboundRefused, match="metadata"):
        OutboundRules().permits("metadata.google.internal", addresses("8.8.8.8"))


def test_public_private_allowed_denied() -> None:
    open_rules = OutboundRules()
    open_rules.permits("example.com", addresses("93.184.216.34"))
    for private in ("127.0.0.1", "10.1.2.3", "192.168.0.1", "::1", "::ffff:10.0.0.1"):
        with pytest.raises(OutboundRefused, match="private or loopback"):
            open_rules.permits("intranet", addresses(private))
    # a public name that also resolves to a private address is refused
    with pytest.raises(OutboundRefused):
        open_rules.permits("mixed.example", addresses("93.184.216.34", "10.0.0.1"))

    listed = OutboundRules(allowed="wiki.internal, 10.0.0.0/8")
    listed.permits("wiki.internal", addresses("192.168.1.5"))
    listed.permits("docs.wiki.internal", addresses("192.168.1.5"))
    listed.permits("other", addresses("10.9.9.9"))
    with pytest.raises(OutboundRefused, match="not one of the hosts"):
        listed.permits("example.com", addresses("93.184.216.34"))

    denied = OutboundRules(denied="bad.example,203.0.113.0/24")
    with pytest.raises(OutboundRefused, match="refused hosts"):
        denied.permits("www.bad.example", addresses("93.184.216.34"))
    with pytest.raises(OutboundRefused, match="refused hosts"):
        denied.permits("fine.example", addresses("203.0.113.7"))


def test_check_refuses_other_schemes_and_unresolvable_hosts() -> None:
    rules = OutboundRules()
    for url in ("file:///etc/passwd", "ftp://example.com/x", "http:///nohost"):
        with pytest.raises(OutboundRefused, match="not an http"):
            asyncio.run(rules.check(url))
    with pytest.raises(OutboundRefused, match="could not be resolved"):
        asyncio.run(rules.check("http://no-such-host.invalid/"))
    with pytest.raises(OutboundRefused, match="link-local"):
        asyncio.run(rules.check("http://[fe80::1]:8080/"))


def test_domain_allowed() -> None:
    assert domain_allowed("anything.example", [])
    assert domain_allowed("pubmed.ncbi.nlm.nih.gov", ["nih.gov"])
    assert domain_allowed("nih.gov", ["https://nih.gov/"])
    assert not domain_allowed("evilnih.gov", ["nih.gov"])
    assert not domain_allowed("nih.gov.evil.com", ["nih.gov"])


def test_arguments_and_actions() -> None:
    assert parse_arguments('{"action": "search", "queries": ["a", " ", "b", "c", "d"]}') == {
        "action": "search",
        "queries": ["a", "b", "c"],
        "url": "",
        "pattern": "",
    }
    assert parse_arguments('{"query": "solo"}')["queries"] == ["solo"]
    assert parse_arguments('{"url": "https://x.example"}')["action"] == "open_page"
    assert parse_arguments('{"action": "find", "url": "u", "pattern": "p"}')["action"] == (
        "find_in_page"
    )
    assert parse_arguments("not json")["queries"] == ["not json"]
    assert action_of(parse_arguments('{"queries": ["q1", "q2"]}')) == {
        "type": "search",
        "query": "q1",
        "queries": ["q1", "q2"],
    }
    assert action_of(parse_arguments('{"action": "open_page"}')) == {
        "type": "open_page",
        "url": None,
    }


def test_locale() -> None:
    assert locale({"country": "ch", "city": "Zurich"}) == "de-CH"
    assert locale({"country": "US"}) == "en-US"
    assert locale({"country": "XX"}) is None
    assert locale(None) is None


def test_citations(tmp_path: Path) -> None:
    tool = WebSearchTool(Settings(data_dir=tmp_path))
    found = [
        {"url": "https://a.example/page", "title": "Page A"},
        {"url": "https://b.example/", "title": "B"},
    ]
    result = ToolResult(
        output="", details={"id": "call_1", "type": "web_search", "web_search": {"results": found}}
    )
    text = (
        "See [A](https://a.example/page), and https://b.example. "
        "Not [C](https://c.example/) nor https://d.example/x."
    )
    ctx = ToolContext(
        project="p",
        thread_id="t",
        run_id="r",
        assistant_id="",
        tool_definition={"type": "web_search"},
        tool_resources={},
        sessions=None,  # type: ignore[arg-type]
        blobs=None,  # type: ignore[arg-type]
        settings=tool.settings,
    )
    first, second = asyncio.run(tool.annotate(ctx, text, [result]))
    assert text[first["start_index"] : first["end_index"]] == "[A](https://a.example/page)"
    assert first["url_citation"] == {"url": "https://a.example/page", "title": "Page A"}
    assert text[second["start_index"] : second["end_index"]] == "https://b.example"
    assert second["url_citation"]["title"] == "B"


def test_fetch_connects_to_the_checked_address() -> None:
    """A name is resolved and checked once, and the connection goes to that address with the
    name as its Host (no second lookup to rebind); pages are cut at the bound."""
    searx = FakeSearx().start()
    try:
        port = searx.url.rsplit(":", 1)[1]

        async def get(url: str, max_bytes: int = 100_000) -> Fetched:
            async with httpx.AsyncClient(trust_env=False) as http:
                rules = OutboundRules(allowed="localhost,127.0.0.1,::1")
                return await fetch(http, rules, url, max_bytes=max_bytes, timeout=5)

        page = asyncio.run(get(f"http://localhost:{port}/pages/lighthouse"))
        assert page.content_type == "text/html"
        assert b"Lighthouse facts" in page.body
        assert page.url == f"http://localhost:{port}/pages/lighthouse"
        cut = asyncio.run(get(f"http://localhost:{port}/pages/big", max_bytes=2000))
        assert cut.truncated
        assert len(cut.body) == 2000
        with pytest.raises(OutboundRefused, match="link-local"):
            asyncio.run(get(f"http://localhost:{port}/pages/to-metadata"))
    finally:
        searx.stop()
