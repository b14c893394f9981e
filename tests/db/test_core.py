"""`db.core.clone`: a copy of an ORM row, built without the constructor, that behaves as one
built with it (read, changed, inserted by Core or by the ORM)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from assistantd.db.core import clone, insert_into, row_values, table_of
from assistantd.db.models import Run


def _run(run_id: str) -> Run:
    return Run(
        id=run_id,
        project="p",
        created_at=1,
        status="queued",
        model="gpt-4o",
        tools=[{"type": "function", "function": {"name": "f"}}],
        metadata_={"k": "v"},
        truncation_strategy={"type": "disabled"},
        tool_choice="auto",
        parallel_tool_calls=True,
        response_format="auto",
        options={"store": True},
        attempts=0,
        model_turns=0,
        prompt_tokens=0,
        completion_tokens=0,
    )


def test_a_clone_has_the_rows_values_and_the_changes() -> None:
    run = _run("resp_a")
    copy = clone(run, status="in_progress", attempts=1)
    assert isinstance(copy, Run)
    assert row_values(copy) == {**row_values(run), "status": "in_progress", "attempts": 1}
    assert (run.status, run.attempts) == ("queued", 0)  # the row itself is unchanged
    assert sa_inspect(copy).transient
    copy.model_turns += 1
    assert (copy.model_turns, run.model_turns) == (1, 0)


def test_a_clone_refuses_what_is_no_column() -> None:
    with pytest.raises(TypeError, match="nope"):
        clone(_run("resp_b"), nope=1)


async def test_a_clone_inserts_by_core_and_by_the_orm(tmp_path: Path) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'core.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: Run.metadata.create_all(c, [table_of(Run)]))
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    async with sessions() as session:
        await session.execute(insert_into(table_of(Run)), [row_values(clone(_run("resp_c")))])
        session.add(clone(_run("resp_d"), status="completed"))
        await session.commit()
    async with sessions() as session:
        rows = (await session.scalars(select(Run).order_by(Run.id))).all()
        assert [(r.id, r.status, r.metadata_, r.tools[0]["type"]) for r in rows] == [
            ("resp_c", "queued", {"k": "v"}, "function"),
            ("resp_d", "completed", {"k": "v"}, "function"),
        ]
    await engine.dispose()
