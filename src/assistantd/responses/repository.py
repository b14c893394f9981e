"""All SQL for responses (run rows with `resp_` ids) and their input items."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, bindparam, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from assistantd.db.core import get_row
from assistantd.db.models import Item, Run
from assistantd.items import repository as items
from assistantd.kit.ids import Prefix, position_of
from assistantd.kit.pagination import Page
from assistantd.runs.state import TERMINAL


def stored(run: Run) -> bool:
    """Whether the response was created with `store` (an unstored one is never shown)."""
    return (run.options or {}).get("store", True) is not False


async def get(session: AsyncSession, project: str, response_id: str) -> Run | None:
    if not response_id.startswith(Prefix.RESPONSE):
        return None
    row = await get_row(session, Run, response_id, refresh=True)
    return row if row is not None and _shown(row, project) else None


def _shown(row: Run, project: str) -> bool:
    """Whether `project` may see the response (its own, stored)."""
    return row.project == project and stored(row)


# A response and its output items (one row per item, the response's alone when it has none),
# in one round trip: a polled response is read this way.
_WITH_OUTPUT = (
    select(Run, Item)
    .outerjoin(Item, Item.run_id == Run.id)
    .where(Run.id == bindparam("run_id"))
    .order_by(Item.position)
)


async def get_with_output(
    session: AsyncSession, project: str, response_id: str
) -> tuple[Run, list[Item]] | None:
    """`get`, with the response's output items in order (what `render.output_of` reads), in
    one statement."""
    if not response_id.startswith(Prefix.RESPONSE):
        return None
    rows = (await session.execute(_WITH_OUTPUT, {"run_id": response_id})).all()
    if not rows:
        return None
    row: Run = rows[0][0]
    if not _shown(row, project):
        return None
    # Output comes from executions: a response no worker has taken yet has none (`render.full`).
    return row, [item for _, item in rows if item is not None] if row.attempts else []


async def input_items(
    session: AsyncSession, run: Run, chain: Sequence[str], page: Page
) -> tuple[Sequence[Item], bool]:
    """The items a response was given: its input, after what it continued (the input and
    output of the responses in its `chain`, or its conversation's items from before it)."""
    condition = or_(Item.input_of.in_([run.id, *chain]), Item.run_id.in_(chain))
    conversation = (run.options or {}).get("conversation")
    if conversation is not None:
        condition = or_(
            condition,
            and_(
                Item.thread_id == conversation,
                Item.position < position_of(run.id),
                or_(Item.run_id.is_(None), Item.run_id != run.id),
            ),
        )
    return await items.page(session, condition, page)


_UNSTORED_ANY = and_(
    Run.id >= Prefix.RESPONSE,
    Run.id < Prefix.RESPONSE[:-1] + chr(ord(Prefix.RESPONSE[-1]) + 1),
    Run.options["store"].as_boolean().is_(False),
)
_UNSTORED = and_(_UNSTORED_ANY, Run.status.in_([s.value for s in TERMINAL]))


_KEPT_UNTIL = Run.options["kept_until"].as_float()


async def unstored_finished(
    session: AsyncSession, created_before: int, limit: int, *, at: float
) -> Sequence[Run]:
    """Finished responses created with `store: false` whose rows are still here (their request
    ended before it could remove them), but those a WebSocket connection keeps past `at`."""
    query = (
        select(Run)
        .where(
            _UNSTORED,
            Run.created_at < created_before,
            or_(_KEPT_UNTIL.is_(None), _KEPT_UNTIL < at),
        )
        .limit(limit)
    )
    return (await session.scalars(query)).all()


async def keep_unstored(session: AsyncSession, response_ids: Sequence[str], until: float) -> None:
    """Those of these unstored responses still here are kept (from the sweep) until `until`."""
    query = select(Run.id, Run.options).where(Run.id.in_(response_ids), _UNSTORED_ANY)
    for response_id, options in (await session.execute(query)).all():
        await session.execute(
            update(Run)
            .where(Run.id == response_id)
            .values(options={**(options or {}), "kept_until": until})
        )


async def delete_unstored(session: AsyncSession, response_ids: Sequence[str]) -> None:
    """Those of these responses that are finished and unstored, with the items only they hold
    (as `delete_response`); the others stay."""
    ids = list(
        (await session.scalars(select(Run.id).where(Run.id.in_(response_ids), _UNSTORED))).all()
    )
    if not ids:
        return
    await session.execute(
        delete(Item).where(
            or_(Item.input_of.in_(ids), Item.run_id.in_(ids)), Item.thread_id.is_(None)
        )
    )
    await session.execute(delete(Run).where(Run.id.in_(ids)))


async def delete_response(session: AsyncSession, run: Run) -> None:
    """A response and the items only it holds (its input, and output outside a conversation)."""
    await session.execute(
        delete(Item).where(
            or_(Item.input_of == run.id, Item.run_id == run.id), Item.thread_id.is_(None)
        )
    )
    await session.execute(delete(Run).where(Run.id == run.id))
