"""Hybrid retrieval: vector and keyword candidates fused by reciprocal rank, then filtered.

Each query gets the nearest chunks by embedding and the best chunks by full-text rank; a chunk's
score is its reciprocal-rank fusion score (k = 60), scaled so that a chunk ranked first by both
searches scores 1.0 (first by one of them only: 0.5). Several queries or stores: a chunk keeps
its best score. Attribute filters are evaluated on the store's files before searching.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from assistantd.db.engine import is_postgres
from assistantd.db.models import VectorStore
from assistantd.settings import Settings
from assistantd.vector_stores import index, pg_text, repository
from assistantd.vector_stores.embeddings import Embedder, Vectors, make_embedder

RRF_K = 60
Mode = Literal["hybrid", "vector", "keyword"]


@dataclass
class Hit:
    store_id: str
    file_id: str
    filename: str
    chunk_id: int
    text: str
    score: float
    attributes: dict[str, Any] | None


def _compare(kind: str, actual: Any, expected: Any) -> bool:
    if kind in ("in", "nin"):
        found = isinstance(expected, list) and any(
            _compare("eq", actual, item) for item in expected
        )
        return found if kind == "in" else not found
    numeric = all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in (actual, expected)
    )
    same_kind = numeric or type(actual) is type(expected)
    if kind == "eq":
        return same_kind and actual == expected
    if kind == "ne":
        return not (same_kind and actual == expected)
    if not same_kind or isinstance(actual, bool):
        return False
    if kind == "gt":
        return bool(actual > expected)
    if kind == "gte":
        return bool(actual >= expected)
    if kind == "lt":
        return bool(actual < expected)
    return bool(actual <= expected)


def matches(filter_: dict[str, Any], attributes: dict[str, Any]) -> bool:
    """Whether a file's attributes pass a comparison or compound filter (OpenAI's shapes)."""
    kind = filter_["type"]
    if kind in ("and", "or"):
        results = (matches(inner, attributes) for inner in filter_["filters"])
        return all(results) if kind == "and" else any(results)
    key = filter_["key"]
    if key not in attributes:
        return kind in ("ne", "nin")
    return _compare(kind, attributes[key], filter_["value"])


def rewrite(query: str) -> str:
    """`rewrite_query`: the query reduced to its search terms."""
    return " ".join(index.keywords(query)) or query.strip()


def _fuse(
    lists: list[tuple[float, list[tuple[int, float]]]], *, by_score: bool = False
) -> dict[int, float]:
    """Fuse (weight, ranking) lists into scores where first place in every list is 1.0.

    By default reciprocal-rank fusion (ranks only: robust, whatever each search's scale). With
    `by_score` (a request's explicit `hybrid_search` weights), each list's scores are scaled
    to its best and combined with the weights, so the weights really choose between the
    keyword and the vector search (with ranks, a chunk found by both would nearly always win).
    """
    total = sum(weight for weight, _ in lists)
    if not total:
        return {}
    fused: dict[int, float] = {}
    if by_score:
        for weight, ranked in lists:
            top = max((score for _, score in ranked), default=0.0)
            for chunk_id, score in ranked:
                share = score / top if top > 0 else 0.0
                fused[chunk_id] = fused.get(chunk_id, 0.0) + weight * share
        return {chunk_id: score / total for chunk_id, score in fused.items()}
    best = total / (RRF_K + 1)
    for weight, ranked in lists:
        for rank, (chunk_id, _) in enumerate(ranked):
            fused[chunk_id] = fused.get(chunk_id, 0.0) + weight / (RRF_K + rank + 1)
    return {chunk_id: score / best for chunk_id, score in fused.items()}


class Retrieval:
    """Search over vector stores; one per process (it holds the embedder and the caches)."""

    def __init__(self, settings: Settings, embedder: Embedder) -> None:
        self.settings = settings
        self.embedder = embedder
        self.matrices = index.MatrixCache(settings.search_cache_bytes)
        self.term_stats = pg_text.TermStats()
        self._queries: OrderedDict[str, Vectors] = OrderedDict()

    @classmethod
    def build(cls, settings: Settings, http: httpx.AsyncClient) -> Retrieval:
        return cls(settings, make_embedder(settings, http))

    async def embed_query(self, query: str) -> Vectors:
        cached = self._queries.get(query)
        if cached is not None:
            self._queries.move_to_end(query)
            return cached
        vector = await self.embedder.embed_query(query)
        self._queries[query] = vector
        while len(self._queries) > 512:
            self._queries.popitem(last=False)
        return vector

    async def _scope(
        self, session: AsyncSession, store: VectorStore, filters: dict[str, Any] | None
    ) -> index.Scope | None:
        if filters is None:
            return index.Scope(store.id, store.generation)
        allowed = frozenset(
            file_id
            for file_id, status, attributes in await repository.files_of_store(session, store.id)
            if status == "completed" and matches(filters, attributes or {})
        )
        return index.Scope(store.id, store.generation, allowed) if allowed else None

    async def _vector_in_memory(
        self, scope: index.Scope, query: str, depth: int
    ) -> tuple[Vectors, list[tuple[int, float]] | None]:
        """Embed the query, and on SQLite scan the store's matrix if it is in memory."""
        vector = await self.embed_query(query)
        matrix = index.cached_matrix(self.matrices, scope, int(vector.shape[0]))
        if matrix is None:
            return vector, None
        return vector, await asyncio.to_thread(index.nearest, matrix, scope, vector, depth)

    async def _ranked(
        self,
        session: AsyncSession,
        scope: index.Scope,
        query: str,
        depth: int,
        mode: Mode,
        weights: tuple[float, float] | None,
    ) -> dict[int, float]:
        # Embedding (and on SQLite the vector scan) runs in threads while the keyword search
        # runs in the database.
        vector_part = (
            asyncio.ensure_future(self._vector_in_memory(scope, query, depth))
            if mode != "keyword"
            else None
        )
        embedding_weight, text_weight = weights or (1.0, 1.0)
        lists: list[tuple[float, list[tuple[int, float]]]] = []
        try:
            if mode != "vector":
                terms = index.keywords(query)
                keyword = await index.keyword_candidates(
                    session, scope, terms, depth, self.term_stats
                )
                lists.append((text_weight, keyword))
            if vector_part is not None:
                vector, nearest = await vector_part
                if nearest is None:
                    nearest = await index.vector_candidates(
                        session, self.matrices, scope, vector, depth
                    )
                lists.append((embedding_weight, nearest))
        finally:
            if vector_part is not None and not vector_part.done():
                vector_part.cancel()
        return _fuse(lists, by_score=weights is not None)

    async def _ranked_postgres(
        self,
        session: AsyncSession,
        scope: index.Scope,
        query: str,
        depth: int,
        mode: Mode,
        weights: tuple[float, float] | None,
    ) -> dict[int, float]:
        """PostgreSQL: the vector search runs on a second connection beside the keyword one."""
        vector_part = (
            asyncio.ensure_future(self._pg_vector(session, scope, query, depth))
            if mode != "keyword"
            else None
        )
        embedding_weight, text_weight = weights or (1.0, 1.0)
        lists: list[tuple[float, list[tuple[int, float]]]] = []
        try:
            if mode != "vector":
                terms = index.keywords(query)
                keyword = await index.keyword_candidates(
                    session, scope, terms, depth, self.term_stats
                )
                lists.append((text_weight, keyword))
            if vector_part is not None:
                lists.append((embedding_weight, await vector_part))
        finally:
            if vector_part is not None and not vector_part.done():
                vector_part.cancel()
        return _fuse(lists, by_score=weights is not None)

    async def _pg_vector(
        self, session: AsyncSession, scope: index.Scope, query: str, depth: int
    ) -> list[tuple[int, float]]:
        vector = await self.embed_query(query)
        async with AsyncSession(session.bind) as other:
            return await index.vector_candidates(other, self.matrices, scope, vector, depth)

    async def search(
        self,
        session: AsyncSession,
        stores: Sequence[VectorStore],
        queries: Sequence[str],
        *,
        max_results: int,
        score_threshold: float = 0.0,
        filters: dict[str, Any] | None = None,
        mode: Mode = "hybrid",
        weights: tuple[float, float] | None = None,
    ) -> list[Hit]:
        """The best chunks for `queries`; `weights` (embedding, text) steer the hybrid fusion
        (a zero weight leaves that search out)."""
        depth = max(40, 3 * max_results)
        embedding_weight, text_weight = weights or (1.0, 1.0)
        if mode == "hybrid" and embedding_weight == 0:
            mode = "keyword"
        elif mode == "hybrid" and text_weight == 0:
            mode = "vector"
        scores: dict[int, float] = {}
        for store in stores:
            scope = await self._scope(session, store, filters)
            if scope is None:
                continue
            for query in queries:
                if not query.strip():
                    continue
                ranked_by = self._ranked_postgres if is_postgres(session) else self._ranked
                ranked_here = await ranked_by(session, scope, query, depth, mode, weights)
                for chunk_id, score in ranked_here.items():
                    scores[chunk_id] = max(score, scores.get(chunk_id, 0.0))
        ranked = sorted(
            ((chunk_id, score) for chunk_id, score in scores.items() if score >= score_threshold),
            key=lambda item: (-item[1], item[0]),
        )[:max_results]
        rows = await index.chunk_rows(session, [chunk_id for chunk_id, _ in ranked])
        hits: list[Hit] = []
        for chunk_id, score in ranked:
            row = rows.get(chunk_id)
            if row is None:
                continue
            hits.append(
                Hit(
                    store_id=row.store_id,
                    file_id=row.file_id,
                    filename=row.filename,
                    chunk_id=chunk_id,
                    text=row.text,
                    score=round(min(score, 1.0), 6),
                    attributes=row.attributes,
                )
            )
        return hits
