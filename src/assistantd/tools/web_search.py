"""The `web_search` tool: the model searches the web through a SearxNG instance, opens pages and
finds text in them, and cites what it used.

The model is offered one function, `web_search`, whose `action` argument selects what to do:
`search` (SearxNG's JSON API, `{ASSISTANTD_WEB_SEARCH_URL}/search?q=...&format=json`),
`open_page` (the page's text, fetched under the outbound rules of `tools.outbound`) or
`find_in_page` (the places a pattern occurs in a page's text). Each call is a `web_search_call`
item whose `action` says which. `search_context_size` bounds how much of the results and pages
the model reads; `filters.allowed_domains` restricts both. The URLs of results the model writes
in its answer (markdown links or bare URLs) become `url_citation` annotations.

With no SearxNG configured, or a tool with `external_web_access: false` (a cache-only search:
this server has no cache), the tool is accepted and not offered to the model.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx

from assistantd.settings import Settings
from assistantd.tools import web_reading as reading
from assistantd.tools.base import ServerTool, ToolContext, ToolResult, ToolUnavailable
from assistantd.tools.outbound import OutboundRefused, OutboundRules, domain_allowed, fetch

log = logging.getLogger(__name__)
FUNCTION_NAME = "web_search"
MAX_QUERIES = 3
UNKNOWN_WINDOW = 8192  # what the results may assume of a model's window nobody knows
DESCRIPTION = (
    "Search the web, open a web page, or find text in a page. "
    'action "search" with "queries" (one to three short queries) lists results, each with '
    'its title, URL and a snippet; action "open_page" with "url" gives that page\'s text; '
    'action "find_in_page" with "url" and "pattern" gives the places the pattern occurs in '
    "the page. When your answer uses a result, cite it with a markdown link to its URL, "
    "e.g. [Title](https://example.com/page)."
)


# SearxNG takes a locale (`language=de-CH`), not a country: a country's main language.
_LANGUAGE = {
    **dict.fromkeys(["US", "GB", "CA", "AU", "NZ", "IE", "IN", "ZA", "SG"], "en"),
    **dict.fromkeys(["DE", "AT", "CH", "LI"], "de"),
    **dict.fromkeys(["FR", "BE", "LU", "MC"], "fr"),
    **dict.fromkeys(["ES", "MX", "AR", "CO", "CL", "PE"], "es"),
    **dict.fromkeys(["PT", "BR"], "pt"),
    **dict.fromkeys(["CN", "TW", "HK"], "zh"),
    "IT": "it",
    "NL": "nl",
    "JP": "ja",
    "KR": "ko",
    "RU": "ru",
    "PL": "pl",
    "SE": "sv",
    "NO": "nb",
    "DK": "da",
    "FI": "fi",
    "TR": "tr",
    "GR": "el",
    "CZ": "cs",
    "UA": "uk",
}


def readiness(settings: Settings) -> dict[str, str]:
    """What `/readyz` and the start-up log say of web search."""
    if settings.web_search_url is None:
        return {
            "status": "off",
            "detail": "no ASSISTANTD_WEB_SEARCH_URL: a web_search tool is accepted and not "
            "offered to the model",
        }
    return {"status": "ok", "engine": "searxng"}


def log_readiness(settings: Settings) -> None:
    if settings.web_search_url is None:
        log.info("web search is off (%s)", readiness(settings)["detail"])
    else:
        log.info("web search: SearxNG at %s", settings.web_search_url)


def _options(definition: dict[str, Any]) -> dict[str, Any]:
    return dict(definition.get("web_search") or {})


def _size(options: dict[str, Any], window: int | None) -> reading.ContextSize:
    size = reading.SIZES.get(
        str(options.get("search_context_size") or "medium"), reading.SIZES["medium"]
    )
    # about half the model's window (4 characters a token) at most, so the answer still fits
    cap = max(2_000, (window or UNKNOWN_WINDOW) * 2)
    return reading.ContextSize(size.results, size.snippet_chars, min(size.page_chars, cap))


def locale(location: dict[str, Any] | None) -> str | None:
    """SearxNG's `language` for a user's approximate location (None: its default)."""
    country = str((location or {}).get("country") or "").strip().upper()
    language = _LANGUAGE.get(country)
    return f"{language}-{country}" if language else None


def parse_arguments(arguments: str) -> dict[str, Any]:
    """The model's arguments, with `action` made explicit (inferred when left out)."""
    try:
        parsed = json.loads(arguments or "{}")
    except json.JSONDecodeError:
        parsed = {"query": arguments}
    if isinstance(parsed, str):
        parsed = {"query": parsed}
    if not isinstance(parsed, dict):
        parsed = {}
    action = str(parsed.get("action") or parsed.get("type") or "")
    if action == "find":
        action = "find_in_page"
    if action not in ("search", "open_page", "find_in_page"):
        action = "find_in_page" if parsed.get("pattern") else "open_page"
        if not parsed.get("url"):
            action = "search"
    raw = parsed.get("queries") or parsed.get("query") or []
    queries = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
    return {
        "action": action,
        "queries": [str(q).strip() for q in queries if str(q).strip()][:MAX_QUERIES],
        "url": str(parsed.get("url") or "").strip(),
        "pattern": str(parsed.get("pattern") or ""),
    }


