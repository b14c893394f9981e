"""What the model reads of web search results and pages, and the citations in its answer."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from assistantd.vector_stores.parsing import html_text

MAX_MATCHES = 10
_MARKDOWN_LINK = re.compile(r"\[([^\]\n]*)\]\(<?(https?://[^\s)>]+)>?(?:\s+\"[^\"]*\")?\)")
_BARE_URL = re.compile(r"https?://[^\s<>()\[\]\"'`]+")
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class ContextSize:
    results: int  # results the model reads per search
    snippet_chars: int  # of each result's text
    page_chars: int  # of an opened page (or of the matches found in it)


SIZES = {
    "low": ContextSize(3, 300, 4_000),
    "medium": ContextSize(6, 600, 12_000),
    "high": ContextSize(10, 1_200, 30_000),
}


def page_text(url: str, content_type: str, charset: str | None, body: bytes) -> tuple[str, str]:
    """A fetched page's title (its URL when it has none) and readable text."""
    try:
        markup = body.decode(charset or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        markup = body.decode("utf-8", errors="replace")
    title = url
    if content_type in ("text/html", "application/xhtml+xml", ""):
        match = _TITLE.search(markup)
        if match:
            title = " ".join(html_text(match.group(1)).split()) or url
        markup = html_text(markup)
    return title, markup


def listing(queries: list[str], found: list[dict[str, str]], size: ContextSize) -> str:
    if not found:
        return f"No web results for: {'; '.join(queries)}."
    blocks = []
    for number, result in enumerate(found):
        snippet = result["snippet"][: size.snippet_chars]
        blocks.append(f"[{number}] {result['title']}\nURL: {result['url']}\n{snippet}".strip())
    return (
        f"Web results for: {'; '.join(queries)}. Cite a result with a markdown link to its "
        f"URL, e.g. [{found[0]['title']}]({found[0]['url']}).\n\n" + "\n\n".join(blocks)
    )


def page(url: str, title: str, text: str, truncated: bool, size: ContextSize) -> str:
    shown = text[: size.page_chars]
    cut = truncated or len(text) > len(shown)
    note = "\n\n(the page goes on; find_in_page looks through all of it)" if cut else ""
    return f"Page: {title}\nURL: {url}\n\n{shown}{note}"


def matches(url: str, pattern: str, text: str, size: ContextSize) -> str:
    if not pattern:
        return 'find_in_page needs a "pattern" to look for.'
    lowered, needle = text.lower(), pattern.lower()
    spots: list[str] = []
    start = lowered.find(needle)
    room = max(80, size.page_chars // MAX_MATCHES)
    while start >= 0 and len(spots) < MAX_MATCHES:
        left = max(0, start - room // 2)
        right = min(len(text), start + len(pattern) + room // 2)
        spots.append(" ".join(text[left:right].split()))
        start = lowered.find(needle, start + len(needle))
    if not spots:
        return f"'{pattern}' does not occur in {url}."
    listed = "\n".join(f"- ...{spot}..." for spot in spots)
    return f"'{pattern}' in {url} ({len(spots)} places shown):\n{listed}"


def citations(text: str, known: dict[str, str]) -> list[dict[str, Any]]:
    """`url_citation` annotations of the URLs of `known` (URL without its final slash -> title)
    that `text` cites: markdown links (the whole link) and bare URLs."""
    if not known:
        return []
    annotations: list[dict[str, Any]] = []
    linked: list[tuple[int, int]] = []
    for match in _MARKDOWN_LINK.finditer(text):
        linked.append(match.span())
        _cite(annotations, known, match.group(2), match.group(0), match.span())
    for match in _BARE_URL.finditer(text):
        if any(start <= match.start() < end for start, end in linked):
            continue
        url = match.group(0).rstrip(".,;:!?")
        span = (match.start(), match.start() + len(url))
        _cite(annotations, known, url, url, span)
    return annotations


def _cite(
    annotations: list[dict[str, Any]],
    known: dict[str, str],
    url: str,
    cited: str,
    span: tuple[int, int],
) -> None:
    title = known.get(url.rstrip("/"))
    if title is None:
        return
    annotations.append(
        {
            "type": "url_citation",
            "text": cited,
            "start_index": span[0],
            "end_index": span[1],
            "url_citation": {"url": url, "title": title},
        }
    )
