"""The unstored (`store: false`) responses a WebSocket connection keeps, so that
`previous_response_id` can name them on this connection (and only here).

An unstored response the connection may continue stays in the database while it may: never shown
(`repository.get` does not find it, as any unstored response), and chained to what it continues
like a stored response (`previous_response_id`), so that each turn stores only its own input and
output, whatever the chain's length. The connection also holds the chain's items in memory,
when no stored response is among them: a continuation's model request then leaves before its
creation commits, nothing read (`runs.create.queue`).

The connection remembers its newest `MEMORY_RESPONSES` responses; a response's rows are removed
(by the process's `Forgetter`) once neither it nor a response continuing it is remembered, and
all of them when the connection ends. They carry `kept_until` (in `options`), which the sweep of
unstored responses respects and the connection moves on while it lasts (`keep_alive`): rows of a
process that died are swept `KEEP_SECONDS` later at most.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assistantd.db.models import Item
from assistantd.errors import APIError
from assistantd.items import convert
from assistantd.items.schemas import InputItem
from assistantd.kit.sealed import Sealer
from assistantd.responses import repository
from assistantd.responses.create import Keep
from assistantd.responses.unstored import Forgetter
from assistantd.runs import context

log = logging.getLogger(__name__)

# Responses a connection remembers for `previous_response_id` (the newest ones).
MEMORY_RESPONSES = 16
# How long the sweep leaves a kept response after the connection last said so.
KEEP_SECONDS = 120.0
_OUTPUT_ITEM: TypeAdapter[InputItem] = TypeAdapter(InputItem)


@dataclass(frozen=True)
class Remembered:
    """A response the connection may continue: the kept responses of its chain (it first), the
    stored response they continue (if any), and, when there is none, every item of the chain in
    order (inputs and outputs)."""

    kept: tuple[str, ...]
    anchor: str | None
    context: tuple[Item, ...] | None


@dataclass
class _Kept:
    parent: str | None  # the kept response it continues
    until: float
    children: int = 0  # kept responses that continue it
    remembered: Remembered | None = None


class Memory:
    """The unstored responses of one connection."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        reads: async_sessionmaker[AsyncSession],
        forgetter: Forgetter,
        sealer: Sealer,
        project: str,
    ) -> None:
        self._sessions = sessions
        self._reads = reads
        self._forgetter = forgetter
        self._sealer = sealer
        self._project = project
        self._kept: dict[str, _Kept] = {}
        self._recent: OrderedDict[str, None] = OrderedDict()

    def get(self, response_id: str) -> Remembered | None:
        kept = self._kept.get(response_id)
        return kept.remembered if kept is not None else None

    def keep(self, continued: Remembered | None) -> Keep:
        """How a new unstored response that continues `continued` (if the connection has it)
        is created."""
        until = time.time() + KEEP_SECONDS
        if continued is None:
            return Keep(until)
        chain = continued.kept if continued.anchor is None else None
        return Keep(until, continues_kept=True, chain=chain, context=continued.context)

    def created(self, response_id: str, keep: Keep, continued: str | None) -> None:
        """The response is in the database: the connection removes it when it is done."""
        parent = continued if keep.continues_kept and continued in self._kept else None
        self._kept[response_id] = _Kept(parent, keep.until)
        if parent is not None:
            self._kept[parent].children += 1

    async def remember(
        self,
        response_id: str,
        keep: Keep,
        continued: Remembered | None,
        anchor: str | None,
        output: list[dict[str, Any]],
    ) -> None:
        """The response ended: it may be continued (the oldest remembered one is forgotten)."""
        remembered = await self._remembered(response_id, keep, continued, anchor, output)
        kept = self._kept.get(response_id)
        if remembered is None or kept is None:
            self.release(response_id)
            return
        kept.remembered = remembered
        self._recent[response_id] = None
        while len(self._recent) > MEMORY_RESPONSES:
            oldest, _ = self._recent.popitem(last=False)
            self.release(oldest)

    async def _remembered(
        self,
        response_id: str,
        keep: Keep,
        continued: Remembered | None,
        anchor: str | None,
        output: list[dict[str, Any]],
    ) -> Remembered | None:
        kept = (response_id, *continued.kept) if continued is not None else (response_id,)
        before = continued.context if continued is not None else ()
        if anchor is not None or before is None:
            return Remembered(kept, anchor, None)
        # A session only for what convert.rows may look up (files an item names): an output
        # names none, and a session that ran nothing holds nothing to close.
        session = self._reads()
        try:
            produced = [_as_input(item) for item in output]
            rows = await convert.rows(
                session, self._project, produced, input_of=response_id, sealer=self._sealer
            )
        except (ValidationError, APIError):
            # an output item that cannot be input again: no continuation rather than a wrong one
            log.warning("response %s: its output cannot be remembered", response_id)
            return None
        finally:
            if session.in_transaction():
                await session.close()
        return Remembered(kept, None, (*before, *keep.rows, *rows))

    def release(self, response_id: str) -> None:
        """The response is not (or no longer) to be continued: its rows go once no response
        continuing it is remembered (it may be no response of the connection's)."""
        self._recent.pop(response_id, None)
        kept = self._kept.get(response_id)
        if kept is not None:
            kept.remembered = None
        while kept is not None and kept.remembered is None and kept.children == 0:
            del self._kept[response_id]
            self._forgetter.forget(response_id)
            if kept.parent is None:
                return
            response_id = kept.parent
            kept = self._kept[response_id]
            kept.children -= 1

    async def items(self, session: AsyncSession, continued: Remembered) -> Sequence[Item]:
        """The items of `continued`'s kept responses, in order (what a stored response that
        continues it copies)."""
        if continued.context is not None:
            return continued.context
        return await context.items_of(
            session, thread_id=None, responses=list(reversed(continued.kept))
        )

    async def keep_alive(self) -> None:
        """Move the kept responses' `kept_until` on before the sweep may take them (a task for
        the connection's life)."""
        while True:
            await asyncio.sleep(KEEP_SECONDS / 4)
            horizon = time.time() + KEEP_SECONDS / 2
            due = [key for key, kept in self._kept.items() if kept.until < horizon]
            if not due:
                continue
            until = time.time() + KEEP_SECONDS
            try:
                async with self._sessions() as session:
                    await repository.keep_unstored(session, due, until)
                    await session.commit()
            except Exception as exc:
                log.warning("could not keep %d unstored responses: %s", len(due), exc)
                continue
            for key in due:
                kept = self._kept.get(key)
                if kept is not None:
                    kept.until = until

    def close(self, running: str | None) -> None:
        """The connection ended: remove every response it kept, but the one still `running`
        (the client went away; it goes on) and those it continues, which it may read again:
        the sweep takes them once their `kept_until` passes."""
        spared: set[str] = set()
        while running is not None and running in self._kept:
            spared.add(running)
            running = self._kept[running].parent
        for response_id in self._kept:
            if response_id not in spared:
                self._forgetter.forget(response_id)
        self._kept.clear()
        self._recent.clear()


def _as_input(item: dict[str, Any]) -> InputItem:
    """An output item as input for the next turn, without its id where it may go: a given id
    costs a look-up."""
    try:
        return _OUTPUT_ITEM.validate_python({k: v for k, v in item.items() if k != "id"})
    except ValidationError:
        return _OUTPUT_ITEM.validate_python(item)
