"""The blob-store interface and its local-directory implementation (S3: `blobs.s3`).

Writes go to a temporary name and are renamed into place, so a crash never leaves a half blob
under a real key. All file I/O runs in a worker thread to keep the event loop free; writers
gather small writes into `CHUNK`-sized ones so a stream of 64 KiB network reads does not cost a
thread hop each.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from pathlib import Path
from typing import BinaryIO, Protocol

import anyio

CHUNK = 1024 * 1024
LIST_PAGE = 1000
KEY = re.compile(r"[0-9a-f]{32}")
"""What `new_key` makes: the sweep of orphaned blobs touches nothing else in a store."""


class BlobTooLarge(Exception):
    """The stream went past the allowed size; nothing was stored."""


class Digest(Protocol):
    """A running hash (`hashlib.md5()`, say)."""

    def update(self, data: bytes, /) -> None: ...


class BlobWriter(Protocol):
    key: str
    size: int

    async def write(self, data: bytes) -> None: ...
    async def commit(self) -> None: ...
    async def abort(self) -> None: ...


class BlobStore(Protocol):
    def new_key(self) -> str: ...
    async def writer(self, key: str, *, max_size: int) -> BlobWriter: ...
    async def put(self, key: str, data: bytes) -> None: ...
    def read(self, key: str, *, chunk_size: int = CHUNK) -> AsyncGenerator[bytes, None]: ...
    async def read_all(self, key: str) -> bytes: ...
    async def delete(self, key: str) -> None: ...
    async def concat(
        self, key: str, parts: Sequence[str], *, digest: Digest | None = None
    ) -> int: ...
    def stale_keys(self, *, older_than: float) -> AsyncIterator[list[str]]:
        """Pages of the stored keys last written before `older_than` (Unix seconds)."""
        ...

    async def drop_abandoned(self, *, older_than: float) -> int:
        """Remove writes begun before `older_than` and never committed; returns how many."""
        ...

    async def check(self) -> None:
        """Raise OSError saying why the store cannot be used (readiness, start-up log)."""
        ...

    async def aclose(self) -> None: ...


async def put_whole(writer: BlobWriter, data: bytes) -> None:
    """Write `data` through a new writer and commit it (abort on any failure)."""
    try:
        await writer.write(data)
        await writer.commit()
    except BaseException:
        await writer.abort()
        raise


def _part_of(path: Path) -> Path:
    """Where a blob is written before it is moved to `path` (the sweep of abandoned writes
    knows these names)."""
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")


def _sync(fh: BinaryIO) -> None:
    """Flush a written blob's file to the disk."""
    fh.flush()
    os.fsync(fh.fileno())


