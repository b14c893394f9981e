"""Items as the Responses and Conversations APIs show them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from assistantd.db.models import File, Item
from assistantd.items import client_calls, content
from assistantd.mcp import items as mcp_items

# `include[]` values that add optional fields to items.
CODE_INTERPRETER_OUTPUTS = "code_interpreter_call.outputs"
FILE_SEARCH_RESULTS = "file_search_call.results"
WEB_SEARCH_SOURCES = "web_search_call.action.sources"
ENCRYPTED_REASONING = "reasoning.encrypted_content"
OUTPUT_LOGPROBS = "message.output_text.logprobs"


async def filenames(session: AsyncSession, items: Iterable[Item]) -> dict[str, str]:
    """The names of the files the items' citations point to (one query, none when no item
    cites a file)."""
    ids: set[str] = set()
    for item in items:
        if item.type == "message" and item.role == "assistant":
            ids |= content.cited_files(item.content or [])
    if not ids:
        return {}
    rows = await session.execute(select(File.id, File.filename).where(File.id.in_(ids)))
    return dict(rows.all())


def item(
    row: Item, include: frozenset[str] = frozenset(), files: dict[str, str] | None = None
) -> dict[str, Any]:
    """One item in the Responses wire shape."""
    data = row.data or {}
    kind = row.type
    if kind == "message":
        if row.role == "assistant":
            logprobs = OUTPUT_LOGPROBS in include
            parts = content.output_parts(row.content or [], files or {}, logprobs=logprobs)
        else:
            parts = content.input_parts(row.content or [], include)
        return {
            "id": row.id,
            "type": "message",
            "status": row.status,
            "content": parts,
            "role": row.role,
        }
    if kind == "function_call":
        call = {
            "type": "function_call",
            "id": row.id,
            "call_id": row.call_id,
            "name": data.get("name", ""),
            "arguments": data.get("arguments", ""),
            "status": row.status,
        }
        if data.get("namespace"):
            call["namespace"] = data["namespace"]
        return call
    if kind == "function_call_output":
        return {
            "type": "function_call_output",
            "id": row.id,
            "call_id": row.call_id,
            "output": data.get("output", ""),
            "status": row.status,
        }
    if kind == "reasoning":
        out: dict[str, Any] = {
            "type": "reasoning",
            "id": row.id,
            "summary": data.get("summary") or [],
            "status": row.status,
        }
        if data.get("content") is not None:
            out["content"] = data["content"]
        if ENCRYPTED_REASONING in include and data.get("encrypted_content") is not None:
            out["encrypted_content"] = data["encrypted_content"]
        return out
    if kind == "code_interpreter_call":
        outputs = data.get("outputs") or []
        return {
            "type": "code_interpreter_call",
            "id": row.id,
            "status": row.status,
            "container_id": data.get("container_id", ""),
            "code": data.get("code"),
            "outputs": _code_outputs(outputs) if CODE_INTERPRETER_OUTPUTS in include else None,
        }
    if kind == "file_search_call":
        return {
            "type": "file_search_call",
            "id": row.id,
            "status": row.status,
            "queries": data.get("queries") or [],
            "results": data.get("results") if FILE_SEARCH_RESULTS in include else None,
        }
    if kind == "web_search_call":
        return {
            "type": "web_search_call",
            "id": row.id,
            "status": row.status,
            "action": _web_search_action(data, WEB_SEARCH_SOURCES in include),
        }
    if kind in mcp_items.TYPES:
        return mcp_items.wire(row)
    if kind == "compaction":
        return {
            "id": row.id,
            "type": "compaction",
            "encrypted_content": data.get("encrypted_content", ""),
        }
    return client_calls.render(row)


def _web_search_action(data: dict[str, Any], sources: bool) -> dict[str, Any]:
    action = dict(data.get("action") or {"type": "search"})
    if action.get("type") == "search":
        found = action.pop("sources", None)
        if sources:
            action["sources"] = found or []
    return action


def _code_outputs(outputs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    rendered: list[dict[str, Any]] = []
    for output in outputs:
        if output.get("type") == "logs":
            rendered.append({"type": "logs", "logs": output.get("logs", "")})
        elif output.get("type") == "image":
            image = output.get("image") or {}
            # a replayed or migrated call may name the file instead of carrying the data
            url = output.get("url") or f"/v1/files/{image.get('file_id', '')}/content"
            rendered.append({"type": "image", "url": url})
    return rendered


def items(
    rows: Sequence[Item], include: frozenset[str] = frozenset(), files: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    return [item(row, include, files) for row in rows]
