"""Fixtures for the playground's browser tests: a live server and headless Chromium.

The browser is Debian's `chromium` driven by Playwright from PyPI (`executable_path`; Playwright's
own browser downloads are never used). Without it the tests are skipped, unless
`ASSISTANTD_REQUIRE_BROWSER=1` (CI), which turns that into a failure, as a missing Docker is.
Screenshots of each step go to `.tmp/artifacts/playground/`.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import ROOT
from tests.sandbox.conftest import (
    SANDBOX_ENV,
    SANDBOX_KEY,
    SandboxServer,
    docker_problem,
    fresh_database,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

ARTIFACTS = ROOT / ".tmp" / "artifacts" / "playground"
KEY = SANDBOX_KEY


def chromium_problem() -> tuple[str | None, str | None]:
    """(the chromium executable, None) or (None, why the browser tests cannot run here)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return None, "Playwright is not installed (pip install -e '.[test]')"
    # ASSISTANTD_CHROMIUM: another Chromium build than the one on PATH
    path = shutil.which(os.environ.get("ASSISTANTD_CHROMIUM") or "chromium")
    if not path:
        return None, "no `chromium` executable (Debian: apt-get install chromium)"
    return path, None


@pytest.fixture(scope="session")
def chromium() -> str:
    path, problem = chromium_problem()
    if path is not None:
        return path
    assert problem is not None
    if os.environ.get("ASSISTANTD_REQUIRE_BROWSER") == "1":
        pytest.fail(f"ASSISTANTD_REQUIRE_BROWSER=1 but {problem}")
    pytest.skip(problem)


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's own sandbox refuses to start
        launched = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def live(chromium: str, server_env: dict[str, str], work_dir: Path) -> Iterator[SandboxServer]:
    """The module's server (SQLite, its own database): API keys on, code runs in Docker."""
    problem = docker_problem()
    if problem is not None:
        if os.environ.get("ASSISTANTD_REQUIRE_DOCKER") == "1":
            pytest.fail(f"ASSISTANTD_REQUIRE_DOCKER=1 but {problem}")
        pytest.skip(problem)
    tag = f"playground-{secrets.token_hex(3)}"
    env = {
        **server_env,
        **SANDBOX_ENV,
        "ASSISTANTD_DATABASE_URL": fresh_database(server_env["ASSISTANTD_DATABASE_URL"], work_dir),
        "ASSISTANTD_DATA_DIR": str(work_dir / f"data-{tag}"),
        "ASSISTANTD_API_KEYS": f"{tag}:{SANDBOX_KEY}",
        "ASSISTANTD_EMBEDDED_WORKER": "true",
    }
    server = SandboxServer(env, work_dir, tag)
    yield server
    server.stop()


class Console:
    """What the page logged: errors fail the test unless a test expects them."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.expected: list[re.Pattern[str]] = []

    def expect(self, pattern: str) -> None:
        self.expected.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.expected)]


@pytest.fixture
def console() -> Console:
    return Console()


@pytest.fixture
def page(browser: Browser, console: Console) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(30_000)
    from playwright.sync_api import expect

    expect.set_options(timeout=15_000)  # a loaded CI machine is slower than a desk
    opened = context.new_page()

    def on_console(message: Any) -> None:
        if message.type == "error":
            console.errors.append(message.text)

    opened.on("console", on_console)
    opened.on("pageerror", lambda error: console.errors.append(f"page error: {error}"))
    yield opened
    context.close()
    assert not console.unexpected(), console.unexpected()


@pytest.fixture
def shot(page: Page, request: pytest.FixtureRequest) -> Callable[[str], Path]:
    """`shot("name")` saves a screenshot of the page as a test artifact."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    counter = iter(range(1, 100))

    def take(name: str) -> Path:
        path = ARTIFACTS / f"{request.node.name}-{next(counter):02d}-{name}.png"
        page.screenshot(path=path, full_page=True)
        return path

    return take
