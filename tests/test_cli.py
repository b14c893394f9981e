"""The command line: `assistantd migrate` on fresh databases, and the health endpoints."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, inspect

from assistantd.db.engine import sync_url
from assistantd.db.migrate import head_revision
from assistantd.settings import Settings
from tests.conftest import ROOT, is_postgres
from tests.sandbox.conftest import docker_problem
from tests.support.server import LiveServer

# Tables every deployment needs from the first migration.
CORE_TABLES = {"api_keys", "assistants", "threads", "items", "files", "alembic_version"}


def fresh_database_url(tmp: Path) -> str:
    """An empty database of the backend under test: SQLite in `tmp`, or a new PostgreSQL one."""
    if os.environ.get("ASSISTANTD_TEST_BACKEND") == "postgres":
        from tests.support.pg import start_postgres

        return start_postgres(ROOT / ".tmp" / "pg")
    return f"sqlite+aiosqlite:///{tmp / 'assistantd.db'}"


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "assistantd", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def tables(database_url: str) -> set[str]:
    engine = create_engine(sync_url(Settings(database_url=database_url)))
    try:
        with engine.connect() as conn:
            return set(inspect(conn).get_table_names())
    finally:
        engine.dispose()


def revision(database_url: str) -> str | None:
    from assistantd.db.migrate import current_revision

    return current_revision(Settings(database_url=database_url))


def poll(check: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"not true within {timeout}s")


class TestMigrate:
    def test_fresh_sqlite_data_dir(self, tmp_path: Path) -> None:
        """No database URL at all: the SQLite file is made inside the data dir."""
        data_dir = tmp_path / "new" / "data"
        env = {"ASSISTANTD_DATA_DIR": str(data_dir), "ASSISTANTD_DATABASE_URL": ""}
        done = cli(env, "migrate")
        assert done.returncode == 0, done.stderr
        assert "latest migration" in done.stdout
        db_file = data_dir / "assistantd.db"
        assert db_file.is_file()
        url = f"sqlite+aiosqlite:///{db_file}"
        assert CORE_TABLES <= tables(url)
        assert revision(url) == head_revision(Settings(database_url=url))

    def test_fresh_database_of_the_backend(self, tmp_path: Path) -> None:
        url = fresh_database_url(tmp_path)
        assert tables(url) == set()
        env = {"ASSISTANTD_DATA_DIR": str(tmp_path / "data"), "ASSISTANTD_DATABASE_URL": url}
        done = cli(env, "migrate")
        assert done.returncode == 0, done.stderr
        assert CORE_TABLES <= tables(url)
        head = head_revision(Settings(database_url=url))
        assert head is not None
        assert revision(url) == head
        again = cli(env, "migrate")  # idempotent
        assert again.returncode == 0, again.stderr
        assert revision(url) == head

    def test_help(self) -> None:
        done = cli({}, "--help")
        assert done.returncode == 0
        for command in ("serve", "worker", "migrate", "keys"):
            assert command in done.stdout

    def test_keys_needs_a_project(self, tmp_path: Path) -> None:
        done = cli({"ASSISTANTD_DATA_DIR": str(tmp_path)}, "keys", "create")
        assert done.returncode != 0
        assert "--project" in done.stderr


class TestHealth:
    def test_healthz(self, server: LiveServer) -> None:
        response = httpx.get(f"{server.url}/healthz")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}

    def test_readyz(self, server: LiveServer, server_env: dict[str, str]) -> None:
        response = httpx.get(f"{server.url}/readyz")
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "ok"
        url = server_env["ASSISTANTD_DATABASE_URL"]
        assert body["revision"] == head_revision(Settings(database_url=url))
        sandbox = body["code_interpreter"]
        if is_postgres(url):  # the API process executes no runs; its workers do
            assert sandbox["status"] == "not_checked"
            assert "assistantd worker" in sandbox["detail"]
            return
        problem = docker_problem()
        assert sandbox["status"] == ("ready" if problem is None else "unavailable"), sandbox
        assert sandbox["image"] == Settings().sandbox_image
        assert sandbox["docker_host"] == Settings().sandbox_docker_host

    def test_health_is_not_under_the_api_prefixes(self, server: LiveServer) -> None:
        assert httpx.get(f"{server.url}/v1/healthz").status_code in (401, 404)

    def test_readyz_before_and_after_migrating(self, tmp_path: Path) -> None:
        url = fresh_database_url(tmp_path)
        env = {
            "ASSISTANTD_DATA_DIR": str(tmp_path / "data"),
            "ASSISTANTD_DATABASE_URL": url,
            "ASSISTANTD_API_KEYS": "sk-readyz",
            "ASSISTANTD_MIGRATE_ON_START": "false",
            "ASSISTANTD_EMBEDDED_WORKER": "false",
        }
        live = LiveServer(env, tmp_path / "server.log").start(wait=False)
        try:
            poll(lambda: _status(f"{live.url}/healthz") == 200)
            response = httpx.get(f"{live.url}/readyz")
            assert response.status_code == 503
            assert response.json()["status"] == "unavailable"
            done = cli(env, "migrate")
            assert done.returncode == 0, done.stderr
            poll(lambda: _status(f"{live.url}/readyz") == 200)
        finally:
            live.stop()


def _status(url: str) -> int | None:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return None


@pytest.mark.parametrize("command", ["worker"])
def test_worker_command_exists(command: str) -> None:
    done = cli({}, command, "--help")
    assert done.returncode == 0


class TestSandboxCommands:
    """`assistantd sandbox check` and `ensure` (what `make run` does first)."""

    def test_check_without_docker(self) -> None:
        done = cli({"ASSISTANTD_SANDBOX_DOCKER_HOST": "unix:///nonexistent/docker.sock"}, *CHECK)
        assert done.returncode == 1
        assert done.stdout.startswith("code interpreter: unavailable: cannot reach the Docker")
        assert "install and start a Docker engine" in done.stdout
        assert "make sandbox-image" in done.stdout

    def test_check_without_the_image(self) -> None:
        if (problem := docker_problem()) is not None and "no sandbox image" not in problem:
            pytest.skip(problem)
        done = cli({"ASSISTANTD_SANDBOX_IMAGE": "assistantd-sandbox:no-such-tag"}, *CHECK)
        assert done.returncode == 1
        assert "the sandbox image 'assistantd-sandbox:no-such-tag' is not on" in done.stdout
        assert "make sandbox-image" in done.stdout

    def test_check_ready(self) -> None:
        if (problem := docker_problem()) is not None:
            pytest.skip(problem)
        done = cli({}, *CHECK)
        assert done.returncode == 0, done.stdout
        assert done.stdout.startswith("code interpreter: ready: image ")

    def test_ensure_never_stops_the_server_from_starting(self) -> None:
        env = {"ASSISTANTD_SANDBOX_DOCKER_HOST": "unix:///nonexistent/docker.sock"}
        done = cli(env, "sandbox", "ensure")
        assert done.returncode == 0
        assert done.stdout.startswith("code interpreter: not ready: cannot reach the Docker")

    def test_ensure_when_ready(self) -> None:
        if (problem := docker_problem()) is not None:
            pytest.skip(problem)
        done = cli({}, "sandbox", "ensure")
        assert done.returncode == 0
        assert done.stdout.startswith("code interpreter: ready: ")


CHECK = ("sandbox", "check")


def test_serve_on_a_taken_port_says_so_and_starts_nothing(tmp_path: Path) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    data_dir = tmp_path / "data"
    env = {
        "ASSISTANTD_DATA_DIR": str(data_dir),
        "ASSISTANTD_DATABASE_URL": "",
        "ASSISTANTD_LOCAL_MODEL": "false",
    }
    try:
        started = time.monotonic()
        done = cli(env, "serve", "--port", str(port))
        took = time.monotonic() - started
    finally:
        taken.close()
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1, done.stderr
    assert f"cannot listen on 127.0.0.1 port {port}: it is in use" in errors[0]
    assert "Traceback" not in done.stderr
    assert not (data_dir / "assistantd.db").exists()  # no migration, no worker
    assert took < 20
