"""Ingestion recovery: a file whose worker died is ingested again from scratch, up to a limit."""

from __future__ import annotations

import time

from openai import OpenAI

from tests.files.support import sql

TEXT = "Tide tables for the harbour. High water is at noon; low water at six in the evening."


def _abandon(server_env: dict[str, str], store_id: str, file_id: str, attempts: int) -> None:
    """What a worker that died mid-file leaves behind: in progress, its lease run out."""
    sql(
        server_env["ASSISTANTD_DATABASE_URL"],
        "UPDATE vector_store_files SET status = 'in_progress', lease_owner = 'dead-worker', "
        "lease_expires_at = :past, attempts = :attempts "
        "WHERE vector_store_id = :store AND file_id = :file",
        past=time.time() - 1,
        attempts=attempts,
        store=store_id,
        file=file_id,
    )


def _chunks(server_env: dict[str, str], store_id: str) -> int:
    (row,) = sql(
        server_env["ASSISTANTD_DATABASE_URL"],
        "SELECT count(*) FROM vector_store_chunks WHERE vector_store_id = :store",
        store=store_id,
    )
    return int(row[0])


def test_abandoned_file_is_ingested_again(client: OpenAI, server_env: dict[str, str]) -> None:
    store = client.vector_stores.create(name="recover")
    vs_file = client.vector_stores.files.upload_and_poll(
        vector_store_id=store.id, file=("tides.txt", TEXT.encode()), poll_interval_ms=50
    )
    assert vs_file.status == "completed"
    before = _chunks(server_env, store.id)
    _abandon(server_env, store.id, vs_file.id, attempts=1)
    assert client.vector_stores.retrieve(store.id).status == "in_progress"
    again = client.vector_stores.files.poll(
        vs_file.id, vector_store_id=store.id, poll_interval_ms=50
    )
    assert again.status == "completed"
    # The dead attempt's chunks were replaced, not added to.
    assert _chunks(server_env, store.id) == before
    content = client.vector_stores.files.content(vs_file.id, vector_store_id=store.id)
    assert next(iter(content)).text == TEXT


def test_file_fails_after_too_many_attempts(client: OpenAI, server_env: dict[str, str]) -> None:
    store = client.vector_stores.create(name="give-up")
    vs_file = client.vector_stores.files.upload_and_poll(
        vector_store_id=store.id, file=("tides.txt", TEXT.encode()), poll_interval_ms=50
    )
    _abandon(server_env, store.id, vs_file.id, attempts=3)
    failed = client.vector_stores.files.poll(
        vs_file.id, vector_store_id=store.id, poll_interval_ms=50
    )
    assert failed.status == "failed"
    assert failed.last_error is not None
    assert failed.last_error.code == "server_error"
    assert _chunks(server_env, store.id) == 0
    counts = client.vector_stores.retrieve(store.id).file_counts
    assert (counts.failed, counts.total) == (1, 1)
