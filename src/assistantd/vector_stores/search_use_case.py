"""`POST /vector_stores/{id}/search`: read in a read transaction, so searching never holds
SQLite's write lock (ingestion keeps writing meanwhile); the store's `last_active_at` is moved
afterwards, in a short write, at most once a minute."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assistantd.errors import InvalidRequestError
from assistantd.kit.timeutil import now
from assistantd.vector_stores import repository, service
from assistantd.vector_stores.schemas import (
    SearchRequest,
    SearchResult,
    SearchResultContent,
    SearchResultsPage,
)
from assistantd.vector_stores.search import Retrieval, rewrite

TOUCH_EVERY = 60


async def search_store(
    read_sessions: async_sessionmaker[AsyncSession],
    write_sessions: async_sessionmaker[AsyncSession],
    retrieval: Retrieval,
    project: str,
    store_id: str,
    body: SearchRequest,
) -> SearchResultsPage:
    queries = [body.query] if isinstance(body.query, str) else list(body.query)
    if body.rewrite_query:
        queries = [rewrite(query) for query in queries]
    threshold = body.ranking_options.score_threshold if body.ranking_options else 0.0
    async with read_sessions() as session:
        store = await service.require(session, project, store_id)
        if service.is_expired(store):
            raise InvalidRequestError(
                f"Vector store {store_id} has expired and can no longer be searched.",
                param="vector_store_id",
            )
        hits = await retrieval.search(
            session,
            [store],
            queries,
            max_results=body.max_num_results,
            score_threshold=threshold,
            filters=body.filters.model_dump() if body.filters is not None else None,
        )
    if now() - store.last_active_at >= TOUCH_EVERY:
        async with write_sessions() as session:
            await repository.touch(session, [store.id])
            await session.commit()
    return SearchResultsPage(
        search_query=queries,
        data=[
            SearchResult(
                file_id=hit.file_id,
                filename=hit.filename,
                score=hit.score,
                attributes=hit.attributes,
                content=[SearchResultContent(text=hit.text)],
            )
            for hit in hits
        ],
    )
