"""Fair share at the database: workers claim queued runs across projects by their load, and a
project's limit on active runs holds against creations racing for its last slot. The real use
cases and claim statement in this process, against the suite's database (SQLite or PostgreSQL)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from assistantd.db.engine import is_postgres
from assistantd.db.models import Run
from assistantd.errors import ProjectLimitError
from assistantd.responses.create import create_response
from assistantd.responses.schemas import CreateResponse
from assistantd.runs import state
from assistantd.runs.state import RunStatus
from tests.runs.inprocess import Engine, engine

__all__ = ["engine"]  # the fixture

LEASE = 30.0
WAITING_FOR_A_LOCK = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"


async def queue(engine: Engine, project: str, count: int, *, limit: int = 0) -> list[str]:
    """`count` responses of `project`, queued (no worker takes them), committed one by one."""
    settings = engine.deps.settings.model_copy(update={"project_max_active_runs": limit})
    ids = []
    for number in range(count):
        async with engine.writes() as session:
            run = await _create(engine, session, project, f"{project} {number}", settings)
            await session.commit()
        ids.append(run.id)
    return ids


async def _create(
    engine: Engine, session: AsyncSession, project: str, text: str, settings: object
) -> Run:
    return await create_response(
        session,
        project,
        CreateResponse(model="gpt-4o", input=text, background=True),
        models=engine.deps.models,
        signals=engine.deps.signals,
        worker=None,
        sealer=engine.deps.sealer,
        settings=settings,  # type: ignore[arg-type]
    )


async def claim(engine: Engine, limit: int, worker: str = "w1") -> list[str]:
    async with engine.writes() as session:
        claimed = await state.claim(session, worker, limit, LEASE, skip_locked=is_postgres(session))
        await session.commit()
    return [run.id for run, _ in claimed]


async def finish(engine: Engine, run_id: str) -> None:
    async with engine.writes() as session:
        assert await state.transition(session, run_id, RunStatus.IN_PROGRESS, RunStatus.COMPLETED)
        await session.commit()


async def test_a_backlog_does_not_hold_back_another_projects_first_run(engine: Engine) -> None:
    backlog = await queue(engine, "a", 4)
    [late] = await queue(engine, "b", 1)
    assert await claim(engine, 1) == backlog[:1]  # nothing runs: the oldest first
    assert await claim(engine, 1) == [late]  # a has one running, b none
    assert await claim(engine, 2) == backlog[1:3]


async def test_with_one_slot_projects_take_turns(engine: Engine) -> None:
    """Nothing running at each claim (one slot, freed before the next): the project served
    least recently goes first, not the oldest run."""
    backlog = await queue(engine, "a", 3)
    others = await queue(engine, "b", 2)
    order = []
    for _ in range(5):
        [run_id] = await claim(engine, 1)
        order.append(run_id)
        await finish(engine, run_id)
    assert order == [backlog[0], others[0], backlog[1], others[1], backlog[2]]


async def test_a_batch_is_shared_out_evenly(engine: Engine) -> None:
    a = await queue(engine, "a", 6)
    b = await queue(engine, "b", 2)
    c = await queue(engine, "c", 1)
    assert set(await claim(engine, 4)) == {a[0], b[0], c[0], a[1]}
    # a holds two slots, b and c one each: b's second comes before a's third
    assert await claim(engine, 1) == [b[1]]


async def test_claimers_at_once_take_different_runs(engine: Engine) -> None:
    async with engine.writes() as probe:
        if not is_postgres(probe):
            pytest.skip("SQLite has one writer at a time: its claims never overlap")
    queued = await queue(engine, "a", 3) + await queue(engine, "b", 3)
    async with engine.writes() as first, engine.writes() as second:
        mine = await state.claim(first, "w1", 2, LEASE, skip_locked=True)
        # the first claim's rows are locked until it commits: the second passes them over
        theirs = await state.claim(second, "w2", 2, LEASE, skip_locked=True)
        await first.commit()
        await second.commit()
    taken = [run.id for run, _ in mine] + [run.id for run, _ in theirs]
    assert len(taken) == len(set(taken)) == 4
    assert set(taken) <= set(queued)


async def test_a_project_at_its_limit_is_refused_and_others_are_not(engine: Engine) -> None:
    await queue(engine, "a", 2, limit=2)
    with pytest.raises(ProjectLimitError) as refused:
        await queue(engine, "a", 1, limit=2)
    assert refused.value.status_code == 429
    assert refused.value.code == "rate_limit_exceeded"
    assert refused.value.headers() == {"Retry-After": "1"}
    await queue(engine, "b", 1, limit=2)
    # a run that has ended holds no slot
    [run_id] = await claim(engine, 1)
    await finish(engine, run_id)
    await queue(engine, "a", 1, limit=2)


async def test_two_creations_cannot_both_take_the_last_slot(engine: Engine) -> None:
    """Both creations are written; as they commit, each counts under the project's lock (held
    here by a third transaction until both wait for it): the first to get it commits, the
    other is refused."""
    async with engine.writes() as probe:
        if not is_postgres(probe):
            pytest.skip("SQLite has one writer at a time: creations never overlap")
    await queue(engine, "a", 1)
    settings = engine.deps.settings.model_copy(update={"project_max_active_runs": 2})
    async with engine.writes() as first, engine.writes() as second, engine.writes() as lock:
        created = [
            await _create(engine, first, "a", "a first", settings),
            await _create(engine, second, "a", "a second", settings),
        ]
        await lock.execute(text("SELECT pg_advisory_xact_lock(6386532, hashtext('a'))"))
        commits = [asyncio.create_task(session.commit()) for session in (first, second)]
        await _until_waiting_for_a_lock(engine, 2)  # both commits wait for it
        assert not any(commit.done() for commit in commits)
        await lock.rollback()
        outcomes = await asyncio.gather(*commits, return_exceptions=True)
    refused = [outcome for outcome in outcomes if isinstance(outcome, ProjectLimitError)]
    assert len(refused) == 1, outcomes
    assert "Limit 2, Used 2" in refused[0].message
    assert outcomes.count(None) == 1
    async with engine.deps.reads() as session:
        stored = await session.scalar(
            text("SELECT count(*) FROM runs WHERE id IN (:a, :b)"),
            {"a": created[0].id, "b": created[1].id},
        )
    assert stored == 1


async def test_a_creation_commits_once_a_slot_is_free(engine: Engine) -> None:
    """The count is made as the creation commits: a slot freed after the run was written (and
    before its commit) is one it may take."""
    async with engine.writes() as probe:
        if not is_postgres(probe):
            pytest.skip("SQLite counts before anything is written, the only writer")
    [held] = await queue(engine, "a", 1)
    [running] = await claim(engine, 1)
    assert running == held
    settings = engine.deps.settings.model_copy(update={"project_max_active_runs": 1})
    async with engine.writes() as session:
        await _create(engine, session, "a", "a next", settings)
        await finish(engine, held)
        await session.commit()


async def _until_waiting_for_a_lock(engine: Engine, waiters: int = 1) -> None:
    async with asyncio.timeout(10):
        while True:
            async with engine.deps.reads() as session:
                waiting = await session.scalar(text(WAITING_FOR_A_LOCK))
            if waiting and waiting >= waiters:
                return
            await asyncio.sleep(0.02)
