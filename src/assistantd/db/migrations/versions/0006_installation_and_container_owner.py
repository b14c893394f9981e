"""installation id and container owners

- `installation`: one row, this installation's random id, made at first start; its sandbox
  containers carry it as a label, so that installations sharing a Docker engine only ever
  remove their own.
- `containers.owner_id`: what an auto container was made for (the conversation, or the
  response that started its chain); deleting that deletes the container.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(length=64).with_variant(sa.String(length=64, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "installation",
        sa.Column("key", sa.String(length=16), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_installation")),
    )
    with op.batch_alter_table("containers") as batch:
        batch.add_column(sa.Column("owner_id", ID, nullable=True))
        batch.create_index("ix_containers_project_owner_id", ["project", "owner_id"])


def downgrade() -> None:
    with op.batch_alter_table("containers") as batch:
        batch.drop_index("ix_containers_project_owner_id")
        batch.drop_column("owner_id")
    op.drop_table("installation")
