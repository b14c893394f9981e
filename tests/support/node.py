"""The official Node `openai` package (pinned in tests/streaming/node/package.json), for tests
that drive the server with Node scripts.

The first use installs it with `npm ci` into tests/streaming/node/node_modules (git-ignored) and
later uses reuse it. No node or npm, or an install that fails, fails the test: these tests are
part of the suite, not optional.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

NODE_DIR = Path(__file__).parent.parent / "streaming" / "node"


def _pinned_version() -> str:
    return str(json.loads((NODE_DIR / "package.json").read_text())["dependencies"]["openai"])


def _installed_version() -> str | None:
    manifest = NODE_DIR / "node_modules" / "openai" / "package.json"
    if not manifest.exists():
        return None
    return str(json.loads(manifest.read_text())["version"])


def node_with_openai() -> str:
    """The node executable, with the pinned `openai` package installed next to the scripts."""
    node_bin, npm_bin = shutil.which("node"), shutil.which("npm")
    if node_bin is None or npm_bin is None:
        pytest.fail("node and npm are needed for the Node SDK tests (Node.js >= 18)")
    if _installed_version() != _pinned_version():
        done = subprocess.run(
            [npm_bin, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0 or _installed_version() != _pinned_version():
            pytest.fail(f"npm ci failed in {NODE_DIR}:\n{done.stdout}\n{done.stderr}")
    return node_bin


def run_node(node: str, script: str, *args: str) -> Any:
    """Run `script` (in NODE_DIR) with `args`; the JSON its last output line holds."""
    done = subprocess.run(
        [node, script, *args], cwd=NODE_DIR, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"node failed:\n{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout.strip().splitlines()[-1])
