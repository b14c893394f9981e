"""The removal of `store: false` responses after their answer (`responses.unstored.Forgetter`),
and the sweep of those left, in this process against the suite's database (SQLite or
PostgreSQL): what they remove and what they must leave."""

from __future__ import annotations

import time
import uuid

import pytest
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from assistantd.db.models import Item, Run, RunEvent
from assistantd.kit.timeutil import now
from assistantd.responses import repository
from assistantd.responses.create import Keep, create_response
from assistantd.responses.schemas import CreateResponse
from assistantd.responses.unstored import Forgetter
from assistantd.runs.create import RunTaker
from tests.runs.inprocess import PROJECT, Engine, engine, until_idle
from tests.support.scripted_model import Reply, ScriptedModel

__all__ = ["engine"]  # the fixture


async def _respond(
    engine: Engine, marker: str, *, store: bool, worker: RunTaker | None, keep: Keep | None = None
) -> str:
    async with engine.writes() as session:
        run = await create_response(
            session,
            PROJECT,
            CreateResponse(model="gpt-4o", input=marker, store=store),
            models=engine.deps.models,
            signals=engine.deps.signals,
            worker=worker,
            sealer=engine.deps.sealer,
            settings=engine.deps.settings,
            keep=keep,
        )
        await session.commit()
    return run.id


async def _rows(engine: Engine, response_id: str) -> tuple[int, int, int]:
    """The response's run, items and events."""
    async with engine.deps.reads() as session:
        runs = await session.scalar(
            select(func.count()).select_from(Run).where(Run.id == response_id)
        )
        items = await session.scalar(
            select(func.count())
            .select_from(Item)
            .where(or_(Item.input_of == response_id, Item.run_id == response_id))
        )
        events = await session.scalar(
            select(func.count()).select_from(RunEvent).where(RunEvent.run_id == response_id)
        )
    return runs or 0, items or 0, events or 0


async def test_it_removes_finished_unstored_responses_and_nothing_else(
    engine: Engine, model: ScriptedModel
) -> None:
    marker = f"unstored-{uuid.uuid4().hex[:8]}"
    model.script(marker, Reply(text=["not ", "kept"]))
    unstored = await _respond(engine, marker, store=False, worker=engine.worker)
    stored = await _respond(engine, marker, store=True, worker=engine.worker)
    await until_idle(engine.worker)
    # Queued and never run (no worker takes it here): not finished, so it stays.
    waiting = await _respond(engine, marker, store=False, worker=None)
    assert (await _rows(engine, unstored))[:2] == (1, 2)

    forgetter = Forgetter(engine.writes)
    for response_id in (unstored, stored, waiting, "resp_unknown"):
        forgetter.forget(response_id)  # one batch: they come in before its task starts
    await forgetter.aclose()

    assert await _rows(engine, unstored) == (0, 0, 0)
    runs, items, events = await _rows(engine, stored)
    assert (runs, items) == (1, 2)
    assert events > 0
    assert (await _rows(engine, waiting))[:2] == (1, 1)
    forgetter.forget(waiting)  # once closed it takes nothing (the sweep's, later)
    assert (await _rows(engine, waiting))[:2] == (1, 1)


async def test_a_removal_that_fails_is_logged_and_left_to_the_sweep(
    engine: Engine, model: ScriptedModel, caplog: pytest.LogCaptureFixture
) -> None:
    marker = f"unstored-{uuid.uuid4().hex[:8]}"
    model.script(marker, Reply(text="not kept"))
    response_id = await _respond(engine, marker, store=False, worker=engine.worker)
    await until_idle(engine.worker)

    def broken() -> AsyncSession:
        raise RuntimeError("the database went away")

    forgetter = Forgetter(broken)
    forgetter.forget(response_id)
    await forgetter.aclose()  # does not raise
    assert "removing 1 unstored responses failed" in caplog.text
    assert (await _rows(engine, response_id))[0] == 1


async def _swept(engine: Engine) -> set[str]:
    """What the sweep would take now, were the responses a minute old."""
    async with engine.deps.reads() as session:
        found = await repository.unstored_finished(session, now() + 10, 100_000, at=time.time())
    return {run.id for run in found}


async def test_the_sweep_leaves_what_a_connection_keeps(
    engine: Engine, model: ScriptedModel
) -> None:
    marker = f"unstored-{uuid.uuid4().hex[:8]}"
    model.script(marker, *[Reply(text="kept?")] * 3)
    plain = await _respond(engine, marker, store=False, worker=engine.worker)
    kept = await _respond(
        engine, marker, store=False, worker=engine.worker, keep=Keep(time.time() + 600)
    )
    lapsed = await _respond(
        engine, marker, store=False, worker=engine.worker, keep=Keep(time.time() - 1)
    )
    await until_idle(engine.worker)
    swept = await _swept(engine)
    assert (plain in swept, kept in swept, lapsed in swept) == (True, False, True)

    # the connection moves `kept_until` on while it lasts
    async with engine.writes() as session:
        await repository.keep_unstored(session, [lapsed], time.time() + 600)
        await session.commit()
    assert lapsed not in await _swept(engine)
    async with engine.writes() as session:
        await repository.keep_unstored(session, [kept, lapsed], time.time() - 1)
        await session.commit()
    swept = await _swept(engine)
    assert {kept, lapsed} <= swept
