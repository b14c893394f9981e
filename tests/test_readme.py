"""The README's configuration table is generated from the settings and must stay in step."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_configuration_table_matches_settings() -> None:
    table = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "settings-table")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    readme = (ROOT / "README.md").read_text()
    assert table in readme, "README is stale: run scripts/update-readme"


def test_readme_names_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "```sh\nmake run\n```" in readme
    assert "```sh\nmake test\n```" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
