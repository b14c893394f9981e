"""Helpers for the files and uploads tests: direct SQL, blob paths, a second server."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from tests.support.server import LiveServer


def sql(database_url: str, statement: str, **params: Any) -> list[Any]:
    """Run one statement on the test database (synchronously) and return its rows."""
    engine = create_engine(database_url.replace("sqlite+aiosqlite", "sqlite"))
    try:
        with engine.begin() as conn:
            result = conn.execute(text(statement), params)
            return list(result.all()) if result.returns_rows else []
    finally:
        engine.dispose()


def blob_dir(data_dir: str | Path) -> Path:
    return Path(data_dir) / "files"


def blob_path(data_dir: str | Path, key: str) -> Path:
    return blob_dir(data_dir) / key[:2] / key


def file_blob(env: Mapping[str, str], file_id: str) -> Path:
    """Where the blob of `file_id` lives on disk."""
    rows = sql(
        env["ASSISTANTD_DATABASE_URL"], "SELECT blob_key FROM files WHERE id = :id", id=file_id
    )
    assert rows, f"no row for {file_id}"
    return blob_path(env["ASSISTANTD_DATA_DIR"], rows[0][0])


def stored_blobs(data_dir: str | Path) -> set[Path]:
    """Every file under the blob directory, temporary ones included."""
    root = blob_dir(data_dir)
    return {path for path in root.rglob("*") if path.is_file()} if root.exists() else set()


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        time.sleep(0.02)


def small_server(server_env: Mapping[str, str], work_dir: Path, **limits: int) -> LiveServer:
    """Another server on the same database, with its own data dir and small upload limits."""
    env = {
        **server_env,
        "ASSISTANTD_DATA_DIR": str(work_dir / "data"),
        "ASSISTANTD_MIGRATE_ON_START": "false",
    }
    env.update({f"ASSISTANTD_{name.upper()}": str(value) for name, value in limits.items()})
    return LiveServer(env, work_dir / "server.log").start()
