"""containers: the Containers API (named code interpreter sandboxes) and their files

- `containers`: a named sandbox of a project, `running` until `expires_at` (its
  `last_active_at` plus `expires_after.minutes`) passes, then `expired`.
- `container_files`: the files of a container, each a path under /mnt/data whose bytes are a
  `files` row; `owns_file` marks the rows made for the container (uploads, the code's output),
  which go with it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(length=64).with_variant(sa.String(length=64, collation="C"), "postgresql")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "containers",
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("last_active_at", sa.Integer(), nullable=False),
        sa.Column("expires_after", JSON, nullable=False),
        sa.Column("expires_at", sa.Integer(), nullable=False),
        sa.Column("memory_limit", sa.String(length=8), nullable=False),
        sa.Column("id", ID, nullable=False),
        sa.Column("project", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_containers")),
    )
    with op.batch_alter_table("containers") as batch:
        batch.create_index("ix_containers_project_id", ["project", "id"])
        batch.create_index("ix_containers_status_expires_at", ["status", "expires_at"])

    op.create_table(
        "container_files",
        sa.Column("container_id", ID, nullable=False),
        sa.Column("file_id", ID, nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("owns_file", sa.Boolean(), nullable=False),
        sa.Column("id", ID, nullable=False),
        sa.Column("project", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["container_id"],
            ["containers.id"],
            name=op.f("fk_container_files_container_id_containers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["file_id"],
            ["files.id"],
            name=op.f("fk_container_files_file_id_files"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_container_files")),
    )
    with op.batch_alter_table("container_files") as batch:
        batch.create_index("ix_container_files_container_id_id", ["container_id", "id"])
        batch.create_index(
            "ix_container_files_container_id_path", ["container_id", "path"], unique=True
        )
        batch.create_index("ix_container_files_file_id", ["file_id"])


def downgrade() -> None:
    # The files rows that containers owned stay behind as ordinary files.
    op.drop_table("container_files")
    op.drop_table("containers")
