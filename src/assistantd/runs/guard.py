"""The thread lock: while a run is active, its thread takes no new messages and no new runs."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from assistantd.errors import InvalidRequestError
from assistantd.runs import repository


async def ensure_no_active_run(session: AsyncSession, thread_id: str, *, for_run: bool) -> None:
    """400 in OpenAI's words when `thread_id` has an active run (holds across processes)."""
    await repository.lock_thread(session, thread_id)
    active = await repository.active_run_id(session, thread_id)
    if active is None:
        return
    if for_run:
        raise InvalidRequestError(f"Thread {thread_id} already has an active run {active}.")
    raise InvalidRequestError(
        f"Can't add messages to {thread_id} while a run {active} is active.", param=None
    )
