"""A response whose whole context its request holds starts before its creation commits: the
model request goes out at once, and what the model answers is handled after the commit. These
drive the real use case, worker and executor in this process, against the suite's database (SQLite
or PostgreSQL) and the scripted model over HTTP; the transaction's end is the test's to choose."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import func, select

from assistantd.db.models import Item, Run, RunEvent
from tests.runs.inprocess import Engine, create, engine, until_idle
from tests.support.scripted_model import Reply, ScriptedModel

__all__ = ["engine"]  # the fixture


async def _rows(engine: Engine, response_id: str) -> tuple[Run | None, int, int]:
    async with engine.deps.reads() as session:
        run = await session.get(Run, response_id)
        events = await session.scalar(
            select(func.count()).select_from(RunEvent).where(RunEvent.run_id == response_id)
        )
        items = await session.scalar(
            select(func.count()).select_from(Item).where(Item.input_of == response_id)
        )
    return run, events or 0, items or 0


async def test_the_model_is_called_before_the_commit_and_answered_after_it(
    engine: Engine, model: ScriptedModel
) -> None:
    marker = f"early-{uuid.uuid4().hex[:8]}"
    model.script(marker, Reply(text=["early ", "bird"]))
    async with engine.writes() as session:
        run = await create(engine, session, marker)
        # The request is out while the creating transaction is still open ...
        await asyncio.to_thread(model.wait_requests, 1, marker)
        await asyncio.sleep(0.2)  # ... and its answer waits for the commit
        stored, events, _ = await _rows(engine, run.id)
        assert stored is None
        assert events == 0
        await session.commit()
    await until_idle(engine.worker)
    stored, events, items = await _rows(engine, run.id)
    assert stored is not None
    assert stored.status == "completed"
    assert items == 1  # the input, stored by the creating transaction
    async with engine.deps.reads() as session:
        names = (
            await session.scalars(
                select(RunEvent.event).where(RunEvent.run_id == run.id).order_by(RunEvent.seq)
            )
        ).all()
    assert names[:2] == ["response.created", "response.in_progress"]
    assert names[-1] == "response.completed"
    assert names.count("response.output_text.delta") == 1  # nobody streams it: gathered


async def test_a_creation_that_does_not_commit_drops_the_started_response(
    engine: Engine, model: ScriptedModel
) -> None:
    marker = f"dropped-{uuid.uuid4().hex[:8]}"
    model.script(marker, Reply(text=["never ", "seen"], hang=True))
    async with engine.writes() as session:
        run = await create(engine, session, marker)
        await asyncio.to_thread(model.wait_requests, 1, marker)
        await session.rollback()
    await until_idle(engine.worker)  # the execution stopped ...
    async with asyncio.timeout(10):  # ... and hung up on the model
        while not model.disconnects(marker):
            await asyncio.sleep(0.02)
    assert await _rows(engine, run.id) == (None, 0, 0)  # and wrote nothing


@pytest.mark.parametrize("end", ["commit", "rollback"])
async def test_an_answer_handled_before_the_commit_is_stored_only_after_it(
    engine: Engine, model: ScriptedModel, end: str
) -> None:
    """The model answers while the creation is still open: the turn takes the answer at once
    (its events go to this process's streams, which start at the commit) and stores nothing;
    after a commit everything is stored, after a rollback nothing ever is."""
    marker = f"before-{uuid.uuid4().hex[:8]}"
    model.script(marker, Reply(text=["handled ", "early"]))
    async with engine.writes() as session:
        run = await create(engine, session, marker)
        executor, _ = engine.worker._active[run.id]
        async with asyncio.timeout(10):
            while executor._turn is None or executor._turn.result.text != "handled early":
                await asyncio.sleep(0.01)
        assert await _rows(engine, run.id) == (None, 0, 0)
        if end == "commit":
            await session.commit()
        else:
            await session.rollback()
    await until_idle(engine.worker)
    await asyncio.sleep(0.6)  # past the writer's hold: anything it kept back would be stored
    stored, events, _ = await _rows(engine, run.id)
    if end == "rollback":
        assert (stored, events) == (None, 0)
        return
    assert stored is not None
    assert stored.status == "completed"
    async with engine.deps.reads() as session:
        text = await session.scalar(
            select(Item.content).where(Item.run_id == run.id, Item.type == "message")
        )
    assert text is not None
    assert text[0]["text"]["value"] == "handled early"
