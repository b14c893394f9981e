"""A response whose whole context its request holds starts before its creation commits: the
model request goes out at once, and what the model answers is handled after the commit. These
drive the real use case, worker and executor in this process, against the suite's database (SQLite
or PostgreSQL) and the scripted model over HTTP; the transaction's end is the test's to choose."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select, update

from assistantd.db.models import Item, Run, RunEvent
from assistantd.errors import ProjectLimitError
from assistantd.responses.create import create_response
from assistantd.responses.schemas import CreateResponse
from assistantd.runs import admission
from tests.runs.inprocess import PROJECT, Engine, create, engine, until_idle
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


async def _running_elsewhere(engine: Engine, marker: str, count: int) -> None:
    """`count` responses of the project that another process's worker executes."""
    async with engine.writes() as session:
        for i in range(count):
            await create_response(
                session,
                PROJECT,
                CreateResponse(model="gpt-4o", input=f"{marker} elsewhere {i}", background=True),
                models=engine.deps.models,
                signals=engine.deps.signals,
                worker=None,
                sealer=engine.deps.sealer,
                settings=engine.deps.settings,
            )
        await session.execute(
            update(Run)
            .where(Run.project == PROJECT, Run.status == "queued")
            .values(status="in_progress", lease_owner="other", lease_expires_at=time.time() + 60)
        )
        await session.commit()
    engine.deps.signals.queued.clear()  # claimed at once: nothing waits here


def _watch_order(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What a creation does from now on, in order: `count` (the admission's), `start` (the
    early execution's)."""
    order: list[str] = []
    count, start = admission.admit, engine.worker.start_early

    async def counted(*args: Any, **kwargs: Any) -> None:
        order.append("count")
        await count(*args, **kwargs)

    def started(*args: Any, **kwargs: Any) -> None:
        order.append("start")
        start(*args, **kwargs)

    monkeypatch.setattr(admission, "admit", counted)
    monkeypatch.setattr(engine.worker, "start_early", started)
    return order


async def test_a_run_sent_ahead_of_its_admission_is_refused_and_its_request_cancelled(
    engine: Engine, model: ScriptedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """This process runs none of the project's runs: a new one's model request leaves before
    the count that admits it. Other processes hold the whole limit: the count refuses it, the
    creation rolls back, and the request is cancelled; nothing of it is stored."""
    monkeypatch.setattr(engine.deps.settings, "project_max_active_runs", 4)
    marker = f"ahead-{uuid.uuid4().hex[:8]}"
    model.script(f"{marker} warm", Reply(text="warm"))
    model.script(f"{marker} mine", Reply(text=["never ", "seen"], hang=True))
    # One response first: the model's context window is known, so the refused execution is
    # cancelled in its model request (not in the window's look-up, whose cancelled connect
    # leaves an unawaited coroutine of anyio's behind).
    async with engine.writes() as session:
        await create(engine, session, f"{marker} warm")
        await session.commit()
    await until_idle(engine.worker)
    await _running_elsewhere(engine, marker, 4)
    assert engine.worker.has_room(PROJECT, 4)
    order = _watch_order(engine, monkeypatch)
    async with engine.writes() as session:
        with pytest.raises(ProjectLimitError):
            await create(engine, session, f"{marker} mine")
        await session.rollback()
    assert order == ["start", "count"]  # the execution started before the count
    await until_idle(engine.worker)
    async with asyncio.timeout(10):  # a request that left was hung up on
        while len(model.disconnects(f"{marker} mine")) < len(model.requests(f"{marker} mine")):
            await asyncio.sleep(0.02)
    async with engine.deps.reads() as session:
        runs = await session.scalar(
            select(func.count()).select_from(Run).where(Run.project == PROJECT)
        )
    assert runs == 5  # the warm one, completed, and the four of elsewhere


async def test_a_project_this_process_runs_much_of_is_counted_before_any_request(
    engine: Engine, model: ScriptedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """This process already runs half of the project's limit: a new run is counted first,
    and a refused one never reaches the model."""
    monkeypatch.setattr(engine.deps.settings, "project_max_active_runs", 2)
    marker = f"counted-{uuid.uuid4().hex[:8]}"
    model.script(marker, Reply(text=["held"], hang=True))
    async with engine.writes() as session:
        held = await create(engine, session, f"{marker} held")
        await session.commit()
    await asyncio.to_thread(model.wait_requests, 1, f"{marker} held")
    assert not engine.worker.has_room(PROJECT, 2)
    await _running_elsewhere(engine, marker, 1)
    order = _watch_order(engine, monkeypatch)
    async with engine.writes() as session:
        with pytest.raises(ProjectLimitError):
            await create(engine, session, f"{marker} refused")
        await session.rollback()
    assert order == ["count"]  # refused before anything started
    assert model.requests(f"{marker} refused") == []
    executor, task = engine.worker._active[held.id]
    task.cancel()
    await until_idle(engine.worker)


async def test_an_unstored_responses_opening_is_stored_by_its_execution(
    engine: Engine, model: ScriptedModel
) -> None:
    """An unstored response started early leaves its first events to its execution, which
    stores them first: the log is whole and in order."""
    marker = f"unstored-{uuid.uuid4().hex[:8]}"
    model.script(marker, Reply(text=["not ", "kept"]))
    async with engine.writes() as session:
        run = await create_response(
            session,
            PROJECT,
            CreateResponse(model="gpt-4o", input=marker, store=False, stream=True),
            models=engine.deps.models,
            signals=engine.deps.signals,
            worker=engine.worker,
            sealer=engine.deps.sealer,
            settings=engine.deps.settings,
        )
        await session.commit()
    await until_idle(engine.worker)
    async with engine.deps.reads() as session:
        rows = (
            await session.execute(
                select(RunEvent.seq, RunEvent.event)
                .where(RunEvent.run_id == run.id)
                .order_by(RunEvent.seq)
            )
        ).all()
    assert [seq for seq, _ in rows] == list(range(1, len(rows) + 1))
    assert [name for _, name in rows[:2]] == ["response.created", "response.in_progress"]
    assert rows[-1][1] == "response.completed"
