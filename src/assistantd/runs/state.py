"""The run status machine. Only this module writes `runs.status`.

Every change is a guarded `UPDATE ... WHERE status IN (:expected)`: when two actors race (two
workers claiming, a cancel against a claim, the reaper against a slow worker) exactly one wins,
and the loser learns it from the row count.
"""

from __future__ import annotations

import enum
import functools
import logging
import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Integer, bindparam, func, literal_column, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from assistantd.db.core import set_clause, set_parameters
from assistantd.db.models import Run, RunEvent
from assistantd.kit.timeutil import now
from assistantd.ops import metrics

log = logging.getLogger(__name__)


class RunStatus(enum.StrEnum):
    QUEUED = "queued"  # waiting for a worker
    IN_PROGRESS = "in_progress"  # a worker holds the lease and is executing it
    REQUIRES_ACTION = "requires_action"  # waiting for the client's function outputs
    CANCELLING = "cancelling"  # cancel asked; the worker will stop and finish the cancel
    CANCELLED = "cancelled"  # terminal: cancelled
    FAILED = "failed"  # terminal: last_error says why
    COMPLETED = "completed"  # terminal: success
    INCOMPLETE = "incomplete"  # terminal: a token budget ran out (incomplete_details)
    EXPIRED = "expired"  # terminal: outputs not submitted (or not run) before expires_at


TERMINAL = frozenset(
    {
        RunStatus.CANCELLED,
        RunStatus.FAILED,
        RunStatus.COMPLETED,
        RunStatus.INCOMPLETE,
        RunStatus.EXPIRED,
    }
)
ACTIVE = frozenset(set(RunStatus) - TERMINAL)

ALLOWED: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.QUEUED: frozenset(
        {RunStatus.IN_PROGRESS, RunStatus.CANCELLED, RunStatus.EXPIRED, RunStatus.FAILED}
    ),
    RunStatus.IN_PROGRESS: frozenset(
        {
            RunStatus.REQUIRES_ACTION,
            RunStatus.COMPLETED,
            RunStatus.INCOMPLETE,
            RunStatus.FAILED,
            RunStatus.CANCELLING,
            RunStatus.EXPIRED,
            RunStatus.QUEUED,  # handed back: graceful shutdown, or the reaper after a crash
        }
    ),
    RunStatus.REQUIRES_ACTION: frozenset(
        {RunStatus.QUEUED, RunStatus.CANCELLED, RunStatus.EXPIRED, RunStatus.FAILED}
    ),
    RunStatus.CANCELLING: frozenset({RunStatus.CANCELLED, RunStatus.FAILED}),
}

# The timestamp each status stamps when entered (an incomplete run has none: OpenAI leaves
# `completed_at` null for it).
_STAMPS = {
    RunStatus.COMPLETED: "completed_at",
    RunStatus.FAILED: "failed_at",
    RunStatus.CANCELLED: "cancelled_at",
}


class IllegalTransition(Exception):
    pass


async def transition(
    session: AsyncSession,
    run_id: str,
    expected: RunStatus | Iterable[RunStatus],
    to: RunStatus,
    *,
    held_by: str | None = None,
    cause: BaseException | None = None,
    **fields: Any,
) -> Run | None:
    """Move the run from one of `expected` to `to`: the run as it is now (read back by the same
    statement, and refreshed in the session), or None when it was not in `expected`.

    `held_by`, when given, is the worker that must still hold the run's lease. Leaving the
    worker's hands (any status but in_progress/cancelling) releases the lease; terminal statuses
    also clear `required_action` and `expires_at` and stamp their timestamp.

    Every run that ends failed or incomplete is logged here, in one line (with the traceback of
    `cause`, the unexpected exception that failed it, if any).
    """
    sources = {expected} if isinstance(expected, RunStatus) else set(expected)
    for source in sources:
        if to not in ALLOWED.get(source, frozenset()):
            raise IllegalTransition(f"{source} -> {to}")
    values: dict[str, Any] = {"status": to.value, **fields}
    if to not in (RunStatus.IN_PROGRESS, RunStatus.CANCELLING):
        values.update(lease_owner=None, lease_expires_at=None)
    if to in TERMINAL:
        if to in _STAMPS:
            values.setdefault(_STAMPS[to], now())
        values["required_action"] = None
        values.setdefault("expires_at", None)
    if to is not RunStatus.REQUIRES_ACTION and to not in TERMINAL:
        values.setdefault("required_action", None)
    columns, params = set_parameters(values)
    query = _transition_query(tuple(sorted(s.value for s in sources)), held_by is not None, columns)
    if held_by is not None:
        params["held_by"] = held_by
    moved: Run | None = await session.scalar(query, {"run_id": run_id, **params})
    if moved is not None and to in TERMINAL:
        metrics.observe_run_end(run_id, to.value)
        log_run_end(moved, to, cause)
    return moved


