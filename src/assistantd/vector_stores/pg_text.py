"""PostgreSQL keyword search that stays fast on large stores.

An OR of the query's terms over a GIN index is cheap to match but expensive to rank when a term
is common: every chunk containing it is scored. So the candidates come from the selective terms
only (PostgreSQL's own statistics say how common each lexeme is: `pg_stats.most_common_elems`,
kept by ANALYZE/autovacuum); common terms still count in the ranking. When every term is common,
the candidates are the first chunks found containing all of them.
Ranking: how many distinct query terms a chunk contains first (PostgreSQL's rank functions know
nothing of rarity), then `ts_rank_cd`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

if TYPE_CHECKING:
    from assistantd.vector_stores.index import Scope

SELECTIVE = 0.002  # a lexeme in more than 0.2% of chunks does not pick candidates
SAMPLE = 500  # chunks ranked when every term is common
CANDIDATES = 5000  # chunks ranked at most otherwise
STATS_TTL = 300.0


class TermStats:
    """Lexeme frequencies of the chunk index, from the planner's statistics (per process)."""

    def __init__(self) -> None:
        self._freqs: dict[str, float] = {}
        self._loaded = -STATS_TTL
        self._lock = asyncio.Lock()
        self._chunks = 0
        self._counted = -STATS_TTL

    async def chunk_count(self, session: AsyncSession) -> int:
        """SQLite: chunks in the index (for document frequencies), refreshed every minute."""
        if time.monotonic() - self._counted >= 60:
            count = await session.scalar(text("SELECT count(*) FROM vector_store_chunks"))
            self._chunks, self._counted = int(count or 0), time.monotonic()
        return self._chunks

    async def frequencies(self, session: AsyncSession) -> dict[str, float]:
        if time.monotonic() - self._loaded < STATS_TTL:
            return self._freqs
        async with self._lock:
            if time.monotonic() - self._loaded >= STATS_TTL:
                row = (
                    await session.execute(
                        text(
                            "SELECT most_common_elems::text::text[], most_common_elem_freqs "
                            "FROM pg_stats WHERE tablename = 'vector_store_chunks' "
                            "AND attname = 'tsv'"
                        )
                    )
                ).first()
                self._freqs = dict(zip(row[0], row[1], strict=False)) if row and row[0] else {}
                self._loaded = time.monotonic()
        return self._freqs


async def keyword_candidates(
    session: AsyncSession,
    scope: Scope,
    terms: Sequence[str],
    limit: int,
    stats: TermStats,
    visibility: str,
) -> list[tuple[int, float]]:
    freqs = await stats.frequencies(session)
    # Each term's lexemes and tsquery, parsed once here (not once per row below).
    stems = await session.execute(
        text(
            "SELECT t, ARRAY(SELECT lexeme FROM unnest(to_tsvector('english', "
            "translate(t, '-', ' ')))), plainto_tsquery('english', translate(t, '-', ' '))::text "
            "FROM unnest(CAST(:terms AS text[])) AS t"
        ),
        {"terms": list(terms)},
    )
    lexemes: dict[str, list[str]] = {}
    queries: dict[str, str] = {}
    for term, found, parsed in stems:
        lexemes[term], queries[term] = list(found), parsed
    usable = [term for term in terms if lexemes.get(term)]  # stop words have none
    if not usable:
        return []
    # A lexeme missing from the statistics is rarer than the rarest listed one (the planner's
    # own assumption is half of that).
    floor = min(freqs.values()) / 2 if freqs else 0.0
    selective = [t for t in usable if all(freqs.get(x, floor) < SELECTIVE for x in lexemes[t])]
    params: dict[str, object] = {
        "store": scope.store_id,
        "n": limit,
        "all": " | ".join(f"({queries[t]})" for t in usable),
    }
    coverage = []
    for number, term in enumerate(usable):
        params[f"t{number}"] = queries[term]
        coverage.append(f"(c.tsv @@ CAST(:t{number} AS tsquery))::int")
    where = visibility
    if scope.allowed is not None:
        params["allowed"] = sorted(scope.allowed)
        where += " AND c.file_id = ANY(:allowed)"
    picked = selective or usable
    params["match"] = (" | " if selective else " & ").join(f"({queries[t]})" for t in picked)
    # Only the first matches found are ranked: all of them for selective terms, a sample when
    # every term is common (ranking tens of thousands of chunks would take seconds).
    params["cap"] = CANDIDATES if selective else SAMPLE
    rows = await session.execute(
        text(
            f"SELECT c.id, {' + '.join(coverage)} AS coverage, "
            "ts_rank_cd(c.tsv, CAST(:all AS tsquery)) AS rank FROM ("
            "SELECT c.id, c.tsv FROM vector_store_chunks AS c "
            "WHERE c.vector_store_id = :store AND c.tsv @@ CAST(:match AS tsquery)"
            f"{where} LIMIT :cap) AS c ORDER BY coverage DESC, rank DESC LIMIT :n"
        ),
        params,
    )
    return [(int(row[0]), float(row[1]) + float(row[2])) for row in rows]
