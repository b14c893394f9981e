"""The `web_search` tools of a Responses request (`WebSearchTool`, `WebSearchPreviewTool`), and
what the engine keeps of them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from assistantd.kit.schemas import RequestModel

WEB_SEARCH_TYPES = ("web_search", "web_search_2025_08_26")
WEB_SEARCH_PREVIEW_TYPES = ("web_search_preview", "web_search_preview_2025_03_11")
SearchContextSize = Literal["low", "medium", "high"]


class ApproximateLocation(RequestModel):
    type: Literal["approximate"] | None = "approximate"
    country: str | None = Field(None, max_length=64)
    region: str | None = Field(None, max_length=256)
    city: str | None = Field(None, max_length=256)
    timezone: str | None = Field(None, max_length=128)


class WebSearchFilters(RequestModel):
    allowed_domains: list[str] | None = Field(None, max_length=100)


class ImageSettings(RequestModel):
    max_results: int | None = Field(None, ge=1, le=100)
    caption: bool | None = None


class WebSearchToolParam(RequestModel):
    type: Literal["web_search", "web_search_2025_08_26"]
    external_web_access: bool | None = None
    filters: WebSearchFilters | None = None
    user_location: ApproximateLocation | None = None
    search_context_size: SearchContextSize | None = None
    # Not in the spec's `WebSearchTool`, but Codex and the Agents SDK send them with one.
    search_content_types: list[Literal["text", "image"]] | None = None
    image_settings: ImageSettings | None = None


class WebSearchPreviewToolParam(RequestModel):
    type: Literal["web_search_preview", "web_search_preview_2025_03_11"]
    user_location: ApproximateLocation | None = None
    search_context_size: SearchContextSize | None = None
    search_content_types: list[Literal["text", "image"]] | None = None


def engine_entry(tool: WebSearchToolParam | WebSearchPreviewToolParam) -> dict[str, Any]:
    """The tool as the run engine keeps it (`{"type": "web_search", "web_search": {...}}`)."""
    domains = None
    external = True
    if isinstance(tool, WebSearchToolParam):
        domains = tool.filters.allowed_domains if tool.filters is not None else None
        external = tool.external_web_access is not False
    location = tool.user_location.model_dump() if tool.user_location is not None else None
    return {
        "type": "web_search",
        "web_search": {
            "search_context_size": tool.search_context_size or "medium",
            "allowed_domains": [d.strip().lower() for d in domains or [] if d.strip()],
            "user_location": location,
            "external_web_access": external,
            "search_content_types": tool.search_content_types,
        },
    }


def echoed(tool: WebSearchToolParam | WebSearchPreviewToolParam) -> dict[str, Any]:
    """The tool as the response shows it: the spec's fields of its type, defaults filled."""
    location = None
    if tool.user_location is not None:
        location = {"type": "approximate", **tool.user_location.model_dump(exclude={"type"})}
    shown: dict[str, Any] = {"type": tool.type}
    if isinstance(tool, WebSearchToolParam):
        allowed = tool.filters.allowed_domains if tool.filters is not None else None
        shown["filters"] = {"allowed_domains": allowed} if tool.filters is not None else None
        if tool.external_web_access is not None:
            shown["external_web_access"] = tool.external_web_access
    else:
        shown["search_content_types"] = tool.search_content_types
    shown["search_context_size"] = tool.search_context_size or "medium"
    shown["user_location"] = location
    return shown
