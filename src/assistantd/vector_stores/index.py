"""The chunk index: writing chunks, and the two candidate searches hybrid retrieval fuses.

PostgreSQL: vectors in a pgvector column searched through an HNSW index (iterative scans keep
filtered searches complete; `db.pgvector` says what the installed pgvector allows), keywords
through a generated `tsvector` with a GIN index.
SQLite: keywords through FTS5 (bm25); vectors as float32 blobs, searched as one matrix per vector
store held in memory and rebuilt when the store's `generation` moves.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections import OrderedDict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import delete, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from assistantd.db import pgvector
from assistantd.db.engine import is_postgres, offloaded
from assistantd.db.models import File, VectorStoreChunk, VectorStoreFile
from assistantd.db.models.vector_store import DEFAULT_DIMS, FTS_TABLE, FTS_VOCAB
from assistantd.vector_stores import pg_text
from assistantd.vector_stores.chunking import Chunk
from assistantd.vector_stores.embeddings import Vectors

STOPWORDS = frozenset(
    "a an and are as at be but by can could did do does for from had has have how i if in into "
    "is it its me my of on or our please should so than that the their them then there these "
    "they this those to was we were what when where which who whom why will with would you your "
    "about tell find show give list explain describe".split()
)
_WORD = re.compile(r"\w+", re.UNICODE)
MAX_TERMS = 32


def keywords(query: str) -> list[str]:
    """The query's distinct search terms, stop words dropped (all words if nothing is left)."""
    words = [w for w in _WORD.findall(query.lower()) if len(w) < 64]
    kept = [w for w in words if w not in STOPWORDS] or words
    return list(dict.fromkeys(kept))[:MAX_TERMS]


def _vector_literal(vector: Vectors) -> str:
    return "[" + ",".join(f"{x:.7g}" for x in vector.tolist()) + "]"


# --- writes ------------------------------------------------------------------------------------


async def add_chunks(
    session: AsyncSession,
    store_id: str,
    file_id: str,
    owner: str,
    chunks: Sequence[Chunk],
    vectors: Vectors,
) -> None:
    dims = int(vectors.shape[1])
    rows = [
        {
            "vector_store_id": store_id,
            "file_id": file_id,
            "seq": chunk.seq,
            "char_start": chunk.start,
            "char_end": chunk.end,
            "text": chunk.text,
            "tokens": chunk.tokens,
            "dims": dims,
            "lease_owner": owner,
        }
        for chunk in chunks
    ]
    if is_postgres(session):
        for row, vector in zip(rows, vectors, strict=True):
            row["vec"] = _vector_literal(vector)
        await session.execute(
            text(
                "INSERT INTO vector_store_chunks "
                "(vector_store_id, file_id, seq, char_start, char_end, text, tokens, dims, "
                "lease_owner, embedding_vec) VALUES (:vector_store_id, :file_id, :seq, "
                ":char_start, :char_end, :text, :tokens, :dims, :lease_owner, CAST(:vec AS vector))"
            ),
            rows,
        )
        return
    for row, vector in zip(rows, vectors, strict=True):
        row["embedding"] = vector.astype("<f4").tobytes()
    async with offloaded(session):  # FTS indexing of a whole file
        await session.execute(insert(VectorStoreChunk), rows)


async def delete_chunks(
    session: AsyncSession, store_id: str, file_id: str, *, owner: str | None = None, keep: bool
) -> None:
    """Delete a file's chunks in a store: those of `owner` (keep=False) or all but `owner`'s."""
    query = delete(VectorStoreChunk).where(
        VectorStoreChunk.vector_store_id == store_id, VectorStoreChunk.file_id == file_id
    )
    if owner is not None:
        query = query.where(
            VectorStoreChunk.lease_owner != owner if keep else VectorStoreChunk.lease_owner == owner
        )
    async with offloaded(session):
        await session.execute(query.execution_options(synchronize_session=False))


async def delete_store_chunks(session: AsyncSession, store_id: str) -> None:
    async with offloaded(session):
        await session.execute(
            delete(VectorStoreChunk)
            .where(VectorStoreChunk.vector_store_id == store_id)
            .execution_options(synchronize_session=False)
        )


async def ensure_vector_index(session: AsyncSession, dims: int) -> None:
    """PostgreSQL: an HNSW index for an embedder of another width than the default."""
    if not is_postgres(session) or dims == DEFAULT_DIMS:
        return
    found = await pgvector.profile(session)
    kind = pgvector.index_type(found.version)
    await session.execute(text(pgvector.hnsw_index(dims, kind, if_not_exists=True)))


