"""fair share between projects

- `runs.claimed_at`: when a worker last claimed the run; a project's newest tells how recently
  it was served.
- `ix_runs_status_project_id`: queued runs by project (fair claiming) and a project's active
  runs (its limit).
- `ix_runs_project_claimed_at`: a project's last claim.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("claimed_at", sa.Float(), nullable=True))
        batch.create_index("ix_runs_status_project_id", ["status", "project", "id"])
        batch.create_index("ix_runs_project_claimed_at", ["project", "claimed_at"])


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_project_claimed_at")
        batch.drop_index("ix_runs_status_project_id")
        batch.drop_column("claimed_at")
