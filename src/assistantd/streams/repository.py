"""The SQL of open streams counted in the database (PostgreSQL; see `streams.shared`). Times are
the database's clock, so that API processes on machines whose clocks differ agree."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Float, bindparam, cast, delete, extract, func, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from assistantd.db.models import OpenStream

# Migration 0008's function: under the project's lock, count its live slots (up to the limit)
# and take one if they are fewer; the count.
_TAKE = text("SELECT assistantd_take_stream_slot(:id, :project, :holder, :limit, :live)")
_NOW = cast(extract("epoch", func.clock_timestamp()), Float)
_RENEW = update(OpenStream).where(OpenStream.holder == bindparam("by")).values(beat_at=_NOW)
_SWEEP = delete(OpenStream).where(OpenStream.beat_at < _NOW - bindparam("live", type_=Float))
_GIVE_BACK = delete(OpenStream).where(OpenStream.id.in_(bindparam("ids", expanding=True)))
_DROP = delete(OpenStream).where(OpenStream.holder == bindparam("holder"))


async def take(
    conn: AsyncConnection, slot_id: str, project: str, holder: str, limit: int, live: float
) -> int:
    """How many of `project`'s slots renewed in the last `live` seconds there were, up to
    `limit`; when fewer, `slot_id` (held by `holder`) is one more. One statement."""
    params = {"id": slot_id, "project": project, "holder": holder, "limit": limit, "live": live}
    return int(await conn.scalar(_TAKE, params) or 0)


async def give_back(conn: AsyncConnection, slot_ids: Sequence[str]) -> None:
    await conn.execute(_GIVE_BACK, {"ids": list(slot_ids)})


async def renew(conn: AsyncConnection, holder: str) -> None:
    """`holder`'s slots are live for a while more."""
    await conn.execute(_RENEW, {"by": holder})


async def sweep(conn: AsyncConnection, live: float) -> None:
    """Removes the slots not renewed in the last `live` seconds (their process is gone), which
    no count sees any more."""
    await conn.execute(_SWEEP, {"live": live})


async def drop(conn: AsyncConnection, holder: str) -> None:
    """Removes all of `holder`'s slots (it is stopping)."""
    await conn.execute(_DROP, {"holder": holder})
