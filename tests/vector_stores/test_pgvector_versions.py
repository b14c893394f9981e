"""pgvector 0.5 to 0.8: the schema uses `halfvec` only where the extension has it (0.7+), and
iterative scans only where they exist (0.8+); older or missing pgvector makes `assistantd
migrate` say in one line what it needs.

An older pgvector cannot be installed next to the test server's own (0.8), so these tests build
the one thing that differs for the schema: the extension's SQL objects. A directory on
PostgreSQL 18's `extension_control_path` holds a `vector` extension at version 0.6.2 (or 0.4.4)
whose script is the installed one without its `halfvec` and `sparsevec` objects, over the same
library. `type "halfvec" does not exist` is then exactly what an Ubuntu 24.04 user met.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
from openai import OpenAI
from sqlalchemy import create_engine, make_url, text

from assistantd.db import pgvector
from tests.conftest import ROOT, STATIC_KEY, STATIC_PROJECT, is_postgres
from tests.support.pg import start_postgres
from tests.support.server import LiveServer

PG_ROOT = ROOT / ".tmp" / "pg"  # the suite's server: each test gets a database of its own


class TestDecision:
    @pytest.mark.parametrize(
        ("version", "kind", "iterative"),
        [
            ("0.5.0", "vector", False),
            ("0.6.2", "vector", False),
            ("0.7.0", "halfvec", False),
            ("0.7.4", "halfvec", False),
            ("0.8.0", "halfvec", True),
            ("0.8.2", "halfvec", True),
            ("0.10.0", "halfvec", True),
        ],
    )
    def test_by_version(self, version: str, kind: str, iterative: bool) -> None:
        assert pgvector.index_type(version) == kind
        assert pgvector.iterative_scans(version) is iterative

    @pytest.mark.parametrize("version", ["0.4.4", "0.1.0"])
    def test_too_old_is_one_line(self, version: str) -> None:
        with pytest.raises(pgvector.PgvectorUnusable) as raised:
            pgvector.index_type(version)
        message = str(raised.value)
        assert "\n" not in message
        assert "pgvector 0.5.0 or newer" in message
        assert "HNSW" in message
        assert version in message

    def test_index_ddl(self) -> None:
        assert pgvector.hnsw_index(384, "vector") == (
            "CREATE INDEX ix_vector_store_chunks_hnsw_384 ON vector_store_chunks USING hnsw "
            "((embedding_vec::vector(384)) vector_cosine_ops) WHERE dims = 384"
        )
        assert "IF NOT EXISTS" in pgvector.hnsw_index(768, "halfvec", if_not_exists=True)


def _pg_share() -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

    return Path(pgserver.__file__).parent / "pginstall" / "share" / "postgresql" / "extension"


def _older_pgvector(version: str) -> Path:
    """An extension directory whose `vector` is at `version` as far as SQL goes (no halfvec,
    no sparsevec), readable by the PostgreSQL server's own user."""
    base = ROOT / ".tmp" / "pgvector-versions" / version
    folder = base / "extension"
    folder.mkdir(parents=True, exist_ok=True)
    installed = sorted(_pg_share().glob("vector--[0-9].[0-9]*.[0-9]*.sql"))
    full = [path for path in installed if "--" not in path.name[len("vector--") :]]
    statements = re.split(r";\n", full[-1].read_text())
    kept = [s for s in statements if "halfvec" not in s and "sparsevec" not in s]
    (folder / f"vector--{version}.sql").write_text(";\n".join(kept))
    (folder / "vector.control").write_text(
        f"comment = 'pgvector {version} as far as its SQL goes (a test double)'\n"
        f"default_version = '{version}'\nmodule_pathname = '$libdir/vector'\nrelocatable = true\n"
    )
    for path in (ROOT / ".tmp", base.parent, base, folder, *folder.iterdir()):
        path.chmod(path.stat().st_mode | 0o055)
    return base


def _no_extensions() -> Path:
    """An extension directory with nothing in it (and, alone on the path, no pgvector)."""
    base = ROOT / ".tmp" / "pgvector-versions" / "none"
    (base / "extension").mkdir(parents=True, exist_ok=True)
    for path in (ROOT / ".tmp", base.parent, base, base / "extension"):
        path.chmod(path.stat().st_mode | 0o055)
    return base


def _database_with(control_path: str) -> str:
    """A fresh database whose sessions look for extensions on `control_path`."""
    url = start_postgres(PG_ROOT)
    name = make_url(url).database
    admin = create_engine(make_url(url).set(drivername="postgresql+psycopg", database="postgres"))
    try:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            setting = f"extension_control_path = '{control_path}'"
            conn.execute(text(f"ALTER DATABASE {name} SET {setting}"))
    finally:
        admin.dispose()
    return url


