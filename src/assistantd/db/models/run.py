from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from assistantd.db.base import Base, IdType, JsonType, Owned


class Run(Owned, Base):
    """A run of the Assistants API or a response of the Responses API (one engine executes
    both; the id's prefix, `run_` or `resp_`, says which), its settings as resolved at
    creation, and the worker lease that executes it."""

    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_thread_id_id", "thread_id", "id"),
        Index("ix_runs_status_id", "status", "id"),
        # Fair claiming (runs.state.claim) and the per-project limit (runs.admission).
        Index("ix_runs_status_project_id", "status", "project", "id"),
        Index("ix_runs_project_claimed_at", "project", "claimed_at"),
    )

    # A response's conversation; None for a response without one.
    thread_id: Mapped[str | None] = mapped_column(
        IdType, ForeignKey("threads.id", ondelete="CASCADE")
    )
    # None for a response.
    assistant_id: Mapped[str | None] = mapped_column(IdType)
    previous_response_id: Mapped[str | None] = mapped_column(IdType)
    # Written only by assistantd.runs.state.
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    model: Mapped[str] = mapped_column(String(256), nullable=False)
    instructions: Mapped[str | None] = mapped_column(Text)
    tools: Mapped[list[dict[str, Any]]] = mapped_column(JsonType, nullable=False)
    metadata_: Mapped[dict[str, str] | None] = mapped_column("metadata", JsonType)
    temperature: Mapped[float | None] = mapped_column(Float)
    top_p: Mapped[float | None] = mapped_column(Float)
    reasoning_effort: Mapped[str | None] = mapped_column(String(16))
    max_prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    max_completion_tokens: Mapped[int | None] = mapped_column(Integer)
    truncation_strategy: Mapped[dict[str, Any]] = mapped_column(JsonType, nullable=False)
    tool_choice: Mapped[Any] = mapped_column(JsonType, nullable=True)
    parallel_tool_calls: Mapped[bool] = mapped_column(Boolean, nullable=False)
    response_format: Mapped[Any] = mapped_column(JsonType, nullable=True)
    include: Mapped[list[str] | None] = mapped_column(JsonType)
    # A response's other request parameters, echoed on the wire (store, background, text,
    # truncation, reasoning, max_tool_calls, user...; see responses.schemas).
    options: Mapped[dict[str, Any] | None] = mapped_column(JsonType)

    required_action: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    last_error: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    incomplete_details: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    usage: Mapped[dict[str, int] | None] = mapped_column(JsonType)
    expires_at: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[int | None] = mapped_column(Integer)
    cancelled_at: Mapped[int | None] = mapped_column(Integer)
    failed_at: Mapped[int | None] = mapped_column(Integer)
    completed_at: Mapped[int | None] = mapped_column(Integer)

    # Execution bookkeeping (not on the wire).
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[float | None] = mapped_column(Float)
    # When a worker last claimed it (epoch seconds): a project's newest says when it was last
    # served, which fair claiming weighs.
    claimed_at: Mapped[float | None] = mapped_column(Float)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    model_turns: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    prompt_tokens: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class RunStep(Owned, Base):
    __tablename__ = "run_steps"
    __table_args__ = (
        Index("ix_run_steps_run_id_id", "run_id", "id"),
        Index("ix_run_steps_thread_id_id", "thread_id", "id"),
    )

    run_id: Mapped[str] = mapped_column(
        IdType, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False
    )
    thread_id: Mapped[str] = mapped_column(IdType, nullable=False)
    assistant_id: Mapped[str] = mapped_column(IdType, nullable=False)
    type: Mapped[str] = mapped_column(String(32), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    step_details: Mapped[dict[str, Any]] = mapped_column(JsonType, nullable=False)
    last_error: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    expired_at: Mapped[int | None] = mapped_column(Integer)
    cancelled_at: Mapped[int | None] = mapped_column(Integer)
    failed_at: Mapped[int | None] = mapped_column(Integer)
    completed_at: Mapped[int | None] = mapped_column(Integer)
    metadata_: Mapped[dict[str, str] | None] = mapped_column("metadata", JsonType)
    usage: Mapped[dict[str, int] | None] = mapped_column(JsonType)


class RunEvent(Base):
    """The run's server-sent events, in order: `seq` counts from 1 within each run."""

    __tablename__ = "run_events"
    __table_args__ = (UniqueConstraint("run_id", "seq"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    run_id: Mapped[str] = mapped_column(
        IdType, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False
    )
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    event: Mapped[str] = mapped_column(String(64), nullable=False)
    data: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[float] = mapped_column(Float, nullable=False)