# --- candidate searches ------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """Which chunks of a store may be returned: those of its `completed` files, and of those only
    the `allowed` ones when a filter is given."""

    store_id: str
    generation: int
    allowed: frozenset[str] | None = None

    def admits(self, file_id: str) -> bool:
        return self.allowed is None or file_id in self.allowed


_COMPLETED = (
    "EXISTS (SELECT 1 FROM vector_store_files AS f WHERE f.vector_store_id = c.vector_store_id "
    "AND f.file_id = c.file_id AND f.status = 'completed')"
)


@dataclass
class _Matrix:
    generation: int
    ids: np.ndarray  # chunk ids (int64)
    files: list[str]  # distinct file ids
    codes: np.ndarray  # per row, index into `files`
    vectors: np.ndarray  # (n, dims) float32

    @property
    def nbytes(self) -> int:
        return int(self.ids.nbytes + self.codes.nbytes + self.vectors.nbytes)


class MatrixCache:
    """SQLite: each store's embeddings as one in-memory matrix, least recently used dropped."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[str, int], _Matrix] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, store_id: str, dims: int, generation: int) -> _Matrix | None:
        with self._lock:
            entry = self._entries.get((store_id, dims))
            if entry is None or entry.generation != generation:
                return None
            self._entries.move_to_end((store_id, dims))
            return entry

    def put(self, store_id: str, dims: int, entry: _Matrix) -> None:
        with self._lock:
            self._entries[(store_id, dims)] = entry
            self._entries.move_to_end((store_id, dims))
            total = sum(e.nbytes for e in self._entries.values())
            while total > self.max_bytes and len(self._entries) > 1:
                _, dropped = self._entries.popitem(last=False)
                total -= dropped.nbytes


async def _matrix(session: AsyncSession, cache: MatrixCache, scope: Scope, dims: int) -> _Matrix:
    cached = cache.get(scope.store_id, dims, scope.generation)
    if cached is not None:
        return cached
    async with offloaded(session):
        rows = (
            await session.execute(
                text(
                    "SELECT c.id, c.file_id, c.embedding FROM vector_store_chunks AS c "
                    f"WHERE c.vector_store_id = :store AND c.dims = :dims AND {_COMPLETED} "
                    "ORDER BY c.id"
                ),
                {"store": scope.store_id, "dims": dims},
            )
        ).all()
    files: dict[str, int] = {}
    codes = np.fromiter(
        (files.setdefault(row[1], len(files)) for row in rows), dtype=np.int32, count=len(rows)
    )
    ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
    blob = b"".join(row[2] or bytes(4 * dims) for row in rows)
    # A writable, owned copy: numpy multiplies read-only buffers several times slower.
    vectors = np.frombuffer(blob, dtype="<f4").reshape(len(rows), dims).copy()
    entry = _Matrix(scope.generation, ids, list(files), codes, vectors)
    cache.put(scope.store_id, dims, entry)
    return entry


async def vector_candidates(
    session: AsyncSession, cache: MatrixCache, scope: Scope, query: Vectors, limit: int
) -> list[tuple[int, float]]:
    """(chunk id, cosine similarity), best first."""
    if is_postgres(session):
        return await _pg_vector(session, scope, query, limit)
    matrix = await _matrix(session, cache, scope, int(query.shape[0]))
    return await asyncio.to_thread(nearest, matrix, scope, query, limit)


def cached_matrix(cache: MatrixCache, scope: Scope, dims: int) -> _Matrix | None:
    """SQLite: the store's matrix if it is in memory and current (no I/O)."""
    return cache.get(scope.store_id, dims, scope.generation)


def nearest(matrix: _Matrix, scope: Scope, query: Vectors, limit: int) -> list[tuple[int, float]]:
    """The `limit` rows of `matrix` nearest to `query` (thread-safe: runs off the event loop)."""
    if not len(matrix.ids):
        return []
    # einsum stays on one core: a multi-threaded BLAS call stalls on any busy core (tail latency)
    # and this matrix-vector product is bound by memory, not arithmetic.
    similarity = np.einsum("ij,j->i", matrix.vectors, query)
    blocked = [i for i, f in enumerate(matrix.files) if not scope.admits(f)]
    if blocked:
        similarity = np.where(np.isin(matrix.codes, blocked), -np.inf, similarity)
    count = min(limit, len(similarity))
    top = np.argpartition(-similarity, count - 1)[:count]
    top = top[np.argsort(-similarity[top])]
    return [(int(matrix.ids[i]), float(similarity[i])) for i in top if similarity[i] > -np.inf]


def _pg_scope(scope: Scope, params: dict[str, object]) -> str:
    clauses = f" AND {_COMPLETED}"
    if scope.allowed is not None:
        params["allowed"] = sorted(scope.allowed)
        clauses += " AND c.file_id = ANY(:allowed)"
    return clauses


