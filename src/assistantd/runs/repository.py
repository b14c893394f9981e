"""All SQL for runs, run steps and run events."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from assistantd.db.core import column_values, get_row, table_of, update_by_id
from assistantd.db.engine import is_postgres
from assistantd.db.models import Item, Run, RunEvent, RunStep, Thread
from assistantd.kit.pagination import Page, paginate
from assistantd.runs.state import ACTIVE


async def get(session: AsyncSession, project: str, run_id: str) -> Run | None:
    row = await get_row(session, Run, run_id, refresh=True)
    return row if row is not None and row.project == project else None


async def get_any(session: AsyncSession, run_id: str) -> Run | None:
    return await get_row(session, Run, run_id, refresh=True)


async def mark_steered(session: AsyncSession, response_id: str) -> None:
    """Ask a running response to end at its next turn boundary, incomplete (`steered`): its
    execution reads the reason it is to end with before each model call after the first (the
    reason is shown only once the response is incomplete)."""
    await session.execute(
        update(Run)
        .where(Run.id == response_id, Run.status.in_(["queued", "in_progress"]))
        .values(incomplete_details={"reason": "steered"})
    )


async def steered(session: AsyncSession, response_id: str) -> bool:
    """Whether the response has been asked to end at its next turn boundary (`mark_steered`)."""
    details = await session.scalar(select(Run.incomplete_details).where(Run.id == response_id))
    return (details or {}).get("reason") == "steered"


_ACTIVE_RUN = (
    select(Run.id)
    .where(Run.thread_id == bindparam("thread_id"), Run.status.in_([s.value for s in ACTIVE]))
    .limit(1)
)


async def active_run_id(session: AsyncSession, thread_id: str) -> str | None:
    """The thread's active (non-terminal) run, if any."""
    return await session.scalar(_ACTIVE_RUN, {"thread_id": thread_id})


async def list_page(
    session: AsyncSession, thread_id: str, page: Page
) -> tuple[Sequence[Run], bool]:
    return await paginate(session, select(Run).where(Run.thread_id == thread_id), Run.id, page)


async def get_step(session: AsyncSession, run_id: str, step_id: str) -> RunStep | None:
    row = await get_row(session, RunStep, step_id, refresh=True)
    return row if row is not None and row.run_id == run_id else None


async def list_steps(
    session: AsyncSession, run_id: str, page: Page
) -> tuple[Sequence[RunStep], bool]:
    query = select(RunStep).where(RunStep.run_id == run_id)
    return await paginate(session, query, RunStep.id, page)


async def steps_of(session: AsyncSession, run_id: str) -> Sequence[RunStep]:
    """All steps of a run, oldest first."""
    return (
        await session.scalars(
            select(RunStep)
            .where(RunStep.run_id == run_id)
            .order_by(RunStep.id)
            .execution_options(populate_existing=True)
        )
    ).all()


async def last_seq(session: AsyncSession, run_id: str) -> int:
    value = await session.scalar(select(func.max(RunEvent.seq)).where(RunEvent.run_id == run_id))
    return int(value or 0)


async def events_after(
    session: AsyncSession, run_id: str, seq: int, limit: int = 500
) -> Sequence[RunEvent]:
    return (
        await session.scalars(
            select(RunEvent)
            .where(RunEvent.run_id == run_id, RunEvent.seq > seq)
            .order_by(RunEvent.seq)
            .limit(limit)
        )
    ).all()


async def last_event_name(session: AsyncSession, run_id: str) -> str | None:
    return await session.scalar(
        select(RunEvent.event)
        .where(RunEvent.run_id == run_id)
        .order_by(RunEvent.seq.desc())
        .limit(1)
    )


async def update_item(session: AsyncSession, item_id: str, values: dict[str, Any]) -> None:
    await _update_by_key(session, Item, item_id, values)


async def update_run(session: AsyncSession, run_id: str, values: dict[str, Any]) -> None:
    """Columns of a run other than its status (see `state` for that)."""
    await _update_by_key(session, Run, run_id, values)


async def update_step(session: AsyncSession, step_id: str, values: dict[str, Any]) -> None:
    await _update_by_key(session, RunStep, step_id, values)


async def _update_by_key(
    session: AsyncSession, model: type[Item | Run | RunStep], row_id: str, values: dict[str, Any]
) -> None:
    """UPDATE one row by id as a plain statement (`values` by attribute name): the ORM's
    bulk-update layer costs more than the statement, and the caller keeps its own copy."""
    await update_by_id(session, table_of(model), row_id, column_values(model, values))


_LOCK_THREAD = select(Thread.id).where(Thread.id == bindparam("thread_id")).with_for_update()


async def lock_thread(session: AsyncSession, thread_id: str) -> None:
    """Serialize run/message creation on one thread across processes.

    PostgreSQL: a row lock held to the end of the transaction. SQLite: writers already hold the
    database write lock from BEGIN IMMEDIATE.
    """
    if is_postgres(session):
        await session.execute(_LOCK_THREAD, {"thread_id": thread_id})
