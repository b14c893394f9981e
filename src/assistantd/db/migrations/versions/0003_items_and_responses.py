"""items and responses: messages become items; a run may be a response

The Responses and Conversations APIs share the Assistants API's store (DESIGN.md, "Two API
surfaces, one engine"):
- `messages` becomes `items`: a thread's (conversation's) messages, tool calls and tool
  outputs, ordered by `position` (the creation-ordered body of the id). New columns: `type`,
  `position`, `input_of` (the response an item was input to), `call_id`, `data`. `thread_id`
  and `content` become nullable (a response without a conversation; items other than messages).
- `runs` holds responses too: `thread_id`, `assistant_id` and `instructions` become nullable;
  new `previous_response_id` and `options` (the Responses-only request parameters).
- The tool calls of earlier Assistants runs, until now kept only in their run steps, are copied
  into items, so a thread read as a conversation (and every later run's context) has them.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

import json
import secrets
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(length=64).with_variant(sa.String(length=64, collation="C"), "postgresql")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
_ALPHABET = "0123456789abcdefghijklmnopqrstuv"
_NEW_INDEXES = (
    ("ix_items_thread_id_position", ["thread_id", "position"]),
    ("ix_items_run_id_position", ["run_id", "position"]),
    ("ix_items_input_of_position", ["input_of", "position"]),
    ("ix_items_call_id", ["call_id"]),
)


def upgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    op.rename_table("messages", "items")
    if postgres:
        op.execute("ALTER TABLE items RENAME CONSTRAINT pk_messages TO pk_items")
        op.execute(
            "ALTER TABLE items RENAME CONSTRAINT fk_messages_thread_id_threads "
            "TO fk_items_thread_id_threads"
        )
    for old, new in (
        ("ix_messages_thread_id_id", "ix_items_thread_id_id"),
        ("ix_messages_thread_id_run_id", "ix_items_thread_id_run_id"),
    ):
        if postgres:
            op.execute(f"ALTER INDEX {old} RENAME TO {new}")
        else:
            op.drop_index(old, table_name="items")
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("position", ID, nullable=True))
        batch.add_column(sa.Column("type", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("input_of", ID, nullable=True))
        batch.add_column(sa.Column("call_id", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("data", JSON, nullable=True))
    op.execute("UPDATE items SET type = 'message', position = substr(id, 5)")
    with op.batch_alter_table("items") as batch:
        batch.alter_column("position", existing_type=ID, nullable=False)
        batch.alter_column("type", existing_type=sa.String(length=32), nullable=False)
        batch.alter_column("thread_id", existing_type=ID, nullable=True)
        batch.alter_column("content", existing_type=JSON, nullable=True)
        batch.alter_column("role", existing_type=sa.String(length=16), nullable=True)
        if not postgres:
            batch.create_index("ix_items_thread_id_id", ["thread_id", "id"])
            batch.create_index("ix_items_thread_id_run_id", ["thread_id", "run_id"])
        for name, columns in _NEW_INDEXES:
            batch.create_index(name, columns)

    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("previous_response_id", ID, nullable=True))
        batch.add_column(sa.Column("options", JSON, nullable=True))
        batch.alter_column("thread_id", existing_type=ID, nullable=True)
        batch.alter_column("assistant_id", existing_type=ID, nullable=True)
        batch.alter_column("instructions", existing_type=sa.Text(), nullable=True)

    _copy_tool_calls(bind)


def _copy_tool_calls(bind: sa.Connection) -> None:
    """Items for the tool calls (and outputs) recorded in Assistants run steps."""
    steps = bind.execute(
        sa.text(
            "SELECT s.id, s.project, s.thread_id, s.run_id, s.step_details, s.created_at, "
            "r.status FROM run_steps s JOIN runs r ON r.id = s.run_id "
            "WHERE s.type = 'tool_calls' AND (s.status = 'completed' OR "
            "r.status = 'requires_action')"
        )
    ).all()
    plain = ("id", "project", "created_at", "thread_id", "position", "type", "role", "status")
    items = sa.table(
        "items",
        *(sa.column(name) for name in (*plain, "run_id", "call_id")),
        *(sa.column(name, JSON) for name in ("content", "data", "attachments", "metadata")),
    )
    rows: list[dict[str, Any]] = []
    for step_id, project, thread_id, run_id, details, created_at, _ in steps:
        if isinstance(details, str):
            details = json.loads(details)
        body = step_id.split("_", 1)[1]
        for index, call in enumerate(details.get("tool_calls") or []):
            for order, (prefix, item_type, data) in enumerate(_items_of(call)):
                # The step's time and counter first, so the items sort where the step did;
                # then its calls, then their outputs.
                item_body = (
                    body[:12]
                    + _ALPHABET[order]
                    + _ALPHABET[index % 32]
                    + "".join(secrets.choice(_ALPHABET) for _ in range(14))
                )
                rows.append(
                    {
                        "id": prefix + item_body,
                        "project": project,
                        "created_at": created_at,
                        "thread_id": thread_id,
                        "position": item_body,
                        "type": item_type,
                        "role": None,
                        "content": None,
                        "status": "completed",
                        "run_id": run_id,
                        "call_id": call.get("id"),
                        "data": data,
                        "attachments": None,
                        "metadata": None,
                    }
                )
    if rows:
        op.bulk_insert(items, rows)


def _items_of(call: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """The items of one step tool call (id prefix, type, data): a function call and its output
    (when given), or one server tool call item carrying what the model read."""
    private = {k: v for k, v in call.items() if k.startswith("_")}
    if call.get("type") == "function":
        fn = call.get("function") or {}
        out = [("fc_", "function_call", {"name": fn.get("name"), "arguments": fn.get("arguments")})]
        if fn.get("output") is not None:
            out.append(("fco_", "function_call_output", {"output": fn["output"]}))
        return out
    if call.get("type") == "code_interpreter":
        ci = call.get("code_interpreter") or {}
        data = {"code": ci.get("input", ""), "outputs": ci.get("outputs") or [], **private}
        return [("ci_", "code_interpreter_call", data)]
    if call.get("type") == "file_search":
        fs = call.get("file_search") or {}
        data = {"queries": [], "results": fs.get("results") or [], **private}
        return [("fs_", "file_search_call", data)]
    return []


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.execute("DELETE FROM runs WHERE id LIKE 'resp\\_%' ESCAPE '\\'")
    op.execute("DELETE FROM items WHERE type <> 'message' OR thread_id IS NULL")
    with op.batch_alter_table("runs") as batch:
        batch.alter_column("instructions", existing_type=sa.Text(), nullable=False)
        batch.alter_column("assistant_id", existing_type=ID, nullable=False)
        batch.alter_column("thread_id", existing_type=ID, nullable=False)
        batch.drop_column("options")
        batch.drop_column("previous_response_id")
    with op.batch_alter_table("items") as batch:
        for name, _ in _NEW_INDEXES:
            batch.drop_index(name)
        batch.alter_column("content", existing_type=JSON, nullable=False)
        batch.alter_column("role", existing_type=sa.String(length=16), nullable=False)
        batch.alter_column("thread_id", existing_type=ID, nullable=False)
        for column in ("data", "call_id", "input_of", "type", "position"):
            batch.drop_column(column)
    if postgres:
        op.execute("ALTER INDEX ix_items_thread_id_id RENAME TO ix_messages_thread_id_id")
        op.execute("ALTER INDEX ix_items_thread_id_run_id RENAME TO ix_messages_thread_id_run_id")
        op.execute("ALTER TABLE items RENAME CONSTRAINT pk_items TO pk_messages")
        op.execute(
            "ALTER TABLE items RENAME CONSTRAINT fk_items_thread_id_threads "
            "TO fk_messages_thread_id_threads"
        )
    op.rename_table("items", "messages")
