"""Cancel a run: at once when no worker holds it, else ask the worker to stop."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from assistantd.db.models import Run
from assistantd.errors import InvalidRequestError
from assistantd.runs import events, render, state
from assistantd.runs.recorder import surface_of
from assistantd.runs.signals import Signals, notify_run_changed
from assistantd.runs.state import RunStatus


async def cancel(session: AsyncSession, run: Run, *, signals: Signals) -> Run:
    status = RunStatus(run.status)
    if status in state.TERMINAL:
        raise InvalidRequestError(f"Cannot cancel run with status '{status.value}'.")
    if status is RunStatus.CANCELLING:
        return run
    if status is RunStatus.IN_PROGRESS:
        # The worker holding it sees `cancelling`, stops, and finishes the cancel.
        if await state.transition(session, run.id, RunStatus.IN_PROGRESS, RunStatus.CANCELLING):
            await notify_run_changed(session, signals, run.id)
        await session.refresh(run)
        return run
    # queued or requires_action: nobody is executing it.
    if not await state.transition(session, run.id, status, RunStatus.CANCELLED):
        await session.refresh(run)
        return await cancel(session, run, signals=signals)
    await session.refresh(run)
    wire = render.run(run)
    ended = await surface_of(run.id).ended_outside(session, run, None)
    await events.append(
        session,
        signals,
        run.id,
        [("thread.run.cancelling", {**wire.model_dump(), "status": "cancelling"}), *ended],
    )
    return run