@functools.cache
def _transition_query(sources: tuple[str, ...], held: bool, columns: tuple[str, ...]) -> Any:
    """`transition`'s statement, built once per shape (building one costs more than running
    it): the run by id, in one of `sources` (and held by `:held_by`), its `columns` set."""
    query = update(Run).where(Run.id == bindparam("run_id"), Run.status.in_(sources))
    if held:
        query = query.where(Run.lease_owner == bindparam("held_by"))
    return (
        query.values(set_clause(columns))
        .returning(Run)
        .execution_options(synchronize_session=False, populate_existing=True)
    )


def log_run_end(run: Run, status: RunStatus, cause: BaseException | None = None) -> None:
    """The one log line of a run that ended failed or incomplete."""
    if status is RunStatus.FAILED:
        error = run.last_error or {}
        code = error.get("code")
        level = logging.ERROR if code == "server_error" else logging.WARNING
        log.log(level, "run %s failed: %s: %s", run.id, code, error.get("message"), exc_info=cause)
    elif status is RunStatus.INCOMPLETE:
        reason = (run.incomplete_details or {}).get("reason")
        log.info("run %s incomplete: %s: the run's %s budget ran out", run.id, reason, reason)


def claimed_values(worker_id: str, lease_seconds: float) -> dict[str, Any]:
    """What claiming a new run writes: in progress since now, held by `worker_id`."""
    return {**_claimed(worker_id, lease_seconds), "started_at": now()}


def _claimed(worker_id: str, lease_seconds: float) -> dict[str, Any]:
    """What claiming writes: in progress, held by `worker_id` for `lease_seconds`."""
    held_since = time.time()
    return {
        "status": RunStatus.IN_PROGRESS.value,
        "lease_owner": worker_id,
        "lease_expires_at": held_since + lease_seconds,
        "claimed_at": held_since,
        "required_action": None,
    }


# Statuses that hold an execution slot: what fair claiming counts as a project's running work.
EXECUTING = (RunStatus.IN_PROGRESS.value, RunStatus.CANCELLING.value)


def _fair_candidates(skip_locked: bool) -> Any:
    """The ids of the next `:limit` queued runs, fairly across projects.

    The k-th queued run of a project (oldest first) ranks `k + running`, where `running` is how
    many of the project's runs hold a slot now: slots go to the projects with the least work in
    progress, evenly (a project with 200 queued waits its turn like one with 1). Ties go to the
    project served least recently (its newest `claimed_at`; never served first), then to the
    oldest run. One statement; the per-project figures are index probes for each project with
    queued work, not scans of its history.
    """
    queued = (
        select(
            Run.id,
            Run.project,
            func.row_number().over(partition_by=Run.project, order_by=Run.id).label("k"),
        )
        .where(Run.status == RunStatus.QUEUED.value)
        .cte("queued")
    )
    waiting = select(queued.c.project).distinct().subquery("waiting")
    other = aliased(Run)
    running = (
        select(func.count())
        .where(other.status.in_(EXECUTING), other.project == waiting.c.project)
        .scalar_subquery()
    )
    served = (
        select(func.max(other.claimed_at))
        .where(other.project == waiting.c.project)
        .scalar_subquery()
    )
    # Materialized: each project's figures once, not once per queued run.
    load = (
        select(waiting.c.project, running.label("running"), served.label("served"))
        .cte("load")
        .prefix_with("MATERIALIZED", dialect="postgresql")
    )
    candidates = (
        select(Run.id)
        .join(queued, queued.c.id == Run.id)
        .join(load, load.c.project == queued.c.project)
        .where(Run.status == RunStatus.QUEUED.value)
        .order_by(queued.c.k + load.c.running, load.c.served.asc().nulls_first(), Run.id)
        .limit(bindparam("limit", type_=Integer))
    )
    if skip_locked:
        # Only the runs rows are locked; a run another worker holds is passed over for the
        # next in rank, so workers claiming at once do not all wait on the same rows.
        candidates = candidates.with_for_update(skip_locked=True, of=Run)
    return candidates


