"""All SQL for items read as a list (a conversation's, a response's input)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from assistantd.db.core import get_row
from assistantd.db.models import Item, Run
from assistantd.kit.ids import position_of
from assistantd.kit.pagination import Page


async def get(session: AsyncSession, project: str, item_id: str) -> Item | None:
    row = await get_row(session, Item, item_id)
    return row if row is not None and row.project == project else None


# An item given to or made by an unstored response (kept a moment, or for a WebSocket
# connection's life): as unseen as its response.
_OF_UNSTORED = (
    exists()
    .where(or_(Run.id == Item.run_id, Run.id == Item.input_of))
    .where(Run.options["store"].as_boolean().is_(False))
)


async def referable(session: AsyncSession, project: str, ids: Sequence[str]) -> dict[str, Item]:
    """The project's items among `ids` that an `item_reference` may name, by id."""
    rows = await session.scalars(
        select(Item).where(Item.id.in_(ids), Item.project == project, ~_OF_UNSTORED)
    )
    return {row.id: row for row in rows}


async def _cursor(session: AsyncSession, item_id: str, param: str) -> str:
    """Where a cursor item sits: its position, or, for an item since deleted (or never ours),
    where its id says it was made (a 400 naming `param` for a value that is no id)."""
    position = await session.scalar(select(Item.position).where(Item.id == item_id))
    return position if position is not None else position_of(item_id, param)


async def page(
    session: AsyncSession, condition: ColumnElement[bool], page: Page
) -> tuple[Sequence[Item], bool]:
    """One page of the items matching `condition`, by position, in the page's order."""
    query = select(Item).where(condition)
    descending = page.order == "desc"
    if page.after is not None:
        cursor = await _cursor(session, page.after, "after")
        query = query.where(Item.position < cursor if descending else Item.position > cursor)
    if page.before is not None:
        cursor = await _cursor(session, page.before, "before")
        query = query.where(Item.position > cursor if descending else Item.position < cursor)
    backwards = page.before is not None and page.after is None
    ascending_scan = descending == backwards
    order = Item.position.asc() if ascending_scan else Item.position.desc()
    rows = list((await session.scalars(query.order_by(order).limit(page.limit + 1))).all())
    has_more = len(rows) > page.limit
    rows = rows[: page.limit]
    if backwards:
        rows.reverse()
    return rows, has_more
