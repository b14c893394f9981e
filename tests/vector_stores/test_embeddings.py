"""The OpenAI-compatible `/embeddings` backend, against httpx's MockTransport."""

from __future__ import annotations

import asyncio
import json

import httpx
import numpy as np
import pytest

from assistantd.settings import Settings
from assistantd.vector_stores.embeddings import ChunkText, EmbeddingError, make_embedder


def _backend(requests: list[dict[str, object]], status: int = 200) -> httpx.AsyncClient:
    def handle(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        requests.append(
            {"url": str(request.url), "auth": request.headers.get("authorization"), **body}
        )
        if status != 200:
            return httpx.Response(status, json={"error": {"message": "down"}})
        data = [
            {"object": "embedding", "index": i, "embedding": [float(len(text)), 0.0, 3.0]}
            for i, text in enumerate(body["input"])
        ]
        return httpx.Response(200, json={"object": "list", "data": list(reversed(data))})

    return httpx.AsyncClient(transport=httpx.MockTransport(handle))


def test_remote_embedder_batches_orders_and_normalises() -> None:
    requests: list[dict[str, object]] = []
    settings = Settings(
        embedding_base_url="http://embed.test/v1/",
        embedding_api_key="sk-embed",
        embedding_model="my-embedder",
        embedding_batch_size=2,
    )

    async def run() -> tuple[np.ndarray, np.ndarray]:
        async with _backend(requests) as http:
            embedder = make_embedder(settings, http)
            assert embedder.model == "my-embedder"
            chunks = [ChunkText(text="a" * n, ids=[]) for n in (4, 0, 8)]
            return await embedder.embed_chunks(chunks), await embedder.embed_query("abcd")

    vectors, query = asyncio.run(run())
    assert [r["input"] for r in requests] == [["aaaa", ""], ["aaaaaaaa"], ["abcd"]]
    assert requests[0]["url"] == "http://embed.test/v1/embeddings"
    assert requests[0]["auth"] == "Bearer sk-embed"
    assert requests[0]["model"] == "my-embedder"
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    assert np.allclose(vectors[0], [0.8, 0.0, 0.6])
    assert np.allclose(vectors[1], [0.0, 0.0, 1.0])
    assert np.allclose(query, vectors[0])


def test_remote_embedder_failure_is_an_embedding_error() -> None:
    settings = Settings(embedding_base_url="http://embed.test/v1")

    async def run() -> None:
        async with _backend([], status=503) as http:
            await make_embedder(settings, http).embed_query("x")

    with pytest.raises(EmbeddingError, match="embeddings backend failed"):
        asyncio.run(run())
