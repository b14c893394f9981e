"""a project's active-run limit checked at commit, queued runs notified by a trigger (PostgreSQL)

- `assistantd_admit_run()` and the constraint triggers `runs_admitted_insert` and
  `runs_admitted_requeue`, DEFERRABLE INITIALLY DEFERRED: when a transaction that has armed the
  check (`runs.admission.settle`: the transaction-local setting `assistantd.max_active_runs`
  holds the limit) commits a run that now counts against its project's limit (inserted queued
  or in progress, or queued again after waiting for tool outputs), the trigger takes the
  project's transaction lock, counts its active runs and fails the commit when there are more
  than the limit (SQLSTATE AD429; the count of the others in the detail, the limit in the
  hint). The lock is held only from there to the end of the commit, a moment inside
  PostgreSQL: before, it was taken by a statement of the creating transaction and held over
  two more round trips to the API process, which serialized a project's creations. A volatile
  function's statements each see what committed before them, so the count, after the lock,
  sees the run of the previous holder of the lock. A transaction that has not armed the check
  (0: no limit) is not counted.
- `assistantd_notify_runs_queued()` and the trigger `runs_queued_notify`: a run inserted queued,
  or queued again (tool outputs, a requeue after a crash, a hand-back), notifies
  `assistantd_runs_queued` (`runs.signals.RUNS_QUEUED_CHANNEL`); the notification leaves with
  the commit (identical ones of a transaction are one). The statement each such transaction
  sent for it (`SELECT pg_notify(...)`, a round trip per created response) is no more.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# 6386532 is 0x617364 ("asd"), the first key of assistantd's advisory locks; the statuses are
# `runs.admission.COUNTED`.
FUNCTION = """
CREATE OR REPLACE FUNCTION assistantd_admit_run() RETURNS trigger
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    run_limit integer := nullif(current_setting('assistantd.max_active_runs', true), '')::integer;
    used integer;
BEGIN
    IF run_limit IS NULL OR run_limit <= 0 THEN
        RETURN NULL;
    END IF;
    PERFORM pg_advisory_xact_lock(6386532, hashtext(NEW.project));
    SELECT count(*) INTO used FROM (
        SELECT 1 FROM runs
        WHERE status IN ('queued', 'in_progress', 'cancelling') AND project = NEW.project
        LIMIT run_limit + 1
    ) AS active;
    IF used > run_limit THEN
        RAISE EXCEPTION 'active runs over the limit of project %', NEW.project
            USING ERRCODE = 'AD429', DETAIL = (used - 1)::text, HINT = run_limit::text;
    END IF;
    RETURN NULL;
END
$$
"""

NOTIFY_FUNCTION = """
CREATE OR REPLACE FUNCTION assistantd_notify_runs_queued() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('assistantd_runs_queued', '');
    RETURN NULL;
END
$$
"""

TRIGGERS = (
    """
CREATE CONSTRAINT TRIGGER runs_admitted_insert AFTER INSERT ON runs
DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
WHEN (NEW.status IN ('queued', 'in_progress', 'cancelling'))
EXECUTE FUNCTION assistantd_admit_run()
""",
    """
CREATE CONSTRAINT TRIGGER runs_admitted_requeue AFTER UPDATE OF status ON runs
DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
WHEN (
    NEW.status IN ('queued', 'in_progress', 'cancelling')
    AND OLD.status NOT IN ('queued', 'in_progress', 'cancelling')
)
EXECUTE FUNCTION assistantd_admit_run()
""",
    """
CREATE TRIGGER runs_queued_notify AFTER INSERT OR UPDATE OF status ON runs
FOR EACH ROW WHEN (NEW.status = 'queued')
EXECUTE FUNCTION assistantd_notify_runs_queued()
""",
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(FUNCTION)
    op.execute(NOTIFY_FUNCTION)
    for trigger in TRIGGERS:
        op.execute(trigger)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS runs_queued_notify ON runs")
    op.execute("DROP TRIGGER IF EXISTS runs_admitted_requeue ON runs")
    op.execute("DROP TRIGGER IF EXISTS runs_admitted_insert ON runs")
    op.execute("DROP FUNCTION IF EXISTS assistantd_notify_runs_queued()")
    op.execute("DROP FUNCTION IF EXISTS assistantd_admit_run()")