def _migrate(url: str, work_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ASSISTANTD_DATABASE_URL": url, "ASSISTANTD_DATA_DIR": str(work_dir)}
    return subprocess.run(
        [sys.executable, "-m", "assistantd", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


@pytest.fixture
def postgres(database_url: str) -> None:
    if not is_postgres(database_url):
        pytest.skip("pgvector is PostgreSQL's")


@pytest.fixture
def pgvector_06(postgres: None, work_dir: Path) -> str:
    url = _database_with(f"{_older_pgvector('0.6.2')}:$system")
    result = _migrate(url, work_dir / "pgvector-06")
    assert result.returncode == 0, result.stderr[-3000:]
    return url


def _search_kind(url: str) -> tuple[str, str, bool]:
    engine = create_engine(make_url(url).set(drivername="postgresql+psycopg"))
    try:
        with engine.connect() as conn:
            version = conn.execute(
                text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            ).scalar_one()
            index = conn.execute(
                text("SELECT indexdef FROM pg_indexes WHERE indexname = :name"),
                {"name": pgvector.index_name(384)},
            ).scalar_one()
            has_halfvec = conn.execute(text("SELECT to_regtype('halfvec') IS NOT NULL")).scalar()
        return str(version), str(index), bool(has_halfvec)
    finally:
        engine.dispose()


def test_migrate_and_search_on_pgvector_06(pgvector_06: str, work_dir: Path) -> None:
    version, index, has_halfvec = _search_kind(pgvector_06)
    assert version == "0.6.2"
    assert not has_halfvec  # as on Ubuntu 24.04
    assert "::vector(384)) vector_cosine_ops" in index, index
    env = {
        "ASSISTANTD_DATA_DIR": str(work_dir / "pgvector-06"),
        "ASSISTANTD_DATABASE_URL": pgvector_06,
        "ASSISTANTD_API_KEYS": f"{STATIC_PROJECT}:{STATIC_KEY}",
        "ASSISTANTD_MODEL_BASE_URL": "http://127.0.0.1:9/v1",
        "ASSISTANTD_SANDBOX_POOL_SIZE": "0",
    }
    api = LiveServer(env, work_dir / "pgvector-06-server.log").start()
    worker = LiveServer(env, work_dir / "pgvector-06-worker.log", command="worker").start()
    try:
        client = OpenAI(base_url=f"{api.url}/v1", api_key=STATIC_KEY)
        store = client.vector_stores.create(name="older pgvector")
        notes = "Sea otters use stones as tools to crack open shellfish."
        other = "The harbour master keeps the tide tables in a blue binder."
        for name, body in (("otters.txt", notes), ("harbour.txt", other)):
            done = client.vector_stores.files.upload_and_poll(
                vector_store_id=store.id, file=(name, body.encode())
            )
            assert done.status == "completed", done.last_error
        page = _search(client, store.id, "What do otters use as tools?")
        assert page[0].filename == "otters.txt"
        assert 0 < page[0].score <= 1
    finally:
        worker.stop()
        api.stop()
    log = (work_dir / "pgvector-06-server.log").read_text(errors="replace")
    assert "halfvec" not in log, log[-3000:]


def _search(client: OpenAI, store_id: str, query: str) -> list[object]:
    deadline = time.monotonic() + 60
    while not (data := list(client.vector_stores.search(store_id, query=query).data)):
        assert time.monotonic() < deadline, "no results"
        time.sleep(0.2)
    return data


@pytest.mark.parametrize(
    ("control_path", "says"),
    [
        (lambda: f"{_older_pgvector('0.4.4')}:$system", "this database has 0.4.4"),
        (lambda: str(_no_extensions()), "this PostgreSQL server has none"),
    ],
    ids=["0.4.4", "missing"],
)
def test_too_old_or_missing_is_one_line(
    postgres: None, work_dir: Path, control_path: Callable[[], str], says: str
) -> None:
    url = _database_with(control_path())
    result = _migrate(url, work_dir / "pgvector-old")
    assert result.returncode == 2, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if not re.match(r"^\d{4}-", line)]
    assert len(lines) == 1, result.stderr[-3000:]
    assert lines[0].startswith("assistantd: ")
    assert "pgvector" in lines[0]
    assert "0.5.0 or newer" in lines[0]
    assert says in lines[0]
    assert "Traceback" not in result.stderr
