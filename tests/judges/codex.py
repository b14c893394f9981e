"""Running Codex CLI (`codex exec --json`) with a CODEX_HOME whose config points at a provider."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.judges.conftest import judge_env

DEFAULT = "default"  # the config names no model: Codex's default


@dataclass
class CodexRun:
    events: list[dict[str, Any]]
    stderr: str
    seconds: float
    items: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.items = [e["item"] for e in self.events if e.get("type") == "item.completed"]

    @property
    def completed(self) -> bool:
        return any(e.get("type") == "turn.completed" for e in self.events)

    @property
    def errors(self) -> list[str]:
        """The turn's failures as Codex reports them (the server's error body, verbatim)."""
        found = [e["error"]["message"] for e in self.events if e.get("type") == "turn.failed"]
        found += [e["message"] for e in self.events if e.get("type") == "error"]
        return found

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [item for item in self.items if item.get("type") == kind]

    def explain(self) -> str:
        return f"errors: {self.errors}\nevents: {self.events}\nstderr: {self.stderr[-3000:]}"


def write_config(home: Path, base_url: str, model: str) -> None:
    lines = [] if model == DEFAULT else [f'model = "{model}"']
    lines += [
        'model_provider = "assistantd"',
        "",
        "[model_providers.assistantd]",
        'name = "assistantd"',
        f'base_url = "{base_url}"',
        'wire_api = "responses"',
        'env_key = "ASSISTANTD_API_KEY"',
    ]
    (home / "config.toml").write_text("\n".join(lines) + "\n")


def run_codex(
    codex: Path,
    home: Path,
    workdir: Path,
    api_key: str,
    prompt: str,
    *,
    timeout: float = 120,
) -> CodexRun:
    args = [
        str(codex),
        "exec",
        "--json",
        "--skip-git-repo-check",  # the work folder is no git repository
        "--ephemeral",  # no session files
        # no approvals to ask anyone for, and no sandbox of Codex's own (it runs as root in CI,
        # in a container-less machine): the command is the test's
        "--dangerously-bypass-approvals-and-sandbox",
        "--cd",
        str(workdir),
        prompt,
    ]
    env = judge_env(CODEX_HOME=str(home), ASSISTANTD_API_KEY=api_key, RUST_LOG="error")
    start = time.monotonic()
    # its own process group: a timeout ends the npm wrapper and the Codex binary it started
    codex_exec = subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        stdout, stderr = codex_exec.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(codex_exec.pid, signal.SIGKILL)
        stdout, stderr = codex_exec.communicate()
        run = CodexRun(_events(stdout), stderr, time.monotonic() - start)
        raise AssertionError(f"codex exec did not end in {timeout} s\n{run.explain()}") from None
    return CodexRun(_events(stdout), stderr, time.monotonic() - start)


def _events(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
