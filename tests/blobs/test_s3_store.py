"""The S3 blob store against a real S3 server (SeaweedFS), and the local store beside it:
both keep the `BlobStore` protocol the same way."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
import tracemalloc
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from assistantd.blobs.s3 import MIN_PART, S3BlobStore
from assistantd.blobs.store import BlobStore, BlobTooLarge, LocalBlobStore
from tests.support.seaweed import SeaweedS3

pytestmark = pytest.mark.asyncio(loop_scope="module")

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def bucket(seaweed: SeaweedS3) -> str:
    return seaweed.create_bucket(f"store-{os.urandom(4).hex()}")


def s3_store(seaweed: SeaweedS3, bucket: str, prefix: str = "unit/") -> S3BlobStore:
    return S3BlobStore(
        bucket,
        prefix,
        endpoint_url=seaweed.endpoint_url,
        region="us-east-1",
        part_size=MIN_PART,
        credentials=(seaweed.access_key, seaweed.secret_key),
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["s3", "local"])
async def store(
    request: pytest.FixtureRequest,
    seaweed: SeaweedS3,
    bucket: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[BlobStore]:
    made: BlobStore
    if request.param == "s3":
        made = s3_store(seaweed, bucket)
    else:
        made = LocalBlobStore(tmp_path_factory.mktemp("blobs"))
    yield made
    await made.aclose()


async def stored(store: BlobStore, key: str) -> bytes:
    return b"".join([chunk async for chunk in store.read(key)])


async def write(store: BlobStore, data: bytes, *, chunk: int = 64 * 1024) -> str:
    writer = await store.writer(store.new_key(), max_size=len(data))
    for start in range(0, len(data), chunk):
        await writer.write(data[start : start + chunk])
    await writer.commit()
    return writer.key


async def test_write_commit_read(store: BlobStore) -> None:
    key = await write(store, b"hello blob")
    assert await stored(store, key) == b"hello blob"
    assert await store.read_all(key) == b"hello blob"
    empty = await write(store, b"")
    assert await store.read_all(empty) == b""


async def test_put_and_chunked_read(store: BlobStore) -> None:
    key = store.new_key()
    await store.put(key, b"0123456789")
    chunks = [chunk async for chunk in store.read(key, chunk_size=4)]
    assert b"".join(chunks) == b"0123456789"
    assert max(map(len, chunks)) <= 4


async def test_missing_key_is_file_not_found(store: BlobStore) -> None:
    with pytest.raises(FileNotFoundError):
        await anext(store.read(store.new_key()))
    with pytest.raises(FileNotFoundError):
        await store.read_all(store.new_key())


async def test_abort_leaves_nothing(store: BlobStore, seaweed: SeaweedS3, bucket: str) -> None:
    writer = await store.writer(store.new_key(), max_size=64 * MiB)
    await writer.write(os.urandom(6 * MiB))  # past one part: a multipart upload has begun
    await writer.abort()
    with pytest.raises(FileNotFoundError):
        await store.read_all(writer.key)
    if isinstance(store, S3BlobStore):
        assert store.name(writer.key) not in seaweed.pending_uploads(bucket, store.prefix)


async def test_too_large_is_refused_and_leaves_nothing(store: BlobStore) -> None:
    writer = await store.writer(store.new_key(), max_size=6 * MiB)
    await writer.write(os.urandom(5 * MiB + 1))
    with pytest.raises(BlobTooLarge):
        await writer.write(os.urandom(MiB))
    await writer.abort()
    with pytest.raises(FileNotFoundError):
        await store.read_all(writer.key)


async def test_delete(store: BlobStore) -> None:
    key = await write(store, b"doomed")
    await store.delete(key)
    with pytest.raises(FileNotFoundError):
        await store.read_all(key)
    await store.delete(key)  # deleting what is gone is fine
    with pytest.raises(ValueError, match="bad blob key"):
        await store.delete("../escape")


class TestConcat:
    async def test_large_parts_join(self, store: BlobStore) -> None:
        """Parts of at least 5 MiB (all but the last): S3 joins them on the server."""
        parts = [os.urandom(5 * MiB), os.urandom(5 * MiB + 17), b"tail"]
        keys = [await write(store, part) for part in parts]
        key = store.new_key()
        assert await store.concat(key, keys) == sum(map(len, parts))
        assert await store.read_all(key) == b"".join(parts)
        for part_key, part in zip(keys, parts, strict=True):  # the parts are left as they were
            assert await store.read_all(part_key) == part

    async def test_small_parts_join(self, store: BlobStore) -> None:
        parts = [b"ab", b"", b"cd", os.urandom(MiB)]
        keys = [await write(store, part) for part in parts]
        key = store.new_key()
        assert await store.concat(key, keys) == sum(map(len, parts))
        assert await store.read_all(key) == b"".join(parts)

    async def test_one_part_and_none(self, store: BlobStore) -> None:
        only = await write(store, b"only")
        key = store.new_key()
        assert await store.concat(key, [only]) == 4
        assert await store.read_all(key) == b"only"
        empty = store.new_key()
        assert await store.concat(empty, []) == 0
        assert await store.read_all(empty) == b""

    async def test_digest_sees_every_byte(self, store: BlobStore) -> None:
        parts = [os.urandom(5 * MiB), b"xyz"]
        keys = [await write(store, part) for part in parts]
        digest = hashlib.md5(usedforsecurity=False)
        key = store.new_key()
        assert await store.concat(key, keys, digest=digest) == 5 * MiB + 3
        assert digest.hexdigest() == hashlib.md5(b"".join(parts)).hexdigest()

    async def test_missing_part_is_file_not_found(self, store: BlobStore) -> None:
        present = await write(store, b"here")
        key = store.new_key()
        with pytest.raises(FileNotFoundError):
            await store.concat(key, [present, store.new_key()])
        with pytest.raises(FileNotFoundError):
            await store.read_all(key)


async def test_large_file_streams_with_bounded_memory(seaweed: SeaweedS3, bucket: str) -> None:
    """40 MiB in 64 KiB writes, then read back: at most a couple of 5 MiB parts in memory."""
    store = s3_store(seaweed, bucket, "big/")
    size, piece = 40 * MiB, 64 * 1024
    block = os.urandom(piece)
    expected = hashlib.sha256()
    try:
        await store.put(store.new_key(), b"warm-up")  # the client and botocore's S3 model
        tracemalloc.start()
        writer = await store.writer(store.new_key(), max_size=size)
        for index in range(size // piece):
            data = block[index % 7 :] + block[: index % 7]
            expected.update(data)
            await writer.write(data)
        await writer.commit()
        _, write_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        got = hashlib.sha256()
        total = 0
        async for chunk in store.read(writer.key):
            got.update(chunk)
            total += len(chunk)
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        await store.aclose()
    assert total == size
    assert got.hexdigest() == expected.hexdigest()
    assert write_peak < 3 * MIN_PART, f"writing held {write_peak / MiB:.1f} MiB"
    assert read_peak < 3 * MIN_PART, f"reading held {read_peak / MiB:.1f} MiB"
    assert len(seaweed.keys(bucket, "big/")) == 2


async def test_stale_keys_and_abandoned_writes(seaweed: SeaweedS3, bucket: str) -> None:
    store = s3_store(seaweed, bucket, "stale/")
    try:
        old = await write(store, b"old")
        seaweed.client().put_object(Bucket=bucket, Key="stale/not-ours.txt", Body=b"x")
        abandoned = await store.writer(store.new_key(), max_size=64 * MiB)
        await abandoned.write(os.urandom(6 * MiB))  # begun, never committed (a dead process)
        await asyncio.sleep(2.5)  # S3 dates are whole seconds: a cutoff 1.5 s back splits the two
        fresh = await write(store, b"fresh")
        cutoff = time.time() - 1.5
        listed = [key async for page in store.stale_keys(older_than=cutoff) for key in page]
        assert old in listed
        assert fresh not in listed
        assert all(len(key) == 32 for key in listed)  # never someone else's object
        assert await store.drop_abandoned(older_than=time.time() - 3600) == 0
        assert await store.drop_abandoned(older_than=time.time() + 1) == 1
        assert seaweed.pending_uploads(bucket, "stale/") == []
    finally:
        await store.aclose()


async def test_check_names_what_is_wrong(seaweed: SeaweedS3, bucket: str) -> None:
    good = s3_store(seaweed, bucket)
    missing = S3BlobStore(
        "no-such-bucket-here",
        endpoint_url=seaweed.endpoint_url,
        credentials=(seaweed.access_key, seaweed.secret_key),
    )
    wrong_key = S3BlobStore(bucket, endpoint_url=seaweed.endpoint_url, credentials=("AKX", "nope"))
    try:
        await good.check()
        with pytest.raises(OSError, match="no bucket 'no-such-bucket-here'"):
            await missing.check()
        with pytest.raises(OSError, match=f"bucket '{bucket}' refused access"):
            await wrong_key.check()
    finally:
        for store in (good, missing, wrong_key):
            await store.aclose()
