"""The ingestion worker: claims attached files, parses, chunks, embeds and indexes them.

Runs beside the run worker (in `serve` on SQLite, in every `assistantd worker`). A file waiting
for ingestion is a `vector_store_files` row `in_progress` with no live lease; claiming it
(`FOR UPDATE SKIP LOCKED` on PostgreSQL) gives it a fresh token and a lease that a heartbeat
renews. Chunks are written under that token as they are embedded, so memory stays flat however
large the file. Only the token holder may end the file (a guarded update): if the file was
cancelled, detached or re-attached meanwhile, the worker deletes the chunks it wrote and stops.
A worker that dies leaves its lease to run out; the next claim deletes the old attempt's chunks
and starts again, up to `ingest_max_attempts`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import secrets
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import IO, Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assistantd.blobs.store import BlobStore
from assistantd.db.models import File
from assistantd.runs.signals import after_commit
from assistantd.settings import Settings
from assistantd.vector_stores import index, repository
from assistantd.vector_stores.chunking import Chunk, Chunker
from assistantd.vector_stores.embeddings import (
    EmbeddingCancelled,
    EmbeddingError,
    LocalEmbedder,
    Vectors,
)
from assistantd.vector_stores.parse_sandbox import ParserLimits, sandboxed_segments
from assistantd.vector_stores.parsing import ParseError
from assistantd.vector_stores.search import Retrieval

log = logging.getLogger(__name__)

BATCH_CHUNKS = 8
_DONE = object()
_STOPPED = object()


class _Lost(Exception):
    """The claim is gone (cancelled, detached, re-attached or taken over)."""


class IngestWorker:
    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        blobs: BlobStore,
        retrieval: Retrieval,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.blobs = blobs
        self.retrieval = retrieval
        self.id = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self._skip_locked = not settings.is_sqlite
        self._active: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._loop: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._indexed_dims: set[int] = set()  # PostgreSQL HNSW indexes known to exist
        self._limits = ParserLimits(
            memory_mb=settings.ingest_parser_memory_mb,
            timeout_seconds=settings.ingest_parser_timeout_seconds,
            max_unpacked_mb=settings.ingest_max_unpacked_mb,
        )

    def start(self) -> None:
        self._loop = asyncio.create_task(self._claim_loop(), name="ingest-claim")

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        """Stop claiming and abandon files in flight (their leases run out; others retry)."""
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
        for task in list(self._active.values()):
            task.cancel()
        if self._active:
            await asyncio.wait(list(self._active.values()), timeout=10)

    async def _claim_loop(self) -> None:
        settings = self.settings
        while True:
            self._wake.clear()
            capacity = settings.ingest_concurrency - len(self._active)
            claimed: list[tuple[str, str, str]] = []
            if capacity > 0:
                try:
                    async with self.sessions() as session:
                        claimed = await repository.claim_files(
                            session,
                            self.id,
                            capacity,
                            settings.ingest_lease_seconds,
                            skip_locked=self._skip_locked,
                        )
                        await session.commit()
                except Exception:
                    log.exception("claiming files to ingest failed")
                    await asyncio.sleep(1.0)
                    continue
            for store_id, file_id, token in claimed:
                task = asyncio.create_task(
                    self._run(store_id, file_id, token), name=f"ingest-{file_id}"
                )
                self._active[(store_id, file_id)] = task
            if claimed:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), settings.ingest_poll_seconds)

    async def _run(self, store_id: str, file_id: str, token: str) -> None:
        try:
            await self.ingest(store_id, file_id, token)
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("ingesting %s into %s crashed", file_id, store_id)
            with contextlib.suppress(Exception):
                await self._end(
                    store_id,
                    file_id,
                    token,
                    "failed",
                    error=("server_error", "The server had an error while processing the file."),
                )
        finally:
            self._active.pop((store_id, file_id), None)
            self._wake.set()

    # --- one file ----------------------------------------------------------------------------

    async def ingest(self, store_id: str, file_id: str, token: str) -> None:
        async with self.sessions() as session:
            row = await repository.get_file(session, store_id, file_id)
            if row is None or row.lease_owner != token:
                return
            file = await session.get(File, file_id)
            attempts, strategy = row.attempts, row.chunking_strategy
            # A previous attempt's chunks (its worker died) go before this one writes any.
            await index.delete_chunks(session, store_id, file_id, owner=token, keep=True)
            await session.commit()
        if file is None:
            await self._end(store_id, file_id, token, "failed", error=("invalid_file", "Gone."))
            return
        if attempts > self.settings.ingest_max_attempts:
            message = f"Processing the file stopped {attempts - 1} time(s); giving up."
            await self._end(store_id, file_id, token, "failed", error=("server_error", message))
            return
        static = strategy["static"]
        stop = threading.Event()
        heartbeat = asyncio.create_task(self._heartbeat(store_id, file_id, token, stop))
        try:
            usage, count = await self._pipeline(
                store_id,
                file_id,
                token,
                file,
                static["max_chunk_size_tokens"],
                static["chunk_overlap_tokens"],
                stop,
            )
        except ParseError as exc:
            await self._end(store_id, file_id, token, "failed", error=(exc.code, exc.message))
            return
        except EmbeddingError as exc:
            await self._end(store_id, file_id, token, "failed", error=("server_error", str(exc)))
            return
        except _Lost:
            await self._discard(store_id, file_id, token)
            return
        finally:
            heartbeat.cancel()
        if count == 0:
            error = ("invalid_file", "No text could be extracted from the file.")
            await self._end(store_id, file_id, token, "failed", error=error)
            return
        await self._end(
            store_id,
            file_id,
            token,
            "completed",
            usage_bytes=usage,
            chunk_count=count,
            embedding_model=self.retrieval.embedder.model,
        )

    async def _heartbeat(
        self, store_id: str, file_id: str, token: str, stop: threading.Event
    ) -> None:
        """Renew the lease, and notice soon when the file is cancelled or detached: then `stop`
        is set, which interrupts the ingestion thread between model calls."""
        lease = self.settings.ingest_lease_seconds
        renewed = time.monotonic()
        while not stop.is_set():
            await asyncio.sleep(min(1.0, lease / 3))
            async with self.sessions() as session:
                if time.monotonic() - renewed >= lease / 3:
                    held = await repository.renew_lease(session, store_id, file_id, token, lease)
                    renewed = time.monotonic()
                else:
                    held = await repository.holds(session, store_id, file_id, token)
                await session.commit()
            if not held:
                stop.set()

    async def _pipeline(
        self,
        store_id: str,
        file_id: str,
        token: str,
        file: File,
        max_tokens: int,
        overlap: int,
        stop: threading.Event,
    ) -> tuple[int, int]:
        """Parse, chunk and (locally) embed in a thread; write batches here as they come."""
        embedder = self.retrieval.embedder
        local = embedder if isinstance(embedder, LocalEmbedder) else None
        tokenizer = local.tokenizer if local else _tokenizer()
        batches: queue.Queue[Any] = queue.Queue(maxsize=2)
        spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115
        try:
            async for data in self.blobs.read(file.blob_key):
                spool.write(data)
            spool.seek(0)
            producer = threading.Thread(
                target=_produce,
                args=(
                    spool,
                    file,
                    self._limits,
                    tokenizer,
                    max_tokens,
                    overlap,
                    local,
                    batches,
                    stop,
                ),
                daemon=True,
                name=f"ingest-{file_id}",
            )
            producer.start()
            usage = count = 0
            while True:
                item = await asyncio.to_thread(_take, batches, stop)
                if item is _STOPPED:
                    raise _Lost()
                if item is _DONE:
                    break
                if isinstance(item, BaseException):
                    raise item
                chunks, vectors = item
                if vectors is None:
                    vectors = await embedder.embed_chunks(chunks)
                async with self.sessions() as session:
                    # Checked with every batch: a cancelled or detached file stops at once.
                    held = not stop.is_set() and await repository.renew_lease(
                        session, store_id, file_id, token, self.settings.ingest_lease_seconds
                    )
                    if not held:
                        raise _Lost()
                    dims = int(vectors.shape[1])
                    if dims not in self._indexed_dims:
                        await index.ensure_vector_index(session, dims)
                        self._indexed_dims.add(dims)
                    await index.add_chunks(session, store_id, file_id, token, chunks, vectors)
                    await session.commit()
                count += len(chunks)
                usage += sum(len(c.text.encode()) for c in chunks)
            return usage, count
        finally:
            stop.set()
            with contextlib.suppress(queue.Empty):
                while True:
                    batches.get_nowait()
            spool.close()

    async def _end(
        self, store_id: str, file_id: str, token: str, status: str, **values: Any
    ) -> None:
        error = values.pop("error", None)
        if error is not None:
            values["last_error"] = {"code": error[0], "message": error[1]}
        async with self.sessions() as session:
            if status != "completed":
                await index.delete_chunks(session, store_id, file_id, owner=token, keep=False)
            ended = await repository.finish_file(
                session, store_id, file_id, token, status=status, **values
            )
            if ended:
                await repository.bump_generation(session, [store_id])
            await session.commit()
        if not ended:
            await self._discard(store_id, file_id, token)

    async def _discard(self, store_id: str, file_id: str, token: str) -> None:
        async with self.sessions() as session:
            await index.delete_chunks(session, store_id, file_id, owner=token, keep=False)
            await session.commit()


def _tokenizer() -> Any:
    from assistantd.vector_stores.embeddings import load_tokenizer

    return load_tokenizer()


def _take(batches: queue.Queue[Any], stop: threading.Event) -> Any:
    """The next batch, or `_STOPPED` once `stop` is set and nothing is left."""
    while True:
        try:
            return batches.get(timeout=0.2)
        except queue.Empty:
            if stop.is_set():
                return _STOPPED


def _put(batches: queue.Queue[Any], item: Any, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            batches.put(item, timeout=0.2)
            return True
        except queue.Full:
            continue
    return False


def _batches(
    fh: IO[bytes],
    file: File,
    limits: ParserLimits,
    tokenizer: Any,
    max_tokens: int,
    overlap: int,
) -> Iterator[list[Chunk]]:
    chunker = Chunker(tokenizer, max_tokens, overlap)
    pending: list[Chunk] = []
    for segment in sandboxed_segments(fh, file.filename, file.content_type, limits):
        for chunk in chunker.feed(segment.replace("\x00", "")):
            pending.append(chunk)
            if len(pending) >= BATCH_CHUNKS:
                yield pending
                pending = []
    pending.extend(chunker.finish())
    if pending:
        yield pending


def _produce(
    fh: IO[bytes],
    file: File,
    limits: ParserLimits,
    tokenizer: Any,
    max_tokens: int,
    overlap: int,
    local: LocalEmbedder | None,
    batches: queue.Queue[Any],
    stop: threading.Event,
) -> None:
    """The ingestion thread: chunk batches (embedded here when the embedder is local)."""
    try:
        for chunks in _batches(fh, file, limits, tokenizer, max_tokens, overlap):
            if stop.is_set():
                return
            vectors: Vectors | None = (
                local.embed_ids([c.ids for c in chunks], stop.is_set) if local else None
            )
            if not _put(batches, (chunks, vectors), stop):
                return
        _put(batches, _DONE, stop)
    except EmbeddingCancelled:
        return
    except BaseException as exc:  # handed to the event loop, which raises it there
        _put(batches, exc, stop)


def wake_after_commit(session: AsyncSession, worker: IngestWorker | None) -> None:
    """Wake this process's ingestion worker once the attaching transaction commits (other
    processes' workers poll every `ingest_poll_seconds`)."""
    if worker is not None:
        after_commit(session, worker.wake)
