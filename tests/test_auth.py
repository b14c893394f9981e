"""Who may call: static keys, CLI-minted keys, both headers, and the open (keyless) mode."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai import AuthenticationError, AzureOpenAI, OpenAI
from sqlalchemy import create_engine, inspect, select, text

from assistantd.db.engine import sync_url
from assistantd.db.models import ApiKey, Assistant
from assistantd.settings import Settings
from tests.conftest import AZURE_API_VERSION, ROOT, STATIC_KEY, STATIC_PROJECT
from tests.support.server import LiveServer


def fresh_database_url(tmp: Path) -> str:
    """An empty database of the backend under test: SQLite in `tmp`, or a new PostgreSQL one."""
    if os.environ.get("ASSISTANTD_TEST_BACKEND") == "postgres":
        from tests.support.pg import start_postgres

        return start_postgres(ROOT / ".tmp" / "pg")
    return f"sqlite+aiosqlite:///{tmp / 'assistantd.db'}"


def project_of(database_url: str, assistant_id: str) -> str | None:
    engine = create_engine(sync_url(Settings(database_url=database_url)))
    try:
        with engine.connect() as conn:
            return conn.scalar(select(Assistant.project).where(Assistant.id == assistant_id))
    finally:
        engine.dispose()


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "assistantd", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def mint(env: dict[str, str], project: str) -> str:
    done = cli(env, "keys", "create", "--project", project)
    assert done.returncode == 0, done.stderr
    keys = [line.split()[-1] for line in done.stdout.splitlines() if line.startswith("key:")]
    assert len(keys) == 1, done.stdout
    return keys[0]


class TestHeaders:
    def test_bearer(self, server: LiveServer) -> None:
        with OpenAI(api_key=STATIC_KEY, base_url=f"{server.url}/v1", max_retries=0) as c:
            assert c.beta.assistants.list().object == "list"

    def test_api_key_header(self, server: LiveServer) -> None:
        with AzureOpenAI(
            api_key=STATIC_KEY,
            api_version=AZURE_API_VERSION,
            azure_endpoint=server.url,
            max_retries=0,
        ) as c:
            assert c.beta.assistants.list().object == "list"

    @pytest.mark.parametrize(
        "headers",
        [
            {"Authorization": f"Bearer {STATIC_KEY}"},
            {"Authorization": f"bearer {STATIC_KEY}"},
            {"api-key": STATIC_KEY},
        ],
    )
    @pytest.mark.parametrize("prefix", ["/v1", "/openai/v1", "/openai"])
    def test_every_prefix(self, server: LiveServer, headers: dict[str, str], prefix: str) -> None:
        response = httpx.get(
            f"{server.url}{prefix}/assistants",
            headers=headers,
            params={"api-version": AZURE_API_VERSION},
        )
        assert response.status_code == 200, response.text

    def test_both_headers_name_the_same_project(self, server: LiveServer, api_key: str) -> None:
        bearer = {"Authorization": f"Bearer {api_key}"}
        created = httpx.post(f"{server.url}/v1/assistants", headers=bearer, json={"model": "m"})
        assert created.status_code == 200
        via_api_key = httpx.get(
            f"{server.url}/openai/assistants/{created.json()['id']}",
            headers={"api-key": api_key},
            params={"api-version": AZURE_API_VERSION},
        )
        assert via_api_key.json() == created.json()

    def test_health_needs_no_key(self, server: LiveServer) -> None:
        assert httpx.get(f"{server.url}/healthz").status_code == 200
        assert httpx.get(f"{server.url}/readyz").status_code == 200


@pytest.fixture(scope="class")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str]]:
    """A server with static keys of two projects and a bare key, on its own database."""
    tmp = tmp_path_factory.mktemp("static-keys")
    url = fresh_database_url(tmp)
    env = {
        "ASSISTANTD_DATA_DIR": str(tmp / "data"),
        "ASSISTANTD_DATABASE_URL": url,
        "ASSISTANTD_API_KEYS": " alpha:sk-alpha , sk-bare,beta:sk-beta ,",
    }
    live = LiveServer(env, tmp / "server.log").start()
    yield live, url
    live.stop()


class TestStaticKeys:
    def test_project_key(self, keyed: tuple[LiveServer, str]) -> None:
        live, url = keyed
        with OpenAI(api_key="sk-alpha", base_url=f"{live.url}/v1", max_retries=0) as alpha:
            created = alpha.beta.assistants.create(model="m")
        assert project_of(url, created.id) == "alpha"

    def test_bare_key_is_project_default(self, keyed: tuple[LiveServer, str]) -> None:
        live, url = keyed
        with OpenAI(api_key="sk-bare", base_url=f"{live.url}/v1", max_retries=0) as bare:
            created = bare.beta.assistants.create(model="m")
        assert project_of(url, created.id) == "default"

    def test_projects_are_apart(self, keyed: tuple[LiveServer, str]) -> None:
        live, _ = keyed
        with (
            OpenAI(api_key="sk-alpha", base_url=f"{live.url}/v1", max_retries=0) as alpha,
            OpenAI(api_key="sk-beta", base_url=f"{live.url}/v1", max_retries=0) as beta,
        ):
            mine = alpha.beta.assistants.create(model="m").id
            assert mine not in [a.id for a in beta.beta.assistants.list(limit=100)]

    @pytest.mark.parametrize("key", ["sk-alph", "alpha:sk-alpha", "sk-alpha2", "", "SK-ALPHA"])
    def test_near_misses(self, keyed: tuple[LiveServer, str], key: str) -> None:
        live, _ = keyed
        response = httpx.get(f"{live.url}/v1/assistants", headers={"api-key": key})
        assert response.status_code == 401

    def test_main_server_static_key(self, server: LiveServer, server_env: dict[str, str]) -> None:
        with OpenAI(api_key=STATIC_KEY, base_url=f"{server.url}/v1", max_retries=0) as c:
            created = c.beta.assistants.create(model="m")
        assert project_of(server_env["ASSISTANTD_DATABASE_URL"], created.id) == STATIC_PROJECT


class TestMintedKeys:
    def test_minted_key_works_and_is_stored_hashed(
        self, server: LiveServer, server_env: dict[str, str]
    ) -> None:
        project = f"minted-{os.urandom(4).hex()}"
        done = cli(server_env, "keys", "create", "--project", project)
        assert done.returncode == 0, done.stderr
        assert f"project: {project}" in done.stdout
        assert "shown once" in done.stdout
        key = next(line.split()[-1] for line in done.stdout.splitlines() if line.startswith("key:"))
        assert key.startswith("sk-")
        assert len(key) >= 40
        assert done.stdout.count(key) == 1  # printed once

        with OpenAI(api_key=key, base_url=f"{server.url}/v1", max_retries=0) as c:
            created = c.beta.assistants.create(model="m")
        url = server_env["ASSISTANTD_DATABASE_URL"]
        assert project_of(url, created.id) == project

        engine = create_engine(sync_url(Settings(database_url=url)))
        try:
            with engine.connect() as conn:
                rows = conn.execute(select(ApiKey).where(ApiKey.project == project)).all()
                assert len(rows) == 1
                row = rows[0]._mapping
                assert row["key_hash"] == hashlib.sha256(key.encode()).hexdigest()
                for value in row.values():
                    assert key not in str(value)
                # nowhere in any text column of any table
                for table in inspect(conn).get_table_names():
                    for record in conn.execute(text(f"SELECT * FROM {table}")).all():
                        assert key not in repr(tuple(record)), table
        finally:
            engine.dispose()
        if url.startswith("sqlite"):
            db_file = Path(url.split("///", 1)[1])
            for path in db_file.parent.glob(db_file.name + "*"):  # the file, its WAL and SHM
                assert key.encode() not in path.read_bytes()

    def test_every_mint_is_a_new_key(self, server_env: dict[str, str]) -> None:
        assert mint(server_env, "twice") != mint(server_env, "twice")

    def test_two_minted_projects_are_apart(
        self, server: LiveServer, server_env: dict[str, str]
    ) -> None:
        one = mint(server_env, f"one-{os.urandom(3).hex()}")
        two = mint(server_env, f"two-{os.urandom(3).hex()}")
        with (
            OpenAI(api_key=one, base_url=f"{server.url}/v1", max_retries=0) as c1,
            OpenAI(api_key=two, base_url=f"{server.url}/v1", max_retries=0) as c2,
        ):
            created = c1.beta.assistants.create(model="m")
            assert c2.beta.assistants.list().data == []
            assert [a.id for a in c1.beta.assistants.list()] == [created.id]

    def test_unknown_key_after_minting(
        self, server: LiveServer, server_env: dict[str, str]
    ) -> None:
        key = mint(server_env, "someone")
        with OpenAI(api_key=key[:-1] + "!", base_url=f"{server.url}/v1", max_retries=0) as c:
            with pytest.raises(AuthenticationError):
                c.beta.assistants.list()


class TestOpenMode:
    def test_no_keys_serves_loopback_without_auth(self, tmp_path: Path) -> None:
        url = fresh_database_url(tmp_path)
        env = {
            "ASSISTANTD_DATA_DIR": str(tmp_path / "data"),
            "ASSISTANTD_DATABASE_URL": url,
            "ASSISTANTD_API_KEYS": "",
        }
        live = LiveServer(env, tmp_path / "server.log").start()
        try:
            created = httpx.post(f"{live.url}/v1/assistants", json={"model": "m"})
            assert created.status_code == 200, created.text
            listed = httpx.get(f"{live.url}/v1/assistants").json()
            assert [a["id"] for a in listed["data"]] == [created.json()["id"]]
            assert project_of(url, created.json()["id"]) == "default"
            # the SDK insists on some key; any key is project `default` too
            with OpenAI(api_key="anything", base_url=f"{live.url}/v1", max_retries=0) as c:
                assert [a.id for a in c.beta.assistants.list()] == [created.json()["id"]]
        finally:
            live.stop()
        assert "without auth" in live.log_tail()

    @pytest.mark.parametrize("host", ["0.0.0.0", "::"])
    def test_no_keys_refuses_other_interfaces(self, tmp_path: Path, host: str) -> None:
        env = {
            "ASSISTANTD_DATA_DIR": str(tmp_path / "data"),
            "ASSISTANTD_DATABASE_URL": fresh_database_url(tmp_path),
            "ASSISTANTD_API_KEYS": "",
        }
        done = cli(env, "serve", "--host", host, "--port", "0")
        assert done.returncode != 0
        log = done.stdout + done.stderr
        assert "refusing to listen" in log
        assert "ASSISTANTD_API_KEYS" in log
        assert "keys create" in log
