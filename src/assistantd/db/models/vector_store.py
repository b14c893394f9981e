"""Vector stores, their files and file batches, and the chunks file search reads.

The search structures that differ by database are not ORM columns: on PostgreSQL a pgvector
`embedding_vec` column with an HNSW index and a generated `tsv` column with a GIN index, on SQLite
an FTS5 table kept in step by triggers (vectors stay in `embedding` as float32 blobs there).
Autogenerate cannot express them, so the hook at the bottom writes them into the migration.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Boolean, Float, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from assistantd.db.base import Base, IdType, JsonType, Owned

# The embedded embedder's width; PostgreSQL gets an HNSW index for it in the migration (other
# widths get theirs when a worker first starts with such an embedder).
DEFAULT_DIMS = 384


class VectorStore(Owned, Base):
    __tablename__ = "vector_stores"
    __table_args__ = (Index("ix_vector_stores_project_id", "project", "id"),)

    name: Mapped[str | None] = mapped_column(String(512))
    description: Mapped[str | None] = mapped_column(String(512))
    metadata_: Mapped[dict[str, str] | None] = mapped_column("metadata", JsonType)
    expires_after: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    expires_at: Mapped[int | None] = mapped_column(Integer)
    last_active_at: Mapped[int] = mapped_column(Integer, nullable=False)
    # Bumped whenever the set of searchable chunks changes (search caches key on it).
    generation: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # A thread's own store (message attachments), or None.
    thread_id: Mapped[str | None] = mapped_column(IdType)


class VectorStoreFile(Base):
    """A file attached to a store; the wire id is the file's id. Also the ingestion job."""

    __tablename__ = "vector_store_files"
    __table_args__ = (
        Index("ix_vector_store_files_status_created_at", "status", "created_at"),
        Index("ix_vector_store_files_file_id", "file_id"),
        Index("ix_vector_store_files_batch_id", "batch_id"),
    )

    vector_store_id: Mapped[str] = mapped_column(IdType, primary_key=True)
    file_id: Mapped[str] = mapped_column(IdType, primary_key=True)
    project: Mapped[str] = mapped_column(String(128), nullable=False)
    created_at: Mapped[int] = mapped_column(Integer, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    last_error: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    usage_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    chunking_strategy: Mapped[dict[str, Any]] = mapped_column(JsonType, nullable=False)
    attributes: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    batch_id: Mapped[str | None] = mapped_column(IdType)
    chunk_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    embedding_model: Mapped[str | None] = mapped_column(String(256))

    # Ingestion bookkeeping (not on the wire): a claim token per attempt, and its lease.
    lease_owner: Mapped[str | None] = mapped_column(String(96))
    lease_expires_at: Mapped[float | None] = mapped_column(Float)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class VectorStoreFileBatch(Owned, Base):
    __tablename__ = "vector_store_file_batches"
    __table_args__ = (Index("ix_vector_store_file_batches_vector_store_id", "vector_store_id"),)

    vector_store_id: Mapped[str] = mapped_column(IdType, nullable=False)
    cancelled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)


