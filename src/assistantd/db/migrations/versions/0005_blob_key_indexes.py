"""blob_key indexes: the sweep of orphaned blobs asks which stored keys rows still refer to

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_files_blob_key", "files", ["blob_key"])
    op.create_index("ix_upload_parts_blob_key", "upload_parts", ["blob_key"])


def downgrade() -> None:
    op.drop_index("ix_upload_parts_blob_key", table_name="upload_parts")
    op.drop_index("ix_files_blob_key", table_name="files")
