"""run events notify (PostgreSQL): a trigger sends the wake-ups of stored run events

Every INSERT into run_events notifies `assistantd_run_events` with 'RUN_ID LAST_SEQ' for each
run it stored events of, and `assistantd_runs_queued` when one of them is `thread.run.queued`:
the notifications leave with the transaction's commit, without a statement of their own in each
transaction that stores events. The channel names are `runs.signals`' constants. SQLite has no
notifications (one process); nothing changes there.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTION = """
CREATE OR REPLACE FUNCTION assistantd_notify_run_events() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('assistantd_run_events', run_id || ' ' || max(seq))
    FROM stored GROUP BY run_id;
    IF EXISTS (SELECT 1 FROM stored WHERE event = 'thread.run.queued') THEN
        PERFORM pg_notify('assistantd_runs_queued', '');
    END IF;
    RETURN NULL;
END
$$
"""

TRIGGER = """
CREATE TRIGGER run_events_notify AFTER INSERT ON run_events
REFERENCING NEW TABLE AS stored
FOR EACH STATEMENT EXECUTE FUNCTION assistantd_notify_run_events()
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(FUNCTION)
    op.execute(TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS run_events_notify ON run_events")
    op.execute("DROP FUNCTION IF EXISTS assistantd_notify_run_events()")
