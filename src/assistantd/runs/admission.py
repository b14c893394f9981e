"""A project's limit on work in flight: runs and responses queued or in progress.

Counted in the database, in the transaction that creates the run, so the limit holds across API
processes and workers. Two creations of one project must not both take its last slot: on
PostgreSQL each takes a per-project transaction lock (an advisory lock, held until its commit)
before it counts, and so counts what the other committed; SQLite has one writer at a time
(writers begin IMMEDIATE).
"""

from __future__ import annotations

from sqlalchemy import Integer, bindparam, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from assistantd.db.engine import is_postgres
from assistantd.db.models import Run
from assistantd.errors import ProjectLimitError
from assistantd.runs.state import RunStatus

# What counts against the limit: waiting for a slot or holding one. A run waiting for the
# client's tool outputs (requires_action) does not.
COUNTED = (RunStatus.QUEUED.value, RunStatus.IN_PROGRESS.value, RunStatus.CANCELLING.value)
# The first key of assistantd's advisory locks ("asd"), so that they meet no other program's.
_LOCK_SPACE = 0x617364
# How many of a project's runs count, up to the limit (built once: every creation asks).
_USED = select(func.count()).select_from(
    select(Run.id)
    .where(Run.status.in_(COUNTED), Run.project == bindparam("project"))
    .limit(bindparam("limit", type_=Integer))
    .subquery()
)
_LOCK = text("SELECT pg_advisory_xact_lock(:space, hashtext(:project))")
# Seconds a refused client is told to wait: a slot frees when any of its runs ends.
RETRY_AFTER_SECONDS = 1


async def admit(session: AsyncSession, project: str, limit: int) -> None:
    """Let `project` start one more run in this transaction, or raise OpenAI's 429 when it has
    `limit` active already (0: no limit)."""
    if limit <= 0:
        return
    if is_postgres(session):
        await session.execute(_LOCK, {"space": _LOCK_SPACE, "project": project})
    used = await session.scalar(_USED, {"project": project, "limit": limit}) or 0
    if used >= limit:
        raise ProjectLimitError(
            f"Rate limit reached for project '{project}' on active runs and responses (queued "
            f"or in progress): Limit {limit}, Used {used}, Requested 1. Please try again in "
            f"{RETRY_AFTER_SECONDS}s, once one of them has finished.",
            retry_after=RETRY_AFTER_SECONDS,
        )
