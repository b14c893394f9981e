"""File expiry: an expired file is gone at once; the sweep reclaims its row and blob."""

from __future__ import annotations

import time
from pathlib import Path

import openai
import pytest
from openai import OpenAI

from assistantd.blobs.store import LocalBlobStore
from assistantd.db.engine import make_engine, make_sessionmaker
from assistantd.files import service
from assistantd.settings import Settings
from tests.files.support import blob_dir, file_blob, sql


def _expire(server_env: dict[str, str], file_id: str) -> None:
    sql(
        server_env["ASSISTANTD_DATABASE_URL"],
        "UPDATE files SET expires_at = :at WHERE id = :id",
        at=int(time.time()) - 1,
        id=file_id,
    )


def test_expired_file_is_gone(client: OpenAI, server_env: dict[str, str]) -> None:
    kept = client.files.create(file=("kept.txt", b"k"), purpose="assistants")
    gone = client.files.create(
        file=("gone.txt", b"g"),
        purpose="assistants",
        expires_after={"anchor": "created_at", "seconds": 3600},
    )
    _expire(server_env, gone.id)
    for call in (client.files.retrieve, client.files.content, client.files.delete):
        with pytest.raises(openai.NotFoundError):
            call(gone.id)
    assert [f.id for f in client.files.list()] == [kept.id]
    with pytest.raises(openai.BadRequestError) as info:  # not usable as a file id either
        client.beta.assistants.create(
            model="gpt-4o", tool_resources={"code_interpreter": {"file_ids": [gone.id]}}
        )
    assert gone.id in str(info.value)


async def test_sweep_deletes_expired_rows_and_blobs(
    client: OpenAI, server_env: dict[str, str]
) -> None:
    kept = client.files.create(file=("kept.txt", b"k"), purpose="assistants")
    gone = client.files.create(file=("gone.txt", b"g"), purpose="batch")
    blob = file_blob(server_env, gone.id)
    assert blob.exists()
    _expire(server_env, gone.id)

    settings = Settings(
        database_url=server_env["ASSISTANTD_DATABASE_URL"],
        data_dir=Path(server_env["ASSISTANTD_DATA_DIR"]),
    )
    engine = make_engine(settings)
    try:
        blobs = LocalBlobStore(blob_dir(settings.data_dir))
        swept = await service.sweep_expired(make_sessionmaker(engine, write=True), blobs)
    finally:
        await engine.dispose()
    # The live server's reaper runs the same sweep every half second and may get there first
    # (then this one finds nothing): what counts is that the file is gone, row and blob.
    assert swept >= 0
    assert not blob.exists()
    url = server_env["ASSISTANTD_DATABASE_URL"]
    assert sql(url, "SELECT id FROM files WHERE id = :id", id=gone.id) == []
    assert client.files.retrieve(kept.id) == kept
    assert file_blob(server_env, kept.id).exists()
