"""A response whose whole context its request holds starts before its creation commits: the
model request goes out at once, and what the model answers is handled after the commit. These
drive the real use case, worker and executor in this process, against the suite's database (SQLite
or PostgreSQL) and the scripted model over HTTP; the transaction's end is the test's to choose."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest_asyncio
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assistantd.backends.chat import make_http_client
from assistantd.blobs.factory import make_blob_store
from assistantd.db.engine import make_engine, make_sessionmaker
from assistantd.db.migrate import upgrade
from assistantd.db.models import Item, Run, RunEvent
from assistantd.responses.create import create_response
from assistantd.responses.schemas import CreateResponse
from assistantd.runs.deps import RunDeps
from assistantd.runs.signals import Signals
from assistantd.runs.worker import Worker
from assistantd.settings import Settings
from tests.support.scripted_model import Reply, ScriptedModel

PROJECT = "proj_early_start"


@dataclass
class Engine:
    deps: RunDeps
    worker: Worker
    writes: async_sessionmaker[AsyncSession]


@pytest_asyncio.fixture(loop_scope="function")  # its clients belong to the test's loop
async def engine(database_url: str, model: ScriptedModel, tmp_path: Path) -> AsyncIterator[Engine]:
    settings = Settings(
        data_dir=tmp_path,
        database_url=database_url,
        model_base_url=model.base_url,
        model_api_key="sk-scripted",
    )
    await asyncio.to_thread(upgrade, settings)
    db = make_engine(settings)
    writes = make_sessionmaker(db, write=True)
    http = make_http_client(settings)
    blobs = make_blob_store(settings)
    deps = RunDeps.build(
        settings, writes, make_sessionmaker(db, write=False), Signals(), http, blobs
    )
    yield Engine(deps, Worker(deps), writes)
    await http.aclose()
    await blobs.aclose()
    await db.dispose()


async def _until_idle(worker: Worker) -> None:
    async with asyncio.timeout(10):
        while worker.active_runs:
            await asyncio.sleep(0.01)


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


async def _create(engine: Engine, session: AsyncSession, marker: str) -> Run:
    """The Responses API's create use case in `session`, which the test ends."""
    return await create_response(
        session,
        PROJECT,
        CreateResponse(model="gpt-4o", input=marker),
        models=engine.deps.models,
        signals=engine.deps.signals,
        worker=engine.worker,
    )


async def test_the_model_is_called_before_the_commit_and_answered_after_it(
    engine: Engine, model: ScriptedModel
) -> None:
    marker = f"early-{uuid.uuid4().hex[:8]}"
    model.script(marker, Reply(text=["early ", "bird"]))
    async with engine.writes() as session:
        run = await _create(engine, session, marker)
        # The request is out while the creating transaction is still open ...
        await asyncio.to_thread(model.wait_requests, 1, marker)
        await asyncio.sleep(0.2)  # ... and its answer waits for the commit
        stored, events, _ = await _rows(engine, run.id)
        assert stored is None
        assert events == 0
        await session.commit()
    await _until_idle(engine.worker)
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
    assert names.count("response.output_text.delta") == 2


async def test_a_creation_that_does_not_commit_drops_the_started_response(
    engine: Engine, model: ScriptedModel
) -> None:
    marker = f"dropped-{uuid.uuid4().hex[:8]}"
    model.script(marker, Reply(text=["never ", "seen"], hang=True))
    async with engine.writes() as session:
        run = await _create(engine, session, marker)
        await asyncio.to_thread(model.wait_requests, 1, marker)
        await session.rollback()
    await _until_idle(engine.worker)  # the execution stopped ...
    async with asyncio.timeout(10):  # ... and hung up on the model
        while not model.disconnects(marker):
            await asyncio.sleep(0.02)
    assert await _rows(engine, run.id) == (None, 0, 0)  # and wrote nothing