async def claim(
    session: AsyncSession, worker_id: str, limit: int, lease_seconds: float, *, skip_locked: bool
) -> list[tuple[Run, int]]:
    """Take up to `limit` queued runs for `worker_id` (queued -> in_progress, with a lease),
    fairly across projects (see `_fair_candidates`), in one statement that returns them, oldest
    first, each with its last event number."""
    claimed_by = _claimed(worker_id, lease_seconds)
    values = {f"claim_{key}": claimed_by[key] for key in _CLAIM_PARAMETERS}
    claimed = await session.execute(
        _claim_statement(skip_locked), {"limit": limit, "claim_now": now(), **values}
    )
    return sorted(((run, int(seq)) for run, seq in claimed), key=lambda c: c[0].id)


# What differs between claims (the rest of `_claimed` is the same each time).
_CLAIM_PARAMETERS = ("lease_owner", "lease_expires_at", "claimed_at")


@functools.cache
def _claim_statement(skip_locked: bool) -> Any:
    """The claim, built once: a worker claims several times a second, and building and keying a
    statement of this size costs more than running it. What differs between claims are
    parameters (`:limit`, `:claim_now`, `:claim_<column>` for `_CLAIM_PARAMETERS`)."""
    # Chosen once, up front: as a subquery PostgreSQL may run it again for the UPDATE's rows,
    # and SKIP LOCKED would then pass over what it just took and take more.
    candidates = (
        _fair_candidates(skip_locked)
        .cte("candidates")
        .prefix_with("MATERIALIZED", dialect="postgresql")
    )
    # The claimed row's id spelled out: SQLAlchemy writes RETURNING columns unqualified on
    # SQLite, where a bare `id` inside this subquery would be run_events.id.
    last_seq = (
        select(func.coalesce(func.max(RunEvent.seq), 0))
        .where(RunEvent.run_id == literal_column(f"{Run.__tablename__}.id"))
        .scalar_subquery()
    )
    columns = Run.__table__.c
    return (
        update(Run)
        .where(Run.id.in_(select(candidates.c.id)), Run.status == RunStatus.QUEUED.value)
        .values(
            attempts=Run.attempts + 1,
            # started_at keeps the first start, like OpenAI's run object.
            started_at=func.coalesce(Run.started_at, bindparam("claim_now", type_=Integer)),
            **{
                key: bindparam(f"claim_{key}", type_=columns[key].type)
                if key in _CLAIM_PARAMETERS
                else value
                for key, value in _claimed("", 0.0).items()
            },
        )
        .returning(Run, last_seq)
        .execution_options(synchronize_session=False, populate_existing=True)
    )


async def renew_leases(
    session: AsyncSession, worker_id: str, run_ids: Iterable[str], lease_seconds: float
) -> set[str]:
    """Extend the leases this worker still holds; returns the ids it holds."""
    ids = list(run_ids)
    if not ids:
        return set()
    result = await session.execute(
        update(Run)
        .where(Run.id.in_(ids), Run.lease_owner == worker_id)
        .values(lease_expires_at=time.time() + lease_seconds)
        .returning(Run.id)
        .execution_options(synchronize_session=False)
    )
    return set(result.scalars())


async def cancelling_among(session: AsyncSession, run_ids: Iterable[str]) -> set[str]:
    ids = list(run_ids)
    if not ids:
        return set()
    rows = await session.scalars(
        select(Run.id).where(Run.id.in_(ids), Run.status == RunStatus.CANCELLING.value)
    )
    return set(rows)


async def abandoned(session: AsyncSession, *, skip_locked: bool, limit: int = 50) -> list[Run]:
    """Runs held by a worker whose lease ran out (it died or hung)."""
    query = (
        select(Run)
        .where(
            Run.status.in_([RunStatus.IN_PROGRESS.value, RunStatus.CANCELLING.value]),
            Run.lease_expires_at < time.time(),
        )
        .order_by(Run.id)
        .limit(limit)
    )
    if skip_locked:
        query = query.with_for_update(skip_locked=True)
    return list(await session.scalars(query))


async def overdue(session: AsyncSession, *, skip_locked: bool, limit: int = 50) -> list[Run]:
    """Queued or waiting runs past `expires_at`."""
    query = (
        select(Run)
        .where(
            Run.status.in_([RunStatus.QUEUED.value, RunStatus.REQUIRES_ACTION.value]),
            Run.expires_at < now(),
        )
        .order_by(Run.id)
        .limit(limit)
    )
    if skip_locked:
        query = query.with_for_update(skip_locked=True)
    return list(await session.scalars(query))
