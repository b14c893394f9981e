"""The playground's files: shipped in the wheel, self-contained, served only from their folder.

No browser here: these run in both database runs.
"""

from __future__ import annotations

import re
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from assistantd.playground import router as playground
from tests.conftest import ROOT

STATIC = ROOT / "src" / "assistantd" / "playground" / "static"


def static_files() -> list[Path]:
    return sorted(p for p in STATIC.iterdir() if p.is_file())


def test_every_static_file_is_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["assistantd"]
    package = ROOT / "src" / "assistantd"
    for path in static_files():
        name = path.relative_to(package).as_posix()
        assert any(fnmatch(name, pattern) for pattern in patterns), f"{name} would not ship"


def test_the_page_loads_nothing_from_elsewhere() -> None:
    """Modules import only their siblings, and no file names another origin."""
    names = {p.name for p in static_files()}
    for path in static_files():
        text = path.read_text()
        assert not re.search(r"(?:src|href)=[\"'](?:https?:)?//", text), path.name
        assert "@import" not in text, path.name
        for target in re.findall(r"""from\s+["']([^"']+)["']""", text):
            assert target.startswith("./"), f"{path.name} imports {target}"
            assert target[2:] in names, f"{path.name} imports a missing {target}"
        for target in re.findall(r"""(?:src|href)="/playground/([^"]+)\"""", text):
            assert target in names, f"{path.name} loads a missing {target}"


@pytest.mark.parametrize(
    "name", ["", ".hidden", "../router.py", "..", "a/b.js", "router.py", "__init__.py"]
)
def test_only_the_static_folder_is_served(name: str) -> None:
    with pytest.raises(playground.NotFoundError):
        playground._serve(name)


def test_files_are_served_with_their_types() -> None:
    app = FastAPI()
    app.include_router(playground.router)
    with TestClient(app) as client:
        for path in static_files():
            answer = client.get(f"/playground/{path.name}")
            assert answer.status_code == 200, path.name
            assert answer.content == path.read_bytes()
            assert answer.headers["cache-control"] == "no-cache"
        assert client.get("/playground").text == (STATIC / "index.html").read_text()
        assert client.get("/playground/").headers["content-type"].startswith("text/html")
