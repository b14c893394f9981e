"""Cursor pagination over id-sorted tables (ids sort by creation time, see kit.ids).

`after=X` returns the objects that follow X in the requested order; `before=X` those that precede
it (the ones nearest to X). Cursors are positions, so a deleted cursor object still works.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from assistantd.kit.schemas import ListResponse

Row = TypeVar("Row")
Item = TypeVar("Item")


@dataclass(frozen=True)
class Page:
    """What a list request asked for."""

    limit: int = 20
    order: str = "desc"
    after: str | None = None
    before: str | None = None


async def paginate(
    session: AsyncSession,
    query: Select[Row],
    id_column: InstrumentedAttribute[str],
    page: Page,
) -> tuple[Sequence[Row], bool]:
    """Rows of one page, in the requested order, and whether more follow."""
    descending = page.order == "desc"
    if page.after is not None:
        query = query.where(id_column < page.after if descending else id_column > page.after)
    if page.before is not None:
        query = query.where(id_column > page.before if descending else id_column < page.before)
    # Walking backwards from `before`: fetch nearest first, then flip into the requested order.
    backwards = page.before is not None and page.after is None
    ascending_scan = descending == backwards
    query = query.order_by(id_column.asc() if ascending_scan else id_column.desc())
    rows = list((await session.scalars(query.limit(page.limit + 1))).all())
    has_more = len(rows) > page.limit
    rows = rows[: page.limit]
    if backwards:
        rows.reverse()
    return rows, has_more


def list_response(
    rows: Sequence[Row], has_more: bool, render: Callable[[Row], Item]
) -> ListResponse[Any]:
    data = [render(row) for row in rows]
    ids = [item.get("id") if isinstance(item, dict) else getattr(item, "id", None) for item in data]
    return ListResponse[Any](
        data=data,
        first_id=ids[0] if ids else None,
        last_id=ids[-1] if ids else None,
        has_more=has_more,
    )
