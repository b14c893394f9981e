"""Which pgvector a PostgreSQL database has, and what the schema uses of it.

pgvector 0.5.0 brought HNSW indexes (file search needs them), 0.7.0 the half-precision
`halfvec` type, 0.8.0 iterative index scans. The HNSW index over chunk embeddings casts them to
`halfvec(dims)` where the extension has it (half the memory, the same neighbours in practice),
else to `vector(dims)` (Ubuntu 24.04 ships 0.6); a search orders by the index's own expression
so the index serves it, and asks for iterative scans only where they exist. The choice is made
when an index is created (the migration, or a new embedder width) and read back from the index.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncSession

MINIMUM = (0, 5, 0)
HALFVEC = (0, 7, 0)
ITERATIVE_SCAN = (0, 8, 0)
IndexType = Literal["halfvec", "vector"]


class PgvectorUnusable(Exception):
    """pgvector is missing or too old: the message is one line saying what is needed and why."""


def parse(version: str) -> tuple[int, ...]:
    """`0.6.2` -> (0, 6, 2); pre-release or distribution suffixes (`0.7.0-beta`) are ignored."""
    return tuple(int(part) for part in re.findall(r"\d+", version.split("-", 1)[0])[:3])


def _dotted(version: tuple[int, ...]) -> str:
    return ".".join(str(part) for part in version)


def index_type(version: str) -> IndexType:
    """The type the HNSW index casts embeddings to under pgvector `version`."""
    found = parse(version)
    if found < MINIMUM:
        raise PgvectorUnusable(
            f"pgvector {_dotted(MINIMUM)} or newer is needed (file search uses its HNSW indexes) "
            f"and this database has {version}: install a newer pgvector, then run ALTER "
            "EXTENSION vector UPDATE"
        )
    return "halfvec" if found >= HALFVEC else "vector"


def iterative_scans(version: str) -> bool:
    """Whether pgvector `version` can keep scanning an HNSW index until a filter is met."""
    return parse(version) >= ITERATIVE_SCAN


def hnsw_index(dims: int, kind: IndexType, *, if_not_exists: bool = False) -> str:
    """The DDL of the HNSW index for embeddings `dims` wide."""
    exists = "IF NOT EXISTS " if if_not_exists else ""
    return (
        f"CREATE INDEX {exists}{index_name(dims)} ON vector_store_chunks "
        f"USING hnsw ((embedding_vec::{kind}({dims})) {kind}_cosine_ops) WHERE dims = {dims}"
    )


def index_name(dims: int) -> str:
    return f"ix_vector_store_chunks_hnsw_{dims}"


def create_extension(conn: Connection) -> str:
    """`CREATE EXTENSION IF NOT EXISTS vector` and the version the database then has, or
    `PgvectorUnusable` if the server has no pgvector or too old a one."""
    available = conn.execute(
        text("SELECT default_version FROM pg_available_extensions WHERE name = 'vector'")
    ).scalar()
    if available is None:
        raise PgvectorUnusable(
            f"the pgvector extension ({_dotted(MINIMUM)} or newer) is needed (file search uses "
            "its HNSW indexes) and this PostgreSQL server has none: install it (Debian and "
            "Ubuntu: apt-get install postgresql-NN-pgvector)"
        )
    conn.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
    version = str(
        conn.execute(text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")).scalar()
    )
    index_type(version)  # too old: say so
    return version


@dataclass(frozen=True)
class Profile:
    """The database's pgvector and the type each HNSW index casts embeddings to."""

    version: str
    indexes: dict[str, IndexType]

    def search_type(self, dims: int) -> IndexType:
        """What a search of `dims`-wide embeddings casts to: its index's type (an index made
        before an upgrade of pgvector keeps its own), else what a new index would use."""
        return self.indexes.get(index_name(dims)) or index_type(self.version)


_PROFILE = "assistantd.pgvector"
_READ_PROFILE = text(
    "SELECT e.extversion, i.indexname, i.indexdef FROM pg_extension AS e "
    "LEFT JOIN pg_indexes AS i ON i.tablename = 'vector_store_chunks' "
    "AND i.indexname LIKE 'ix\\_vector\\_store\\_chunks\\_hnsw\\_%' WHERE e.extname = 'vector'"
)


async def profile(session: AsyncSession) -> Profile:
    """The `Profile` of the session's database, read once per pooled connection."""
    connection = await session.connection()
    known = connection.info.get(_PROFILE)
    if isinstance(known, Profile):
        return known
    rows = (await session.execute(_READ_PROFILE)).all()
    if not rows:
        raise PgvectorUnusable("the vector extension is not installed: run assistantd migrate")
    indexes: dict[str, IndexType] = {
        str(name): "halfvec" if "halfvec" in str(definition) else "vector"
        for _, name, definition in rows
        if name is not None
    }
    found = Profile(str(rows[0][0]), indexes)
    connection.info[_PROFILE] = found
    return found
