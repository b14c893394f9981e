"""open streams counted across API processes

- `open_streams`: on PostgreSQL, one row per event stream (an SSE response or a WebSocket
  connection) an API process holds open, with that process's id and when it last renewed its
  rows: a project's limit of open streams counts the rows renewed lately, whichever process
  holds them, so a process killed with its streams open stops counting a few beats later.
  UNLOGGED there: a row lives as long as a connection, so it needs no WAL (and no flush at each
  commit); a database crash, which empties it, ends every stream anyway. Made on SQLite too,
  where it stays empty (the one API process counts its own streams).
- `assistantd_take_stream_slot(...)` (PostgreSQL): one statement that takes a slot, see
  `streams.repository.take`. Under a per-project transaction lock it counts the project's live
  rows, then adds one if they are fewer than the limit; it answers the count. A volatile
  function's statements each see what committed before them, so the count, after the lock,
  sees the slot the previous holder of the lock took.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# 6386532 is 0x617364 ("asd"), the first key of assistantd's advisory locks (runs.admission).
FUNCTION = """
CREATE OR REPLACE FUNCTION assistantd_take_stream_slot(
    slot_id text, slot_project text, slot_holder text, slot_limit integer,
    live_seconds double precision
) RETURNS integer
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    now_ double precision := extract(epoch FROM clock_timestamp());
    used integer;
BEGIN
    PERFORM pg_advisory_xact_lock(6386532, hashtext('open_streams ' || slot_project));
    SELECT count(*) INTO used FROM (
        SELECT 1 FROM open_streams
        WHERE project = slot_project AND beat_at > now_ - live_seconds
        LIMIT slot_limit
    ) AS live;
    IF used < slot_limit THEN
        INSERT INTO open_streams (id, project, holder, beat_at)
        VALUES (slot_id, slot_project, slot_holder, now_);
    END IF;
    RETURN used;
END
$$
"""


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "open_streams",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("project", sa.String(length=128), nullable=False),
        sa.Column("holder", sa.String(length=64), nullable=False),
        sa.Column("beat_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_open_streams")),
        prefixes=["UNLOGGED"] if postgres else [],
    )
    op.create_index("ix_open_streams_project_beat_at", "open_streams", ["project", "beat_at"])
    op.create_index("ix_open_streams_holder", "open_streams", ["holder"])
    if postgres:
        op.execute(FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "DROP FUNCTION IF EXISTS assistantd_take_stream_slot("
            "text, text, text, integer, double precision)"
        )
    op.drop_index("ix_open_streams_holder", table_name="open_streams")
    op.drop_index("ix_open_streams_project_beat_at", table_name="open_streams")
    op.drop_table("open_streams")