def action_of(args: dict[str, Any]) -> dict[str, Any]:
    """The call item's `action` for the model's arguments (sources added once searched)."""
    if args["action"] == "open_page":
        return {"type": "open_page", "url": args["url"] or None}
    if args["action"] == "find_in_page":
        return {"type": "find_in_page", "url": args["url"], "pattern": args["pattern"]}
    queries = args["queries"]
    return {"type": "search", "query": queries[0] if queries else "", "queries": queries}


def _same_url(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


class WebSearchTool:
    type = "web_search"
    function_name = FUNCTION_NAME

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.rules = OutboundRules.of(settings)
        self._http: httpx.AsyncClient | None = None

    @property
    def enabled(self) -> bool:
        return self.settings.web_search_url is not None

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            timeout = self.settings.web_search_timeout_seconds
            self._http = httpx.AsyncClient(
                timeout=httpx.Timeout(timeout),
                trust_env=False,
                headers={"User-Agent": "assistantd web_search", "Accept-Language": "en"},
            )
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()

    def offered(self, definition: dict[str, Any]) -> bool:
        """Whether the model gets the tool: a search engine is configured, and the request
        allows live access (`external_web_access: false` asks for a cache this server lacks)."""
        return self.enabled and _options(definition).get("external_web_access") is not False

    def function_schema(self, definition: dict[str, Any]) -> dict[str, Any]:
        options = _options(definition)
        description = DESCRIPTION
        domains = options.get("allowed_domains") or []
        if domains:
            description += f" Only these domains (and their subdomains): {', '.join(domains)}."
        location = options.get("user_location") or {}
        where = [str(location[k]) for k in ("city", "region", "country") if location.get(k)]
        if where:
            description += f" The user is near {', '.join(where)}."
        if location.get("timezone"):
            description += f" The user's time zone is {location['timezone']}."
        return {
            "type": "function",
            "function": {
                "name": FUNCTION_NAME,
                "description": description,
                "parameters": {
                    "type": "object",
                    "properties": {
                        "action": {
                            "type": "string",
                            "enum": ["search", "open_page", "find_in_page"],
                        },
                        "queries": {
                            "type": "array",
                            "items": {"type": "string"},
                            "description": "search: the queries (one to three).",
                        },
                        "url": {
                            "type": "string",
                            "description": "open_page, find_in_page: the page's URL.",
                        },
                        "pattern": {
                            "type": "string",
                            "description": "find_in_page: the text to look for.",
                        },
                    },
                    "required": ["action"],
                },
            },
        }

    def initial_details(self, call_id: str) -> dict[str, Any]:
        return {"id": call_id, "type": "web_search", "web_search": {}}

    async def check_available(self) -> None:
        if not self.enabled:
            raise ToolUnavailable("Web search is off on this server (no search engine is set).")

    async def execute(self, ctx: ToolContext, call_id: str, arguments: str) -> ToolResult:
        await self.check_available()
        args = parse_arguments(arguments)
        options = _options(ctx.tool_definition)
        size = _size(options, ctx.context_window)
        domains = list(options.get("allowed_domains") or [])
        action = action_of(args)
        try:
            if args["action"] == "search":
                found = await self._search(args["queries"], options, domains, size)
                action["sources"] = [{"type": "url", "url": r["url"]} for r in found]
                output = reading.listing(args["queries"], found, size)
            else:
                if not args["url"]:
                    raise ToolUnavailable(f'{args["action"]} needs the "url" of a page.')
                url, title, text, truncated = await self._open(args["url"], domains)
                found = [{"url": url, "title": title}]
                if args["action"] == "open_page":
                    output = reading.page(url, title, text, truncated, size)
                else:
                    output = reading.matches(url, args["pattern"], text, size)
        except OutboundRefused as exc:
            raise ToolUnavailable(str(exc)) from exc
        details = {"id": call_id, "type": "web_search", "web_search": {"results": found}}
        return ToolResult(output=output, details=details, item_data={"action": action})

    def failure(self, call_id: str, arguments: str, message: str) -> ToolResult:
        return ToolResult(
            output=message,
            details={"id": call_id, "type": "web_search", "web_search": {"results": []}},
            item_data={"action": action_of(parse_arguments(arguments))},
            failed=True,
        )

    # --- the actions ----------------------------------------------------------------------------

    async def _search(
        self,
        queries: list[str],
        options: dict[str, Any],
        domains: list[str],
        size: reading.ContextSize,
    ) -> list[dict[str, str]]:
        if not queries:
            raise ToolUnavailable('search needs "queries": call web_search with a query.')
        language = locale(options.get("user_location"))
        sites = " OR ".join(f"site:{d}" for d in domains)
        endpoint = f"{self.settings.web_search_url}/search"
        found: list[dict[str, str]] = []
        for query in queries:
            params = {"q": f"{query} {sites}" if sites else query, "format": "json"}
            if language:
                params["language"] = language
            try:
                answer = await self.http.get(endpoint, params=params)
                answer.raise_for_status()
                results = answer.json().get("results") or []
            except (httpx.HTTPError, ValueError, AttributeError) as exc:
                # The engine's address is the operator's: the log has it, the model does not.
                log.warning("web search: SearxNG failed: %r", exc)
                why = (
                    f"HTTP {exc.response.status_code}"
                    if isinstance(exc, httpx.HTTPStatusError)
                    else type(exc).__name__
                )
                raise ToolUnavailable(f"The search engine did not answer ({why}).") from exc
            for result in results:
                url = str(result.get("url") or "") if isinstance(result, dict) else ""
                host = httpx.URL(url).host if url.startswith(("http://", "https://")) else ""
                if not host or not domain_allowed(host, domains):
                    continue
                if any(_same_url(url, seen["url"]) for seen in found):
                    continue
                found.append(
                    {
                        "url": url,
                        "title": str(result.get("title") or url),
                        "snippet": str(result.get("content") or ""),
                    }
                )
        return found[: size.results * len(queries)]

    async def _open(self, url: str, domains: list[str]) -> tuple[str, str, str, bool]:
        """The page at `url`: its final URL, title, text, and whether it was cut."""
        try:
            page = await fetch(
                self.http,
                self.rules,
                url,
                max_bytes=self.settings.web_page_max_bytes,
                timeout=self.settings.web_search_timeout_seconds,
                also_allowed=domains,
            )
        except (httpx.HTTPError, TimeoutError) as exc:
            raise ToolUnavailable(f"{url} could not be opened ({exc or 'timed out'}).") from exc
        if page.content_type and not (
            page.content_type.startswith("text/") or page.content_type.endswith(("+xml", "/json"))
        ):
            raise ToolUnavailable(f"{page.url} is not a text page ({page.content_type}).")
        title, text = reading.page_text(page.url, page.content_type, page.charset, page.body)
        return page.url, title, text, page.truncated

    async def annotate(
        self, ctx: ToolContext, text: str, results: list[ToolResult]
    ) -> list[dict[str, Any]]:
        known: dict[str, str] = {}
        for result in results:
            for found in result.details.get("web_search", {}).get("results", []):
                known.setdefault(found["url"].rstrip("/"), found.get("title") or found["url"])
        return reading.citations(text, known)


_: type[ServerTool] = WebSearchTool