class VectorStoreChunk(Base):
    """One chunk of a file's text in one store. `id` is the FTS5 rowid on SQLite."""

    __tablename__ = "vector_store_chunks"
    __table_args__ = (Index("ix_vector_store_chunks_store_file", "vector_store_id", "file_id"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    vector_store_id: Mapped[str] = mapped_column(IdType, nullable=False)
    file_id: Mapped[str] = mapped_column(IdType, nullable=False)
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    # Where the chunk lies in the file's parsed text (characters); `.../content` rebuilds it.
    char_start: Mapped[int] = mapped_column(BigInteger, nullable=False)
    char_end: Mapped[int] = mapped_column(BigInteger, nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False)
    tokens: Mapped[int] = mapped_column(Integer, nullable=False)
    dims: Mapped[int] = mapped_column(Integer, nullable=False)
    # float32 little-endian; SQLite only (PostgreSQL keeps the vector in `embedding_vec`).
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary)
    # The ingestion attempt that wrote the chunk (see VectorStoreFile.lease_owner).
    lease_owner: Mapped[str] = mapped_column(String(96), nullable=False)


# --- search structures the migration gets from the hook below ---------------------------------

FTS_TABLE = "vector_store_chunks_fts"
FTS_VOCAB = "vector_store_chunks_fts_vocab"  # document frequency of every indexed term

POSTGRES_SEARCH_DDL = (
    "CREATE EXTENSION IF NOT EXISTS vector",
    "ALTER TABLE vector_store_chunks ADD COLUMN embedding_vec vector",
    # Hyphens become spaces: PostgreSQL's parser reads "QX-4163" as "qx" and "-4163".
    "ALTER TABLE vector_store_chunks ADD COLUMN tsv tsvector "
    "GENERATED ALWAYS AS (to_tsvector('english', translate(text, '-', ' '))) STORED",
    # Half precision in the index: half the memory (it should fit in shared_buffers), the same
    # neighbours in practice, and room for up to 4,000 dimensions.
    f"CREATE INDEX ix_vector_store_chunks_hnsw_{DEFAULT_DIMS} ON vector_store_chunks "
    f"USING hnsw ((embedding_vec::halfvec({DEFAULT_DIMS})) halfvec_cosine_ops) "
    f"WHERE dims = {DEFAULT_DIMS}",
    "CREATE INDEX ix_vector_store_chunks_tsv ON vector_store_chunks USING gin (tsv)",
)
# The store id is indexed too, so a keyword search is one FTS5 query scoped to its store; the
# rank weighs the text alone.
SQLITE_SEARCH_DDL = (
    f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5(text, vector_store_id, "
    "content='vector_store_chunks', content_rowid='id', tokenize='porter unicode61')",
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rank) VALUES ('rank', 'bm25(1.0, 0.0)')",
    f"CREATE VIRTUAL TABLE {FTS_VOCAB} USING fts5vocab({FTS_TABLE}, row)",
    f"CREATE TRIGGER vector_store_chunks_ai AFTER INSERT ON vector_store_chunks BEGIN "
    f"INSERT INTO {FTS_TABLE}(rowid, text, vector_store_id) "
    "VALUES (new.id, new.text, new.vector_store_id); END",
    f"CREATE TRIGGER vector_store_chunks_ad AFTER DELETE ON vector_store_chunks BEGIN "
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, text, vector_store_id) "
    "VALUES ('delete', old.id, old.text, old.vector_store_id); END",
)
POSTGRES_SEARCH_DROP = (
    f"DROP INDEX IF EXISTS ix_vector_store_chunks_hnsw_{DEFAULT_DIMS}",
    "DROP INDEX IF EXISTS ix_vector_store_chunks_tsv",
)
SQLITE_SEARCH_DROP = (
    "DROP TRIGGER IF EXISTS vector_store_chunks_ai",
    "DROP TRIGGER IF EXISTS vector_store_chunks_ad",
    f"DROP TABLE IF EXISTS {FTS_VOCAB}",
    f"DROP TABLE IF EXISTS {FTS_TABLE}",
)


def _register_migration_hook() -> None:
    """Teach autogenerate to write the search DDL after the tables are created."""
    import textwrap

    from alembic.autogenerate import comparators, renderers
    from alembic.autogenerate.api import AutogenContext
    from alembic.operations import ops
    from alembic.util import DispatchPriority, PriorityDispatchResult
    from sqlalchemy import inspect

    class SearchStructuresOp(ops.MigrateOperation):
        def __init__(self, create: bool) -> None:
            self.create = create

        def reverse(self) -> SearchStructuresOp:
            return SearchStructuresOp(not self.create)

    def compare(
        autogen_context: AutogenContext, upgrade_ops: ops.UpgradeOps, schemas: Any
    ) -> PriorityDispatchResult:
        assert autogen_context.connection is not None
        if not inspect(autogen_context.connection).has_table("vector_store_chunks"):
            upgrade_ops.ops.append(SearchStructuresOp(True))
        return PriorityDispatchResult.CONTINUE

    def render(autogen_context: AutogenContext, op: SearchStructuresOp) -> str:
        pg, lite = (
            (POSTGRES_SEARCH_DDL, SQLITE_SEARCH_DDL)
            if op.create
            else (POSTGRES_SEARCH_DROP, SQLITE_SEARCH_DROP)
        )
        lines = [
            "# Search structures (see assistantd.db.models.vector_store).",
            'if op.get_bind().dialect.name == "postgresql":',
            *[_execute(statement) for statement in pg],
            "else:",
            *[_execute(statement) for statement in lite],
        ]
        return "\n".join(lines)

    def _execute(statement: str) -> str:
        """`op.execute(...)` with the SQL cut into short string pieces (line length)."""
        pieces = textwrap.wrap(statement, 72, drop_whitespace=False, break_long_words=False)
        body = "\n".join(f"        {piece!r}" for piece in pieces)
        return f"    op.execute(\n{body}\n    )"

    comparators.dispatch_for("schema", priority=DispatchPriority.LAST)(compare)
    renderers.dispatch_for(SearchStructuresOp)(render)


_register_migration_hook()
