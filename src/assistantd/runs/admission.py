"""A project's limit on work in flight: runs and responses queued or in progress.

Counted in the database, in the transaction that creates the run, so the limit holds across API
processes and workers: first before anything is written (`admit`: a project over its limit costs
one count, and no model request starts for it), then, on PostgreSQL, once more as the
transaction's last statement (`settle`): two creations of one project must not both take its
last slot, so each takes a per-project transaction lock (an advisory lock, held until its commit,
a moment later) before it counts, and so counts what the other committed. SQLite has one writer
at a time (writers begin IMMEDIATE): its first count is exact.
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


async def admit(session: AsyncSession, project: str, limit: int, *, may_start: bool) -> None:
    """Whether `project` may start one more run, asked before anything is written: OpenAI's
    429 when it has `limit` active already (0: no limit). On SQLite, where the creating
    transaction is the only writer, that is the answer; on PostgreSQL `settle` gives it, and
    this first count is only made when the run `may_start` before the commit (a worker in this
    process), so that no model request starts for a run the limit refuses."""
    if limit > 0 and (may_start or not is_postgres(session)):
        _check(project, await _used(session, project, limit), limit)


async def settle(session: AsyncSession, project: str, limit: int) -> None:
    """On PostgreSQL, the last statement of a creating transaction (its run written): `project`
    may hold at most `limit` active runs, this one among them, with the creations committing at
    the same moment counted. Each takes a per-project transaction lock (held the short while to
    its commit) before it counts, and so counts what the one before it committed."""
    if limit <= 0 or not is_postgres(session):
        return
    await session.execute(_LOCK, {"space": _LOCK_SPACE, "project": project})
    _check(project, await _used(session, project, limit + 1) - 1, limit)


async def _used(session: AsyncSession, project: str, up_to: int) -> int:
    return await session.scalar(_USED, {"project": project, "limit": up_to}) or 0


def _check(project: str, used: int, limit: int) -> None:
    if used >= limit:
        raise ProjectLimitError(
            f"Rate limit reached for project '{project}' on active runs and responses (queued "
            f"or in progress): Limit {limit}, Used {used}, Requested 1. Please try again in "
            f"{RETRY_AFTER_SECONDS}s, once one of them has finished.",
            retry_after=RETRY_AFTER_SECONDS,
        )
