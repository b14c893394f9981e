"""A database outage: API calls answer 503 with `Retry-After` and OpenAI's envelope (not a 500),
`/readyz` says in a fixed sentence that the database is down (no driver text, no SQL), and all
is well again once the database is back.

The live test stops a PostgreSQL of its own. SQLite has no server to stop, and as root no file
mode makes a database unreadable: there the classification is tested on the errors SQLite really
raises (a file that cannot be opened, a database another process holds locked).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from sqlalchemy import create_engine, exc, text
from sqlalchemy.ext.asyncio import create_async_engine

from assistantd.errors import database_unavailable
from assistantd.health.router import DATABASE_DOWN
from tests.conftest import ROOT, STATIC_KEY, STATIC_PROJECT, _mint_key, is_postgres
from tests.support.pg import start_postgres
from tests.support.server import LiveServer

PG_ROOT = ROOT / ".tmp" / "pg-outage"
DRIVER_WORDS = ("psycopg", "SQL", "sqlalche", "socket", "PGSQL", "Errno", "SELECT")


def _pg_ctl(action: str) -> None:
    """Stop or start the outage test's PostgreSQL (started as pgserver starts it: no TCP, its
    socket in its data directory)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver
        from pgserver._commands import pg_ctl

        user = pgserver.get_server(str(PG_ROOT), cleanup_mode=None).system_user
        if action == "stop":
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=PG_ROOT, user=user)
        elif not (PG_ROOT / "postmaster.pid").exists():
            options = ["-o", '-h ""', "-o", f"-k {PG_ROOT}", "-l", str(PG_ROOT / "log")]
            pg_ctl(["-w", *options, "start"], pgdata=PG_ROOT, user=user)


class Outage:
    def __init__(self, api: LiveServer, env: dict[str, str]) -> None:
        self.api = api
        self.env = env

    def http(self, key: str = STATIC_KEY) -> httpx.Client:
        return httpx.Client(
            base_url=f"{self.api.url}/v1", headers={"Authorization": f"Bearer {key}"}, timeout=30
        )


@pytest.fixture
def outage(database_url: str, work_dir: Path) -> Iterator[Outage]:
    if not is_postgres(database_url):
        pytest.skip("stopping the database needs a PostgreSQL server (SQLite: unit tests below)")
    url = start_postgres(PG_ROOT)
    env = {
        "ASSISTANTD_DATA_DIR": str(work_dir / "outage"),
        "ASSISTANTD_DATABASE_URL": url,
        "ASSISTANTD_API_KEYS": f"{STATIC_PROJECT}:{STATIC_KEY}",
        "ASSISTANTD_MODEL_BASE_URL": "http://127.0.0.1:9/v1",
        "ASSISTANTD_EMBEDDED_WORKER": "false",
        "ASSISTANTD_SANDBOX_POOL_SIZE": "0",
    }
    subprocess.run(
        [sys.executable, "-m", "assistantd", "migrate"],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
    )
    api = LiveServer(env, work_dir / "outage-server.log").start()
    try:
        yield Outage(api, env)
    finally:
        api.stop()
        _pg_ctl("start")  # whatever the test left, the session's teardown stops it


