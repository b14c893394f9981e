"""The run engine in the test's own process: the worker and executor against the suite's
database (SQLite or PostgreSQL) and the scripted model over HTTP, for tests that need to choose
how a transaction ends or make one fail."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assistantd.backends.chat import make_http_client
from assistantd.blobs.factory import make_blob_store
from assistantd.db.engine import make_engine, make_sessionmaker
from assistantd.db.migrate import upgrade
from assistantd.db.models import Run
from assistantd.responses.create import create_response
from assistantd.responses.schemas import CreateResponse
from assistantd.runs.deps import RunDeps
from assistantd.runs.signals import Signals
from assistantd.runs.worker import Worker
from assistantd.settings import Settings
from tests.runs.conftest import fresh_database
from tests.support.scripted_model import ScriptedModel

PROJECT = "proj_in_process"


@dataclass
class Engine:
    deps: RunDeps
    worker: Worker
    writes: async_sessionmaker[AsyncSession]


@pytest_asyncio.fixture(loop_scope="function")  # its clients belong to the test's loop
async def engine(database_url: str, model: ScriptedModel, tmp_path: Path) -> AsyncIterator[Engine]:
    """A run engine over a database of its own: a test may start its worker's loops, which
    claim whatever is queued there."""
    url = await asyncio.to_thread(fresh_database, database_url, tmp_path)
    settings = Settings(
        data_dir=tmp_path,
        database_url=url,
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
    worker = Worker(deps)
    yield Engine(deps, worker, writes)
    if worker.healthy:
        await worker.stop(grace=0)
    await deps.backend.aclose()
    await http.aclose()
    await blobs.aclose()
    await db.dispose()


async def until_idle(worker: Worker) -> None:
    async with asyncio.timeout(10):
        while worker.active_runs:
            await asyncio.sleep(0.01)


async def create(engine: Engine, session: AsyncSession, marker: str) -> Run:
    """The Responses API's create use case in `session`, which the test ends."""
    return await create_response(
        session,
        PROJECT,
        CreateResponse(model="gpt-4o", input=marker),
        models=engine.deps.models,
        signals=engine.deps.signals,
        worker=engine.worker,
        sealer=engine.deps.sealer,
        settings=engine.deps.settings,
    )