async def _pg_vector(
    session: AsyncSession, scope: Scope, query: Vectors, limit: int
) -> list[tuple[int, float]]:
    dims = int(query.shape[0])
    params: dict[str, object] = {"store": scope.store_id, "q": _vector_literal(query), "n": limit}
    where = _pg_scope(scope, params)
    found = await pgvector.profile(session)
    # Iterative scans (pgvector 0.8+) keep going until `n` rows pass the store and file filters;
    # before them, a scan returns what the first `ef_search` neighbours leave.
    iterative = "set_config('hnsw.iterative_scan', 'relaxed_order', true), "
    await session.execute(
        text(
            f"SELECT {iterative if pgvector.iterative_scans(found.version) else ''}"
            "set_config('hnsw.ef_search', :ef, true)"
        ),
        {"ef": str(max(40, int(limit)))},
    )
    # The index orders by its own expression (half precision where pgvector has it); the score
    # is the exact cosine.
    kind = found.search_type(dims)
    rows = await session.execute(
        text(
            f"SELECT c.id, c.embedding_vec <=> CAST(:q AS vector) "
            f"FROM vector_store_chunks AS c WHERE c.vector_store_id = :store AND c.dims = {dims}"
            f"{where} ORDER BY c.embedding_vec::{kind}({dims}) <=> CAST(:q AS {kind}({dims})) "
            "LIMIT :n"
        ),
        params,
    )
    hits = [(int(row[0]), 1.0 - float(row[1])) for row in rows]
    return sorted(hits, key=lambda hit: -hit[1])


async def keyword_candidates(
    session: AsyncSession,
    scope: Scope,
    terms: Sequence[str],
    limit: int,
    stats: pg_text.TermStats | None = None,
) -> list[tuple[int, float]]:
    """(chunk id, keyword score: higher is better), best first."""
    if not terms:
        return []
    if is_postgres(session):
        return await pg_text.keyword_candidates(
            session, scope, terms, limit, stats or pg_text.TermStats(), f" AND {_COMPLETED}"
        )
    async with offloaded(session):
        picked = await _sqlite_selective(session, terms, stats or pg_text.TermStats())
        joiner = " OR " if picked else " AND "
        terms_match = joiner.join(f'"{term}"' for term in (picked or terms))
        match = f'vector_store_id : "{scope.store_id}" AND text : ({terms_match})'
        # FTS5 ranks inside the subquery (its `ORDER BY rank LIMIT` fast path); the outer query
        # keeps chunks of completed files.
        rows = await session.execute(
            text(
                "SELECT m.rowid, m.rank, c.file_id FROM ("
                f"SELECT rowid, rank FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH :match "
                "ORDER BY rank LIMIT :n) AS m "
                f"JOIN vector_store_chunks AS c ON c.id = m.rowid WHERE {_COMPLETED} "
                "ORDER BY m.rank"
            ),
            {"match": match, "n": limit * 2},
        )
    hits = [(int(row[0]), -float(row[1])) for row in rows if scope.admits(row[2])]
    return hits[:limit]


def _forms(term: str) -> list[str]:
    """The term and the stems Porter most likely gave it (the vocabulary holds stems)."""
    forms = [term]
    for suffix, keep in (("ies", "i"), ("es", ""), ("s", ""), ("ing", ""), ("ed", ""), ("e", "")):
        if term.endswith(suffix) and len(term) - len(suffix) >= 3:
            forms.append(term[: -len(suffix)] + keep)
    return forms


async def _sqlite_selective(
    session: AsyncSession, terms: Sequence[str], stats: pg_text.TermStats
) -> list[str]:
    """The terms in at most 5% of chunks: an OR of common terms would rank most of the index.
    Empty when every term is common (the caller then asks for all of them together)."""
    total = await stats.chunk_count(session)
    if total < 200:
        return list(terms)
    forms = {term: _forms(term) for term in terms}
    wanted = sorted({form for group in forms.values() for form in group})
    marks = ", ".join(f":f{i}" for i in range(len(wanted)))
    rows = await session.execute(
        text(f"SELECT term, doc FROM {FTS_VOCAB} WHERE term IN ({marks})"),
        {f"f{i}": form for i, form in enumerate(wanted)},
    )
    docs = {row[0]: int(row[1]) for row in rows}
    return [
        term
        for term in terms
        if max((docs.get(form, 0) for form in forms[term]), default=0) < 0.05 * total
    ]


@dataclass(frozen=True)
class ChunkRow:
    store_id: str
    file_id: str
    text: str
    filename: str
    attributes: dict[str, Any] | None


async def chunk_rows(session: AsyncSession, chunk_ids: Collection[int]) -> dict[int, ChunkRow]:
    """The chunks with their file's name and attributes, in one query."""
    if not chunk_ids:
        return {}
    rows = await session.execute(
        select(
            VectorStoreChunk.id,
            VectorStoreChunk.vector_store_id,
            VectorStoreChunk.file_id,
            VectorStoreChunk.text,
            File.filename,
            VectorStoreFile.attributes,
        )
        .join(
            VectorStoreFile,
            (VectorStoreFile.vector_store_id == VectorStoreChunk.vector_store_id)
            & (VectorStoreFile.file_id == VectorStoreChunk.file_id),
        )
        .outerjoin(File, File.id == VectorStoreChunk.file_id)
        .where(VectorStoreChunk.id.in_(list(chunk_ids)))
    )
    return {int(row[0]): ChunkRow(row[1], row[2], row[3], row[4] or row[2], row[5]) for row in rows}
