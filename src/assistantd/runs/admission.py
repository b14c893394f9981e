"""A project's limit on work in flight: runs and responses queued or in progress.

Counted in the database, in the transaction that creates the run, so the limit holds across API
processes and workers: first before anything is written (`admit`: a project over its limit costs
one count, and no model request starts for it; but a run this process starts at once, of a
project it executes fewer than half the limit of, is counted right after its model request
left, which a refusal cancels: see `runs.create.queue`), then, on PostgreSQL, once more as the
transaction commits (`settle` arms it): two creations of one project must not both take its
last slot, so at its commit each takes a per-project transaction lock (an advisory lock, held
to the end of the commit) before it counts, and so counts what the other committed. That is
migration 0009's deferred trigger: the lock is held inside PostgreSQL for the moment of the
commit, not over round trips to this process (which serialized a project's creations: ~80 a
second at 50 clients). A commit it refuses raises `ProjectLimitError` (the engine's error
handler, `_refused`). SQLite has one writer at a time (writers begin IMMEDIATE): its first count
is exact.
"""

from __future__ import annotations

from sqlalchemy import Integer, bindparam, event, func, select, text
from sqlalchemy.engine import Engine, ExceptionContext
from sqlalchemy.ext.asyncio import AsyncSession

from assistantd.db.engine import is_postgres
from assistantd.db.models import Run
from assistantd.errors import ProjectLimitError
from assistantd.runs.state import RunStatus

# What counts against the limit: waiting for a slot or holding one. A run waiting for the
# client's tool outputs (requires_action) does not.
COUNTED = (RunStatus.QUEUED.value, RunStatus.IN_PROGRESS.value, RunStatus.CANCELLING.value)
# How many of a project's runs count, up to the limit (built once: every creation asks).
_USED = select(func.count()).select_from(
    select(Run.id)
    .where(Run.status.in_(COUNTED), Run.project == bindparam("project"))
    .limit(bindparam("limit", type_=Integer))
    .subquery()
)
# What arms the commit's check: the limit, for this transaction (migration 0009's trigger reads
# it; a transaction that has not set it is not counted).
_ARM = text("SELECT set_config('assistantd.max_active_runs', :limit, true)")
# The SQLSTATE of a commit the trigger refused.
_REFUSED = "AD429"
_REFUSED_OF = "active runs over the limit of project "
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
    """On PostgreSQL, in a creating transaction: at its commit, `project` may hold at most
    `limit` active runs, this one among them, with the creations committing at the same moment
    counted (the commit raises `ProjectLimitError` otherwise). The count is made by migration
    0009's trigger as the transaction commits, under a per-project transaction lock, so it
    counts what the commit before it committed."""
    if limit <= 0 or not is_postgres(session):
        return
    await session.execute(_ARM, {"limit": str(limit)})


async def _used(session: AsyncSession, project: str, up_to: int) -> int:
    # On the session's connection: the ORM's execution path costs more than the count.
    connection = await session.connection()
    return await connection.scalar(_USED, {"project": project, "limit": up_to}) or 0


def _check(project: str, used: int, limit: int) -> None:
    if used >= limit:
        raise _refusal(project, used, limit)


def _refusal(project: str, used: int, limit: int) -> ProjectLimitError:
    return ProjectLimitError(
        f"Rate limit reached for project '{project}' on active runs and responses (queued "
        f"or in progress): Limit {limit}, Used {used}, Requested 1. Please try again in "
        f"{RETRY_AFTER_SECONDS}s, once one of them has finished.",
        retry_after=RETRY_AFTER_SECONDS,
    )


@event.listens_for(Engine, "handle_error")
def _refused(context: ExceptionContext) -> ProjectLimitError | None:
    """A commit the trigger refused, as the API's 429 (raised by `session.commit()` instead of
    the database error)."""
    diag = getattr(context.original_exception, "diag", None)
    if diag is None or getattr(context.original_exception, "sqlstate", None) != _REFUSED:
        return None
    project = str(diag.message_primary or "").partition(_REFUSED_OF)[2]
    return _refusal(project, int(diag.message_detail or 0), int(diag.message_hint or 0))
