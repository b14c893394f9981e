"""Closing what a run leaves open when it ends early (cancel, failure, expiry, budgets)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from assistantd.db.models import Item, Run
from assistantd.kit.timeutil import now

# Why open messages end, by the run's end.
MESSAGE_REASON = {
    "cancelled": "run_cancelled",
    "failed": "run_failed",
    "expired": "run_expired",
    "incomplete": "max_tokens",
}

_OPEN_ITEMS = select(Item).where(Item.run_id == bindparam("run_id"), Item.status == "in_progress")
_UNANSWERED_CALLS = select(Item).where(
    Item.run_id == bindparam("run_id"),
    Item.type == "function_call",
    Item.status == "completed",
    Item.call_id.not_in(
        select(Item.call_id)
        .where(Item.run_id == bindparam("run_id"), Item.type == "function_call_output")
        .scalar_subquery()
    ),
)


async def close_open_items(
    session: AsyncSession,
    run: Run,
    run_status: str,
    *,
    partial_text: dict[str, str] | None = None,
    keep_text: bool = True,
) -> Sequence[Item]:
    """Mark the run's in-progress items incomplete (a message keeps the text streamed so far:
    `partial_text`'s, else its last checkpoint; a reasoning item its `partial_text`), and, when
    it did not complete, the function calls it left unanswered (a run that expired or was
    cancelled waiting for outputs): the model never sees those again. Without `keep_text`,
    messages close empty. Returns the items closed, updated."""
    stamp = now()
    closed = list((await session.scalars(_OPEN_ITEMS, {"run_id": run.id})).all())
    for item in closed:
        item.status = "incomplete"
        if item.type == "reasoning" and (partial_text or {}).get(item.id):
            thought = {"type": "reasoning_text", "text": (partial_text or {})[item.id]}
            item.data = {**(item.data or {}), "content": [thought]}
        if item.type != "message":
            continue
        # The text streamed so far: this process's, else the last checkpoint stored.
        texts = [p["text"]["value"] for p in item.content or [] if p["type"] == "text"]
        stored = texts[0] if texts and keep_text else ""
        text = (partial_text or {}).get(item.id, stored)
        item.content = [
            *[p for p in item.content or [] if p["type"] != "text"],
            {"type": "text", "text": {"value": text, "annotations": []}},
        ]
        item.incomplete_at = stamp
        item.incomplete_details = {"reason": MESSAGE_REASON.get(run_status, "run_failed")}
    if run_status != "completed":
        for item in (await session.scalars(_UNANSWERED_CALLS, {"run_id": run.id})).all():
            item.status = "incomplete"
    await session.flush()
    return closed
