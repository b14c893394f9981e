"""An `mcp_approval_response` answers an approval request made earlier: in the same input, in
the previous responses, or in the conversation (else a 400, as OpenAI answers)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from assistantd.db.models import Item
from assistantd.errors import InvalidRequestError


async def check(
    session: AsyncSession,
    project: str,
    given: list[Any],
    *,
    thread_id: str | None,
    chain: list[str],
) -> None:
    earlier: set[str] = set()
    wanted: list[tuple[int, str]] = []
    for index, item in enumerate(given):
        kind = getattr(item, "type", None)
        if kind == "mcp_approval_request":
            earlier.add(item.id)
        elif kind == "mcp_approval_response" and item.approval_request_id not in earlier:
            wanted.append((index, item.approval_request_id))
    if not wanted:
        return
    known: set[str] = set()
    if thread_id is not None or chain:
        rows = await session.execute(
            select(Item.id, Item.thread_id, Item.run_id).where(
                Item.id.in_([request_id for _, request_id in wanted]),
                Item.project == project,
                Item.type == "mcp_approval_request",
            )
        )
        for request_id, in_thread, run_id in rows:
            if (thread_id is not None and in_thread == thread_id) or run_id in chain:
                known.add(request_id)
    for index, request_id in wanted:
        if request_id not in known:
            raise InvalidRequestError(
                f"No MCP approval request found with id '{request_id}'.",
                param=f"input[{index}].approval_request_id",
            )