def _check_503(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"].isdigit(), response.headers
    assert 1 <= int(response.headers["retry-after"]) <= 60
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "service_unavailable_error"
    assert "database" in error["message"]
    assert not any(word in response.text for word in DRIVER_WORDS), response.text


def test_calls_during_an_outage_are_503s(outage: Outage) -> None:
    minted = _mint_key(
        outage.env["ASSISTANTD_DATABASE_URL"], outage.env["ASSISTANTD_DATA_DIR"], "minted"
    )
    with outage.http() as http:
        assistant = http.post("/assistants", json={"model": "gpt-4o"}).json()
        _pg_ctl("stop")
        try:
            _check_503(http.get("/assistants"))
            _check_503(http.get(f"/assistants/{assistant['id']}"))
            _check_503(http.post("/assistants", json={"model": "gpt-4o"}))
            _check_503(http.post("/responses", json={"model": "gpt-4o", "input": "hi"}))
            with outage.http(minted) as other:  # a key only the database knows
                _check_503(other.post("/threads", json={}))
            ready = httpx.get(f"{outage.api.url}/readyz", timeout=30)
            assert ready.status_code == 503
            assert ready.json() == {"status": "unavailable", "reason": DATABASE_DOWN}
            assert ready.headers["retry-after"].isdigit()
            # the SDK sees a 5xx it may retry, as with OpenAI's own 503s
            client = openai.OpenAI(
                base_url=f"{outage.api.url}/v1", api_key=STATIC_KEY, max_retries=0
            )
            with pytest.raises(openai.InternalServerError) as raised:
                client.beta.assistants.list()
            assert raised.value.status_code == 503
        finally:
            _pg_ctl("start")
        deadline = time.monotonic() + 60
        while (listed := http.get(f"/assistants/{assistant['id']}")).status_code != 200:
            assert listed.status_code == 503, listed.text  # never a 500 on the way back
            assert time.monotonic() < deadline, listed.text
            time.sleep(0.2)
        assert listed.json() == assistant
        assert httpx.get(f"{outage.api.url}/readyz", timeout=30).status_code == 200
    log = Path(outage.api.log_path).read_text(errors="replace")
    assert "database unavailable on GET /v1/assistants" in log
    assert "unhandled error" not in log


class TestDatabaseUnavailable:
    """The errors that say "the database cannot be used now", as the drivers raise them."""

    def test_sqlite_file_that_cannot_be_opened(self, tmp_path: Path) -> None:
        engine = create_engine(f"sqlite:///{tmp_path}")  # a directory, not a database file
        with pytest.raises(exc.OperationalError) as raised, engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        assert database_unavailable(raised.value)

    def test_sqlite_locked_by_another_process(self, tmp_path: Path) -> None:
        path = tmp_path / "db.sqlite"
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("CREATE TABLE t (x)")
        holder.execute("BEGIN EXCLUSIVE")
        engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 0})
        try:
            with pytest.raises(exc.OperationalError) as raised, engine.begin() as conn:
                conn.execute(text("INSERT INTO t VALUES (1)"))
            assert database_unavailable(raised.value)
        finally:
            holder.close()
            engine.dispose()

    def test_sqlite_statement_errors_are_not_outages(self, tmp_path: Path) -> None:
        engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
        for statement in ("SELECT * FROM missing", "SELEC 1"):
            with pytest.raises(exc.OperationalError) as raised, engine.connect() as conn:
                conn.execute(text(statement))
            assert not database_unavailable(raised.value), statement
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE u (x UNIQUE)"))
        with pytest.raises(exc.IntegrityError) as integrity, engine.begin() as conn:
            conn.execute(text("INSERT INTO u VALUES (1), (1)"))
        assert not database_unavailable(integrity.value)
        assert not database_unavailable(ValueError("boom"))

    def test_postgres_that_does_not_answer(self, tmp_path: Path) -> None:
        url = f"postgresql+psycopg://postgres:@/x?host={tmp_path}&connect_timeout=2"

        async def connect() -> None:
            engine = create_async_engine(url)
            try:
                async with engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
            finally:
                await engine.dispose()

        with pytest.raises(exc.OperationalError) as raised:
            asyncio.run(connect())
        assert database_unavailable(raised.value)
        assert database_unavailable(raised.value.orig)  # unwrapped, as a LISTEN raises it
        chained = RuntimeError("while reading")
        chained.__cause__ = raised.value
        assert database_unavailable(chained)

    def test_no_pooled_connection_in_time(self, tmp_path: Path) -> None:
        engine = create_engine(
            f"sqlite:///{tmp_path / 'db.sqlite'}", pool_size=1, max_overflow=0, pool_timeout=0.1
        )
        with engine.connect(), pytest.raises(exc.TimeoutError) as raised:
            engine.connect()
        assert database_unavailable(raised.value)
