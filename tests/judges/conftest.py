"""The outside judges: other people's clients, run as they ship, against a live assistantd.

Codex CLI, the Open Responses compliance suite (run with bun) and the Agents SDK for JavaScript
come from the npm registry: `scripts/judges-install` puts each into `.tmp/npm/NAME/` (kept when the
pinned versions are there). Without node and npm the tests are skipped, unless
`ASSISTANTD_REQUIRE_JUDGES=1` (CI), which turns that into a failure.

They run in the SQLite pass only: they judge the HTTP surface, which the PostgreSQL pass would
only repeat, and they are the slowest clients of the suite. On PostgreSQL they are not collected.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT

NPM = ROOT / ".tmp" / "npm"

if os.environ.get("ASSISTANTD_TEST_BACKEND") == "postgres" or os.environ.get(
    "ASSISTANTD_DATABASE_URL", ""
).startswith("postgresql"):
    collect_ignore_glob = ["test_*.py"]


def _missing(problem: str) -> None:
    if os.environ.get("ASSISTANTD_REQUIRE_JUDGES") == "1":
        pytest.fail(f"ASSISTANTD_REQUIRE_JUDGES=1 but {problem}")
    pytest.skip(problem)


@pytest.fixture(scope="session")
def npm_tools() -> Path:
    """`.tmp/npm`, with every judge's tool installed (scripts/judges-install)."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            _missing(f"no `{tool}` executable (Debian: apt-get install nodejs npm)")
    done = subprocess.run(
        [str(ROOT / "scripts" / "judges-install")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        _missing(f"scripts/judges-install failed:\n{done.stdout}\n{done.stderr}")
    return NPM


def judge_env(**extra: str) -> dict[str, str]:
    """The environment of a judge's process: ours, without an OpenAI key or a proxy."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.upper().startswith(("OPENAI_", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"))
    }
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def codex(npm_tools: Path) -> Path:
    return npm_tools / "codex" / "node_modules" / ".bin" / "codex"


@pytest.fixture
def codex_home() -> Iterator[Path]:
    """A CODEX_HOME of the test's own (not under /tmp: Codex puts its helper aliases there only
    outside temporary folders)."""
    home = ROOT / ".tmp" / "judges" / f"codex-{secrets.token_hex(4)}"
    home.mkdir(parents=True)
    yield home
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def marker() -> str:
    """A token unique to this test: put it in the prompt, script the model for it."""
    return f"mk-{secrets.token_hex(6)}"
