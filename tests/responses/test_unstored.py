"""The removal of `store: false` responses after their answer (`responses.unstored.Forgetter`),
in this process against the suite's database (SQLite or PostgreSQL): what it removes and what
it must leave."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from assistantd.db.models import Item, Run, RunEvent
from assistantd.responses.create import create_response
from assistantd.responses.schemas import CreateResponse
from assistantd.responses.unstored import Forgetter
from assistantd.runs.create import RunTaker
from tests.runs.inprocess import PROJECT, Engine, engine, until_idle
from tests.support.scripted_model import Reply, ScriptedModel

__all__ = ["engine"]  # the fixture


async def _respond(engine: Engine, marker: str, *, store: bool, worker: RunTaker | None) -> str:
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
