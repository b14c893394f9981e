"""The local blob store's whole-blob `put`: the bytes land under the key, and a write that fails
leaves no partial file behind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from assistantd.blobs.store import LocalBlobStore


async def read_all(store: LocalBlobStore, key: str) -> bytes:
    return b"".join([chunk async for chunk in store.read(key)])


async def test_put_then_read(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    key = store.new_key()
    await store.put(key, b"\x89PNG" + bytes(range(256)) * 100)
    assert await read_all(store, key) == b"\x89PNG" + bytes(range(256)) * 100
    await store.put(key, b"again")  # replaced whole
    assert await read_all(store, key) == b"again"


async def test_a_failed_put_leaves_nothing(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    key = store.new_key()
    not_bytes: Any = ["not", "bytes"]
    with pytest.raises(TypeError):
        await store.put(key, not_bytes)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
