"""Closing what a run leaves open when it ends early (cancel, failure, expiry, budgets)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from assistantd.db.models import Message, Run, RunStep
from assistantd.kit.timeutil import now
from assistantd.messages import service as messages
from assistantd.runs import render
from assistantd.runs.events import Payload

# How open steps and messages end, by the run's end.
STEP_STATUS = {"cancelled": "cancelled", "failed": "failed", "expired": "expired"}
MESSAGE_REASON = {
    "cancelled": "run_cancelled",
    "failed": "run_failed",
    "expired": "run_expired",
    "incomplete": "max_tokens",
}


async def close_open_work(
    session: AsyncSession,
    run: Run,
    run_status: str,
    *,
    error: tuple[str, str] | None = None,
    partial_text: dict[str, str] | None = None,
) -> list[tuple[str, Payload]]:
    """Mark the run's in-progress messages incomplete and steps ended; return their events."""
    stamp = now()
    out: list[tuple[str, Payload]] = []
    open_messages = (
        await session.scalars(
            # By thread and run: the (thread_id, run_id) index, not a scan of every message.
            select(Message).where(
                Message.thread_id == run.thread_id,
                Message.run_id == run.id,
                Message.status == "in_progress",
            )
        )
    ).all()
    for message in open_messages:
        text = (partial_text or {}).get(message.id, "")
        message.content = [
            *[p for p in message.content if p["type"] != "text"],
            {"type": "text", "text": {"value": text, "annotations": []}},
        ]
        message.status = "incomplete"
        message.incomplete_at = stamp
        message.incomplete_details = {"reason": MESSAGE_REASON.get(run_status, "run_failed")}
        out.append(("thread.message.incomplete", messages.render(message)))
    open_steps = (
        await session.scalars(
            select(RunStep).where(RunStep.run_id == run.id, RunStep.status == "in_progress")
        )
    ).all()
    step_status = STEP_STATUS.get(run_status, "completed")
    for step in open_steps:
        step.status = step_status
        if step_status == "cancelled":
            step.cancelled_at = stamp
        elif step_status == "expired":
            step.expired_at = stamp
        elif step_status == "failed":
            step.failed_at = stamp
            code = (
                "rate_limit_exceeded"
                if error and error[0] == "rate_limit_exceeded"
                else "server_error"
            )
            step.last_error = {"code": code, "message": error[1] if error else "The run failed."}
        else:
            step.completed_at = stamp
        out.append((f"thread.run.step.{step_status}", render.step(step)))
    await session.flush()
    return out