class _LocalWriter:
    def __init__(self, path: Path, key: str, max_size: int) -> None:
        self.key = key
        self.size = 0
        self._path = path
        self._tmp = _part_of(path)
        self._max = max_size
        self._fh: BinaryIO | None = None
        self._buffer = bytearray()

    async def _open(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = await anyio.to_thread.run_sync(open, self._tmp, "wb")

    async def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self._max:
            raise BlobTooLarge(self.size)
        self._buffer += data
        if len(self._buffer) >= CHUNK:
            await self._flush()

    async def _flush(self) -> None:
        assert self._fh is not None
        data, self._buffer = bytes(self._buffer), bytearray()
        await anyio.to_thread.run_sync(self._fh.write, data)

    async def commit(self) -> None:
        if self._buffer:
            await self._flush()
        assert self._fh is not None
        fh, self._fh = self._fh, None

        def _finish() -> None:
            with fh:
                _sync(fh)
            os.replace(self._tmp, self._path)

        await anyio.to_thread.run_sync(_finish)

    async def abort(self) -> None:
        fh, self._fh = self._fh, None
        self._buffer = bytearray()

        def _drop() -> None:
            if fh is not None:
                fh.close()
            self._tmp.unlink(missing_ok=True)

        await anyio.to_thread.run_sync(_drop)


class LocalBlobStore:
    """Blobs as files under one directory, fanned out by key prefix."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def new_key(self) -> str:
        return secrets.token_hex(16)

    def _path(self, key: str) -> Path:
        if not key or "/" in key or key.startswith("."):
            raise ValueError(f"bad blob key {key!r}")
        return self.root / key[:2] / key

    async def writer(self, key: str, *, max_size: int) -> BlobWriter:
        writer = _LocalWriter(self._path(key), key, max_size)
        await writer._open()
        return writer

    async def put(self, key: str, data: bytes) -> None:
        """`data` as the blob `key`, written, synced and moved in place in one thread hop (a
        writer takes three: a code interpreter's figure is stored on the run's path)."""
        path = self._path(key)
        tmp = _part_of(path)

        def _write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                with open(tmp, "wb") as fh:
                    fh.write(data)
                    _sync(fh)
                os.replace(tmp, path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise

        await anyio.to_thread.run_sync(_write)

    async def read(self, key: str, *, chunk_size: int = CHUNK) -> AsyncGenerator[bytes, None]:
        fh = await anyio.to_thread.run_sync(open, self._path(key), "rb")
        try:
            while chunk := await anyio.to_thread.run_sync(fh.read, chunk_size):
                yield chunk
        finally:
            fh.close()

    async def read_all(self, key: str) -> bytes:
        return await anyio.Path(self._path(key)).read_bytes()

    async def delete(self, key: str) -> None:
        await anyio.to_thread.run_sync(lambda: self._path(key).unlink(missing_ok=True))

    async def concat(self, key: str, parts: Sequence[str], *, digest: Digest | None = None) -> int:
        """Write the blobs `parts`, in order, as one new blob; returns its size.

        `digest`, if given, is fed every byte written (hashed off the event loop).
        """
        return await copy_streaming(self, key, parts, digest)

    async def stale_keys(self, *, older_than: float) -> AsyncIterator[list[str]]:
        for folder in await anyio.to_thread.run_sync(self._folders):
            page = await anyio.to_thread.run_sync(self._stale_in, folder, older_than)
            for start in range(0, len(page), LIST_PAGE):
                yield page[start : start + LIST_PAGE]

    def _folders(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    @staticmethod
    def _stale_in(folder: Path, older_than: float) -> list[str]:
        found = []
        with os.scandir(folder) as entries:
            for entry in entries:
                if not KEY.fullmatch(entry.name) or not entry.is_file(follow_symlinks=False):
                    continue
                try:
                    if entry.stat(follow_symlinks=False).st_mtime < older_than:
                        found.append(entry.name)
                except FileNotFoundError:
                    continue
        return found

    async def drop_abandoned(self, *, older_than: float) -> int:
        def _drop() -> int:
            dropped = 0
            for folder in self._folders():
                for path in folder.glob(".*.part"):
                    try:
                        if path.stat().st_mtime < older_than:
                            path.unlink()
                            dropped += 1
                    except FileNotFoundError:
                        continue
            return dropped

        return await anyio.to_thread.run_sync(_drop)

    def __str__(self) -> str:
        return str(self.root)

    async def check(self) -> None:
        def _check() -> None:
            self.root.mkdir(parents=True, exist_ok=True)
            if not os.access(self.root, os.W_OK | os.X_OK):
                raise PermissionError(f"{self.root} is not writable")

        await anyio.to_thread.run_sync(_check)

    async def aclose(self) -> None:
        return None


async def copy_streaming(
    store: BlobStore, key: str, parts: Sequence[str], digest: Digest | None
) -> int:
    """`concat` by reading every part through and writing it out again."""
    writer = await store.writer(key, max_size=2**63)
    try:
        for part in parts:
            async for chunk in store.read(part):
                if digest is not None:
                    await anyio.to_thread.run_sync(digest.update, chunk)
                await writer.write(chunk)
        await writer.commit()
    except BaseException:
        await writer.abort()
        raise
    return writer.size
