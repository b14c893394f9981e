"""Wire models of the Conversations API."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from assistantd.items.schemas import InputItem
from assistantd.kit.schemas import MAX_CONVERSATION_ITEMS as MAX_ITEMS
from assistantd.kit.schemas import Metadata, RequestModel, WireModel


class ConversationCreate(RequestModel):
    metadata: Metadata = None
    items: list[InputItem] | None = Field(None, max_length=MAX_ITEMS)


class ConversationUpdate(RequestModel):
    metadata: Metadata


class ItemsCreate(RequestModel):
    items: list[InputItem] = Field(max_length=MAX_ITEMS)


class ConversationObject(WireModel):
    id: str
    object: Literal["conversation"] = "conversation"
    created_at: int
    metadata: dict[str, str]
