"""The sweep of orphaned blobs, on both stores and both databases: what a process that died
between writing a blob and committing its row (or committing a deletion and deleting the blob)
left behind goes once it is older than the grace age; referenced and young blobs stay."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assistantd.blobs.s3 import MIN_PART, S3BlobStore
from assistantd.blobs.store import BlobStore, LocalBlobStore
from assistantd.blobs.sweep import sweep_orphans
from assistantd.db.engine import make_engine, make_sessionmaker
from assistantd.db.migrate import upgrade
from assistantd.db.models import File, Upload, UploadPart
from assistantd.kit.ids import Prefix, new_id
from assistantd.settings import Settings
from tests.sandbox.conftest import fresh_database
from tests.support.seaweed import SeaweedS3

pytestmark = pytest.mark.asyncio(loop_scope="module")

GRACE = 1.5  # S3 dates are whole seconds: see the sleeps below


@pytest.fixture(scope="module")
def settings(database_url: str, work_dir: Path) -> Settings:
    made = Settings(
        database_url=fresh_database(database_url, work_dir), data_dir=work_dir / "sweep"
    )
    upgrade(made)
    return made


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sessions(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(settings)
    yield make_sessionmaker(engine, write=True)
    await engine.dispose()


@pytest_asyncio.fixture(loop_scope="module", params=["s3", "local"])
async def store(
    request: pytest.FixtureRequest, seaweed: SeaweedS3, tmp_path: Path
) -> AsyncIterator[BlobStore]:
    made: BlobStore
    if request.param == "s3":
        bucket = seaweed.create_bucket("sweep-tests")
        made = S3BlobStore(
            bucket,
            f"run-{os.urandom(4).hex()}/",
            endpoint_url=seaweed.endpoint_url,
            part_size=MIN_PART,
            credentials=(seaweed.access_key, seaweed.secret_key),
        )
    else:
        made = LocalBlobStore(tmp_path / "blobs")
    yield made
    await made.aclose()


async def add_rows(
    sessions: async_sessionmaker[AsyncSession], file_key: str, part_key: str
) -> None:
    file_id, upload_id, part_id = new_id(Prefix.FILE), new_id(Prefix.UPLOAD), new_id(Prefix.PART)
    common = {"project": "sweep", "created_at": int(time.time())}
    async with sessions() as session:
        session.add(
            File(
                id=file_id,
                **common,
                bytes=1,
                filename="kept.txt",
                purpose="assistants",
                status="processed",
                content_type="text/plain",
                blob_key=file_key,
            )
        )
        session.add(
            Upload(
                id=upload_id,
                **common,
                filename="big.bin",
                purpose="assistants",
                bytes=1,
                mime_type="application/octet-stream",
                status="pending",
                expires_at=int(time.time()) + 3600,
            )
        )
        await session.flush()
        session.add(
            UploadPart(id=part_id, **common, upload_id=upload_id, bytes=1, blob_key=part_key)
        )
        await session.commit()


def plant_foreign(store: BlobStore, seaweed: SeaweedS3) -> Callable[[], bool]:
    """Put something else where the store keeps its blobs; returns whether it is still there."""
    if isinstance(store, S3BlobStore):
        key = store.prefix + "notes/readme.txt"
        client = seaweed.client()
        client.put_object(Bucket=store.bucket, Key=key, Body=b"someone else's")
        return lambda: key in seaweed.keys(store.bucket, store.prefix)
    assert isinstance(store, LocalBlobStore)
    path = store.root / "ab" / "readme.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"someone else's")
    return path.exists


async def test_orphans_older_than_the_grace_age_go(
    store: BlobStore, sessions: async_sessionmaker[AsyncSession], seaweed: SeaweedS3
) -> None:
    keys = {name: store.new_key() for name in ("file", "part", "orphan", "young")}
    for name in ("file", "part", "orphan"):
        await store.put(keys[name], name.encode())
    await add_rows(sessions, keys["file"], keys["part"])
    foreign = plant_foreign(store, seaweed)  # not a blob of ours: never swept
    begun = await store.writer(store.new_key(), max_size=2**30)
    await begun.write(os.urandom(6 * 1024 * 1024))  # a write a dead process began
    await asyncio.sleep(GRACE + 1)
    await store.put(keys["young"], b"young")  # its row may be on its way

    result = await sweep_orphans(sessions, store, grace_seconds=GRACE, abandoned_seconds=3600)
    assert result.orphans == 1
    assert result.abandoned == 0
    with pytest.raises(FileNotFoundError):
        await store.read_all(keys["orphan"])
    for name in ("file", "part", "young"):
        assert await store.read_all(keys[name]) == name.encode()
    assert foreign()

    # The young blob may be past GRACE by now (a slow machine; S3 dates in whole seconds):
    # this sweep is about the abandoned write only.
    result = await sweep_orphans(sessions, store, grace_seconds=3600, abandoned_seconds=0.5)
    assert (result.orphans, result.abandoned) == (0, 1)
    assert await store.read_all(keys["young"]) == b"young"
    await begun.abort()  # nothing left to abort: fine


async def test_a_store_with_nothing_in_it(
    store: BlobStore, sessions: async_sessionmaker[AsyncSession]
) -> None:
    result = await sweep_orphans(sessions, store, grace_seconds=GRACE)
    assert (result.orphans, result.abandoned) == (0, 0)
