"""The `file_search` tool: the model searches the run's vector stores and cites what it used.

The model calls `file_search` with queries. It reads back ranked chunks, each headed by a source
marker such as `【k3f9:0†report.pdf】` (OpenAI's citation style: a tag of this call, the result's
number, the file name). Markers the model copies into its answer become `file_citation`
annotations on the final text, with the marker as the annotation's `text` and its exact indices.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assistantd.backends.tokens import estimate_tokens
from assistantd.blobs.store import BlobStore
from assistantd.db.models import VectorStore
from assistantd.kit.timeutil import now
from assistantd.settings import Settings
from assistantd.tools.base import ServerTool, ToolContext, ToolRegistry, ToolResult
from assistantd.vector_stores import repository
from assistantd.vector_stores.ingest import IngestWorker
from assistantd.vector_stores.search import Hit, Retrieval
from assistantd.vector_stores.service import is_expired

FUNCTION_NAME = "file_search"
DEFAULT_MAX_RESULTS = 20
MAX_OUTPUT_TOKENS = 16_000
_UNKNOWN_WINDOW = 8192  # what results may assume of a window nobody knows
MARKER = re.compile(r"【(?:([0-9a-z]{4}):)?(\d+)†([^】]*)】")
DESCRIPTION = (
    "Search the files the user provided (documents, notes, code) for passages relevant to the "
    "conversation. Pass one or more short search queries. Each result starts with a source "
    "marker like 【abcd:0†file.pdf】; when your answer uses a result, cite it by copying its "
    "marker exactly, right after the sentence it supports."
)


def _tag(call_id: str) -> str:
    """Four characters that tell this call's results apart from other calls' in the run."""
    return call_id[-4:].lower()


def _queries(arguments: str) -> list[str]:
    try:
        parsed = json.loads(arguments or "{}")
    except json.JSONDecodeError:
        return [arguments] if arguments.strip() else []
    if isinstance(parsed, str):
        return [parsed]
    if not isinstance(parsed, dict):
        return []
    raw = parsed.get("queries", parsed.get("query", []))
    items = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
    return [str(item) for item in items if str(item).strip()][:5]


def _budget(ctx: ToolContext) -> int:
    """Tokens the results may take: OpenAI gives file search about 16k; a small model's context
    window gets half of it at most, so the answer still fits (an unknown one, 4k)."""
    window = ctx.context_window or _UNKNOWN_WINDOW
    return max(1000, min(MAX_OUTPUT_TOKENS, window // 2))


def _within_budget(hits: list[Hit], budget: int) -> list[Hit]:
    """The best hits whose text fits `budget` (at least one)."""
    kept: list[Hit] = []
    used = 0
    for hit in hits:
        used += estimate_tokens(hit.text) + 16  # the marker line
        if kept and used > budget:
            break
        kept.append(hit)
    return kept


class FileSearchTool:
    type = "file_search"
    function_name = FUNCTION_NAME

    def __init__(self, retrieval: Retrieval, ingest: IngestWorker) -> None:
        self.retrieval = retrieval
        # Ingestion runs wherever runs run: the run worker starts and stops its tools.
        self.ingest = ingest

    @classmethod
    def build(
        cls,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        blobs: BlobStore,
        http: httpx.AsyncClient,
    ) -> FileSearchTool:
        retrieval = Retrieval.build(settings, http)
        return cls(retrieval, IngestWorker(settings, sessions, blobs, retrieval))

    @staticmethod
    def of(tools: ToolRegistry) -> FileSearchTool:
        """The process's file search tool: its retrieval (embedder, caches) serves the API too."""
        tool = tools.get(FileSearchTool.type)
        assert isinstance(tool, FileSearchTool), "the file_search tool is always registered"
        return tool

    def start(self) -> None:
        self.ingest.start()

    async def aclose(self) -> None:
        await self.ingest.stop()

    def function_schema(self, definition: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": FUNCTION_NAME,
                "description": DESCRIPTION,
                "parameters": {
                    "type": "object",
                    "properties": {
                        "queries": {
                            "type": "array",
                            "items": {"type": "string"},
                            "description": "Search queries (one to five).",
                        }
                    },
                    "required": ["queries"],
                },
            },
        }

    def initial_details(self, call_id: str) -> dict[str, Any]:
        return {"id": call_id, "type": "file_search", "file_search": {}}

    async def check_available(self) -> None:
        return None

    def _options(self, definition: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        settings = definition.get("file_search") or {}
        max_results = settings.get("max_num_results") or DEFAULT_MAX_RESULTS
        ranking = settings.get("ranking_options") or {}
        return int(max_results), {
            "ranker": ranking.get("ranker") or "default_2024_08_21",
            "score_threshold": float(ranking.get("score_threshold") or 0.0),
        }

    @staticmethod
    def _weights(definition: dict[str, Any]) -> tuple[float, float] | None:
        """A response's `ranking_options.hybrid_search`: (embedding_weight, text_weight)."""
        ranking = (definition.get("file_search") or {}).get("ranking_options") or {}
        hybrid = ranking.get("hybrid_search")
        if not hybrid:
            return None
        return float(hybrid["embedding_weight"]), float(hybrid["text_weight"])

    async def execute(self, ctx: ToolContext, call_id: str, arguments: str) -> ToolResult:
        definition = ctx.tool_definition
        max_results, ranking = self._options(definition)
        # A response's tool names its stores; a run searches its assistant's and thread's.
        store_ids = list(
            definition.get("vector_store_ids")
            or (ctx.tool_resources.get("file_search") or {}).get("vector_store_ids", [])
        )
        queries = _queries(arguments)
        hits: list[Hit] = []
        if store_ids and queries:
            async with ctx.sessions() as session:
                stores = [
                    store
                    for store_id in store_ids
                    if (store := await session.get(VectorStore, store_id)) is not None
                    and store.project == ctx.project
                    and not is_expired(store)
                ]
                hits = await self.retrieval.search(
                    session,
                    stores,
                    queries,
                    max_results=max_results,
                    score_threshold=ranking["score_threshold"],
                    filters=definition.get("filters"),
                    weights=self._weights(definition),
                )
                if stores and any(now() - s.last_active_at >= 60 for s in stores):
                    await repository.touch(session, [s.id for s in stores])
                await session.commit()
        hits = _within_budget(hits, _budget(ctx))
        details = {
            "id": call_id,
            "type": "file_search",
            "file_search": {
                "ranking_options": ranking,
                "results": [
                    {
                        "file_id": hit.file_id,
                        "file_name": hit.filename,
                        "score": hit.score,
                        "content": [{"type": "text", "text": hit.text}],
                    }
                    for hit in hits
                ],
            },
        }
        item_data = {
            "queries": queries,
            "results": [
                {
                    "file_id": hit.file_id,
                    "filename": hit.filename,
                    "text": hit.text,
                    "attributes": hit.attributes or {},
                    "score": hit.score,
                }
                for hit in hits
            ],
        }
        output = self._output(call_id, queries, store_ids, hits)
        return ToolResult(output=output, details=details, item_data=item_data)

    def failure(self, call_id: str, arguments: str, message: str) -> ToolResult:
        return ToolResult(
            output=message,
            details={"id": call_id, "type": "file_search", "file_search": {"results": []}},
            item_data={"queries": _queries(arguments), "results": []},
            failed=True,
        )

    def _output(
        self, call_id: str, queries: list[str], store_ids: list[str], hits: list[Hit]
    ) -> str:
        if not queries:
            return 'No search query was given: call file_search with {"queries": ["..."]}.'
        if not store_ids:
            return "There are no files to search: no vector store is attached to this run."
        if not hits:
            return f"No results in the user's files for: {'; '.join(queries)}."
        tag = _tag(call_id)
        blocks = [
            f"【{tag}:{number}†{hit.filename}】 (score {hit.score:.3f})\n{hit.text}"
            for number, hit in enumerate(hits)
        ]
        return (
            f"Results for: {'; '.join(queries)}. Cite a result by copying its marker, "
            f"e.g. 【{tag}:0†{hits[0].filename}】.\n\n" + "\n\n---\n\n".join(blocks)
        )

    async def annotate(
        self, ctx: ToolContext, text: str, results: list[ToolResult]
    ) -> list[dict[str, Any]]:
        by_tag: dict[str, list[dict[str, Any]]] = {}
        ordered: list[list[dict[str, Any]]] = []
        for result in results:
            found = result.details.get("file_search", {}).get("results", [])
            by_tag[_tag(result.details["id"])] = found
            ordered.append(found)
        annotations: list[dict[str, Any]] = []
        for match in MARKER.finditer(text):
            tag, number, name = match.group(1), int(match.group(2)), match.group(3).strip()
            candidates = by_tag.get(tag) if tag else (ordered[-1] if ordered else None)
            cited = None
            if candidates is not None and number < len(candidates):
                cited = candidates[number]
            if cited is None or (name and cited["file_name"] != name):
                # A marker the model garbled: fall back to the file it names.
                cited = next(
                    (r for group in ordered for r in group if r["file_name"] == name), cited
                )
            if cited is None:
                continue
            annotations.append(
                {
                    "type": "file_citation",
                    "text": match.group(0),
                    "file_citation": {"file_id": cited["file_id"]},
                    "start_index": match.start(),
                    "end_index": match.end(),
                }
            )
        return annotations


_: type[ServerTool] = FileSearchTool
