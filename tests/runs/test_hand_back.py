"""A run whose final transaction fails on the database (a dropped connection, a restart) is
handed back and answered once by its next attempt: what the failed transaction changed is not
stored by anything after it. Drives the worker and executor in this process against the suite's
database (SQLite or PostgreSQL) and the scripted model over HTTP; the failure is injected."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from assistantd.db.models import Item, Run
from assistantd.runs import state
from assistantd.runs.state import RunStatus
from tests.runs.inprocess import Engine, create, engine
from tests.support.scripted_model import Reply, ScriptedModel

__all__ = ["engine"]  # the fixture


async def test_a_failed_final_transaction_leaves_no_answer_and_the_next_attempt_answers_once(
    engine: Engine, model: ScriptedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = f"handback-{uuid.uuid4().hex[:8]}"
    model.script(marker, Reply(text=["answered ", "once"]))
    transition = state.transition
    failed: list[str] = []

    async def drops_once(session: Any, run_id: str, sources: Any, to: Any, **values: Any) -> Any:
        if to is RunStatus.COMPLETED and not failed:
            failed.append(run_id)
            raise OperationalError("UPDATE runs", {}, ConnectionError("connection dropped"))
        return await transition(session, run_id, sources, to, **values)

    monkeypatch.setattr(state, "transition", drops_once)
    engine.worker.start()
    async with engine.writes() as session:
        run = await create(engine, session, marker)
        await session.commit()
    async with asyncio.timeout(20):
        while True:
            async with engine.deps.reads() as session:
                stored = await session.get(Run, run.id)
                messages = (
                    await session.execute(
                        select(Item.status, Item.content)
                        .where(Item.run_id == run.id, Item.type == "message")
                        .order_by(Item.position)
                    )
                ).all()
            assert stored is not None
            if stored.status == "completed":
                break
            await asyncio.sleep(0.05)
    assert failed == [run.id]
    assert stored.attempts == 2
    assert len(model.requests(marker)) == 2
    # The first attempt's message stays, closed as it was left (not completed); the second
    # attempt's is the one answer.
    assert [status for status, _ in messages].count("completed") == 1, messages
    assert len(messages) == 2
    assert messages[-1].status == "completed"
    assert messages[-1].content[0]["text"]["value"] == "answered once"
