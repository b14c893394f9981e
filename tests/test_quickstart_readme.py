"""The README's quick start, as a new user follows it: a clean clone in a temporary directory,
the one start command (`make run`, which installs into the clone's own `.venv`), the README's
Python snippets against that server, and `/readyz` saying whether the code interpreter can run.

It runs once, in the SQLite run: the quick start's server is SQLite whatever the suite's backend.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.conftest import ROOT
from tests.sandbox.conftest import docker_problem, remove_containers_of
from tests.support.server import free_port

pytestmark = pytest.mark.skipif(
    os.environ.get("ASSISTANTD_TEST_BACKEND") == "postgres",
    reason="the README's quick start serves SQLite: it runs in the SQLite run",
)


def quick_start() -> tuple[list[str], list[str]]:
    """The `sh` and `python` blocks of the README's quick start (up to "Bring a real model")."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Quick start") : readme.index("### Bring a real model")]
    blocks = re.findall(r"```(sh|python)\n(.*?)```", section, flags=re.S)
    return [b for kind, b in blocks if kind == "sh"], [b for kind, b in blocks if kind == "python"]


def group_pids(group: int) -> set[int]:
    pids = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group:  # pgrp, after state and ppid
            pids.add(int(stat.parent.name))
    return pids


@pytest.fixture(scope="module")
def started(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """`make run PORT=...` in a clean clone; the server's URL and the clone."""
    shell, _ = quick_start()
    assert "make run\n" in shell  # the one start command
    work = tmp_path_factory.mktemp("quickstart")
    clone = work / "assistantd"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    # A new user's environment: none of the suite's settings.
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANTD_")}
    port = free_port()
    log = work / "make-run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["make", "run", f"PORT={port}"],
            cwd=clone,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: make, and the server under it
        )
    url = f"http://127.0.0.1:{port}"
    pids: set[int] = set()
    try:
        deadline = time.monotonic() + 600  # installs the clone's .venv first
        while True:
            pids |= group_pids(proc.pid)
            assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
            time.sleep(0.5)
        pids |= group_pids(proc.pid)
        yield url, work
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        remove_containers_of(pids)


def snippet(code: str, url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a README snippet as written, pointed at this server's port."""
    code = code.replace("http://127.0.0.1:8080", url)
    return subprocess.run(
        [sys.executable, "-W", "ignore::DeprecationWarning", "-c", code],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_readyz_reports_the_code_interpreter(started: tuple[str, Path]) -> None:
    url, _ = started
    body = httpx.get(f"{url}/readyz").json()
    assert body["status"] == "ok"
    sandbox = body["code_interpreter"]
    problem = docker_problem()
    assert sandbox["status"] == ("ready" if problem is None else "unavailable"), sandbox
    assert sandbox["image"] == "assistantd-sandbox:latest"
    if problem is not None:
        assert "make sandbox-image" in sandbox["detail"] or "Docker" in sandbox["detail"]


def test_the_first_snippet(started: tuple[str, Path]) -> None:
    url, work = started
    _, python = quick_start()
    done = snippet(python[0], url, work)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("completed "), done.stdout


def test_the_sinewave_snippet(started: tuple[str, Path]) -> None:
    problem = docker_problem()
    if problem is not None:
        if os.environ.get("ASSISTANTD_REQUIRE_DOCKER") == "1":
            pytest.fail(f"ASSISTANTD_REQUIRE_DOCKER=1 but {problem}")
        pytest.skip(problem)
    url, work = started
    _, python = quick_start()
    done = snippet(python[1], url, work)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "completed", done.stdout
    with Image.open(work / "sinewave.png") as image:
        assert image.format == "PNG"
