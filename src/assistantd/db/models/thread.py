from __future__ import annotations

from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from assistantd.db.base import Base, IdType, JsonType, Owned


class Thread(Owned, Base):
    """An Assistants thread, which is also a Responses conversation: one table for both. Its id
    says which API made it (`thread_` or `conv_`); either API reads and extends either kind."""

    __tablename__ = "threads"

    tool_resources: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    metadata_: Mapped[dict[str, str] | None] = mapped_column("metadata", JsonType)


class Item(Owned, Base):
    """A conversation item: a message, a tool call, or a tool call's output.

    The Assistants API's messages are the message items of a thread. Items of a thread (or
    conversation) have its `thread_id`; a response without a conversation keeps its items
    by `run_id` (its output) and `input_of` (its input) alone. They sort by `position`, the
    creation-ordered body of their id (ids of different kinds have prefixes of different
    lengths, so the id itself does not sort across kinds).
    """

    __tablename__ = "items"
    __table_args__ = (
        Index("ix_items_thread_id_position", "thread_id", "position"),
        Index("ix_items_thread_id_id", "thread_id", "id"),
        Index("ix_items_thread_id_run_id", "thread_id", "run_id"),
        Index("ix_items_run_id_position", "run_id", "position"),
        Index("ix_items_input_of_position", "input_of", "position"),
        Index("ix_items_call_id", "call_id"),
    )

    thread_id: Mapped[str | None] = mapped_column(
        IdType, ForeignKey("threads.id", ondelete="CASCADE")
    )
    position: Mapped[str] = mapped_column(IdType, nullable=False)
    # message, function_call, function_call_output, code_interpreter_call, file_search_call,
    # reasoning
    type: Mapped[str] = mapped_column(String(32), nullable=False)
    role: Mapped[str | None] = mapped_column(String(16))
    # A message's content array, in the Assistants wire shape (see items.content).
    content: Mapped[list[dict[str, Any]] | None] = mapped_column(JsonType)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    incomplete_details: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    completed_at: Mapped[int | None] = mapped_column(Integer)
    incomplete_at: Mapped[int | None] = mapped_column(Integer)
    assistant_id: Mapped[str | None] = mapped_column(IdType)
    # The run or response whose output this item is.
    run_id: Mapped[str | None] = mapped_column(IdType)
    # The response whose input this item is.
    input_of: Mapped[str | None] = mapped_column(IdType)
    # A tool call's id as the model and client know it (tool calls and their outputs).
    call_id: Mapped[str | None] = mapped_column(String(128))
    # The fields of the other item types (name, arguments, output, code, results...); keys
    # starting with `_` are the engine's own (what the model saw) and never rendered.
    data: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    attachments: Mapped[list[dict[str, Any]] | None] = mapped_column(JsonType)
    metadata_: Mapped[dict[str, str] | None] = mapped_column("metadata", JsonType)
