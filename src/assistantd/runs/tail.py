"""How far back a thread (conversation) is read for a turn: its newest items, newest first in
SQL a page at a time, stopping once they fill the prompt's budget, so a conversation of any
length costs what fits the model's window. Sizes are those of the items' stored JSON, which
the database measures without sending it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Text, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from assistantd.db.models import Item, Run

# The budget of a prompt nothing bounds.
UNBOUNDED = 2**62
# A thread (conversation) is read newest first, only as far back as fits the prompt's budget;
# a budget nothing bounds (the model's window is unknown) reads this many tokens of it, by the
# size of its stored JSON (so about half as many the model is sent).
UNKNOWN_WINDOW_READ = 262_144
# Its items' stored JSON, read at 4 characters a token, overcounts what the model is sent
# (keys, quotes, ids) by up to about 3 times for the shortest items: three budgets' worth is
# read, which `build` fits to the budget, and a thread longer than that is too long for the
# window when truncation is disabled.
_CHARS_PER_TOKEN = 4
_READS = 3
_ITEM_CHARS = 16  # an item's own overhead (role, separators), as characters
_TAIL_PAGE = 1024


@dataclass(frozen=True)
class Reading:
    """How far back a thread is read: its newest items up to `budget` prompt tokens (by the
    size of their stored JSON); `strict` (truncation disabled) makes a thread longer than that
    `ThreadTooLong` for `reason`, at once, rather than a context the model gets whole."""

    budget: int
    reason: str = "context_window"
    strict: bool = False

    @classmethod
    def of(cls, run: Run, budget: int, reason: str) -> Reading:
        strict = (run.truncation_strategy or {}).get("type") == "disabled"
        return cls(budget, reason, strict)


_SIZE = (
    func.coalesce(func.length(cast(Item.content, Text)), 0)
    + func.coalesce(func.length(cast(Item.data, Text)), 0)
    + _ITEM_CHARS
)


async def tail_start(session: AsyncSession, thread_id: str, reading: Reading) -> str | None:
    """The position of the oldest item to read (None: from the start), reading the thread
    newest first a page at a time and stopping once the budget is full."""
    known = reading.budget < UNBOUNDED
    budget = reading.budget if known else UNKNOWN_WINDOW_READ
    limit = budget * _CHARS_PER_TOKEN * (_READS if known else 1)
    total, before = 0, None
    while True:
        query = select(Item.position, _SIZE).where(Item.thread_id == thread_id)
        if before is not None:
            query = query.where(Item.position < before)
        page = (await session.execute(query.order_by(Item.position.desc()).limit(_TAIL_PAGE))).all()
        for index, (position, size) in enumerate(page):
            total += int(size)
            if total < limit:
                continue
            older = index + 1 < len(page) or await _older_exists(session, thread_id, position)
            if not older:
                return None
            if reading.strict:
                raise ThreadTooLong(reading.reason, total // (_CHARS_PER_TOKEN * _READS), budget)
            return str(position)
        if len(page) < _TAIL_PAGE:
            return None
        before = page[-1][0]


async def _older_exists(session: AsyncSession, thread_id: str, position: str) -> bool:
    query = select(Item.position).where(Item.thread_id == thread_id, Item.position < position)
    return (await session.scalar(query.limit(1))) is not None


async def first_message(session: AsyncSession, thread_id: str) -> str | None:
    """The position of the thread's oldest message (which `auto` truncation keeps)."""
    query = select(Item.position).where(Item.thread_id == thread_id, Item.type == "message")
    return await session.scalar(query.order_by(Item.position).limit(1))


class ThreadTooLong(Exception):
    """A strict reading found more than fits: about `tokens` against `budget`."""

    def __init__(self, reason: str, tokens: int, budget: int) -> None:
        super().__init__(f"about {tokens} prompt tokens exceed the {reason} budget of {budget}")
        self.reason = reason
        self.tokens = tokens
        self.budget = budget
