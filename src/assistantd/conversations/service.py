"""Conversation use cases. A conversation is a thread (see `db.models.Thread`): either API
reads and extends what the other made."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, or_
from sqlalchemy.ext.asyncio import AsyncSession

from assistantd.conversations.schemas import ConversationCreate, ConversationObject
from assistantd.db.models import Item, Thread
from assistantd.errors import NotFoundError
from assistantd.items import convert
from assistantd.items import repository as items
from assistantd.items.schemas import InputItem
from assistantd.kit.ids import THREAD_IDS, Prefix, created_at_of, new_id
from assistantd.kit.pagination import Page
from assistantd.kit.sealed import Sealer
from assistantd.runs import guard
from assistantd.threads import repository as threads


def render(row: Thread) -> ConversationObject:
    return ConversationObject(id=row.id, created_at=row.created_at, metadata=row.metadata_ or {})


async def require(session: AsyncSession, project: str, conversation_id: str) -> Thread:
    row = None
    if conversation_id.startswith(THREAD_IDS):
        row = await threads.get(session, project, conversation_id)
    if row is None:
        raise NotFoundError(f"Conversation with id '{conversation_id}' not found.")
    return row


async def create(
    session: AsyncSession, project: str, body: ConversationCreate, sealer: Sealer
) -> Thread:
    conversation_id = new_id(Prefix.CONVERSATION)
    row = Thread(
        id=conversation_id,
        project=project,
        created_at=created_at_of(conversation_id),
        tool_resources={},
        metadata_=body.metadata or {},
    )
    await threads.add(session, row)
    await add_items(session, row, body.items or [], sealer, param="items")
    return row


async def add_items(
    session: AsyncSession,
    row: Thread,
    given: Sequence[InputItem],
    sealer: Sealer,
    *,
    param: str = "items",
) -> list[Item]:
    """New items at the end of the conversation, in the order given."""
    added = await convert.rows(
        session, row.project, given, thread_id=row.id, param=param, sealer=sealer
    )
    session.add_all(added)
    await session.flush()
    return added


async def append_items(
    session: AsyncSession, row: Thread, given: Sequence[InputItem], sealer: Sealer
) -> list[Item]:
    """`POST /conversations/{id}/items`: refused while a run or response is active on the
    conversation, as the Assistants API refuses messages (its items would land between a
    tool call and its output)."""
    await guard.ensure_no_active_run(session, row.id, for_run=False)
    return await add_items(session, row, given, sealer)


async def list_items(session: AsyncSession, row: Thread, page: Page) -> tuple[Sequence[Item], bool]:
    # A message still streaming belongs to its run until it is done.
    condition = and_(
        Item.thread_id == row.id, or_(Item.type != "message", Item.status != "in_progress")
    )
    return await items.page(session, condition, page)


async def require_item(session: AsyncSession, row: Thread, item_id: str) -> Item:
    item = await items.get(session, row.project, item_id)
    if item is None or item.thread_id != row.id:
        raise NotFoundError(f"Item with id '{item_id}' not found.")
    return item


async def delete_item(session: AsyncSession, item: Item) -> None:
    """Take an item out of its conversation; one that belongs to a response stays with it."""
    if item.input_of is not None or (item.run_id or "").startswith(Prefix.RESPONSE):
        item.thread_id = None
    else:
        await session.delete(item)
    await session.flush()
