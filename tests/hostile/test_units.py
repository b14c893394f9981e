"""The mechanisms behind the hostile-input suite, without a server."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from assistantd.errors import InvalidRequestError, ServerError, render
from assistantd.kit.text import first_problem, loads_scrubbed, scrub, scrub_json
from assistantd.ops.logs import ContextIds
from assistantd.settings import database_url_for_drivers


class TestTextRule:
    def test_first_problem_names_the_path(self) -> None:
        body = {"a": [{"b": "ok"}, {"c": "x\x00"}]}
        assert first_problem(body) == (
            "a[1].c",
            "contains a NUL character (\\u0000), which is not allowed",
        )
        assert first_problem({"k\ud83d": 1})[0] == "k\ud83d"  # type: ignore[index]
        assert first_problem({"m": {"k\x00": "v"}})[0] == "m"  # type: ignore[index]
        assert first_problem({"ok": ["\U0001f600", 1, None, True]}) is None

    def test_first_problem_at_any_depth(self) -> None:
        """No recursion: deeper than Python's stack allows (and keys before their values)."""
        deep: object = "\x00"
        for _ in range(5_000):
            deep = [deep]
        hit = first_problem({"ok": "fine", "x": deep})
        assert hit is not None
        assert hit[0] == "x" + "[0]" * 5_000
        assert first_problem({"a": {"k\x00": ["\x00"]}}) == (
            "a",
            "has a key that contains a NUL character (\\u0000), which is not allowed",
        )

    def test_scrub(self) -> None:
        assert scrub("a\x00b\ud83dc") == "a\ufffdb\ufffdc"
        assert scrub("\ud83d\ude00") == "\U0001f600"  # halves of a pair are joined
        assert scrub("plain") == "plain"

    def test_scrub_json(self) -> None:
        assert json.loads(scrub_json({"t": "a\x00", "e": "\U0001f600"})) == {
            "t": "a\ufffd",
            "e": "\U0001f600",
        }
        assert scrub_json({"t": "\\u0000"}) == json.dumps({"t": "\\u0000"})  # text, not NUL

    def test_loads_scrubbed(self) -> None:
        assert loads_scrubbed('{"x": "a\\u0000\\ud83d"}') == {"x": "a\ufffd\ufffd"}


def test_server_errors_close_the_connection() -> None:
    assert render(ServerError("boom")).headers["connection"] == "close"
    assert "connection" not in render(InvalidRequestError("bad")).headers


def test_log_lines_escape_control_characters() -> None:
    record = logging.LogRecord(
        "x", logging.WARNING, __file__, 1, "path %s", ("/v1/a\x00\x1b[2J\nb",), None
    )
    ContextIds().filter(record)
    assert record.getMessage() == "path /v1/a\\x00\\x1b[2J\\nb"


class TestDatabaseUrls:
    @pytest.mark.parametrize(
        ("given", "used"),
        [
            ("sqlite:///x.db", "sqlite+aiosqlite:///x.db"),
            ("sqlite:////abs/x.db", "sqlite+aiosqlite:////abs/x.db"),
            ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
            ("postgresql://u:p@h/db", "postgresql+psycopg://u:p@h/db"),
            ("postgres://u@h:5433/db", "postgresql+psycopg://u@h:5433/db"),
            ("postgresql+psycopg2://h/db", "postgresql+psycopg://h/db"),
            ("postgresql+psycopg://h/db", "postgresql+psycopg://h/db"),
        ],
    )
    def test_mapped(self, given: str, used: str) -> None:
        assert database_url_for_drivers(given) == used

    @pytest.mark.parametrize("given", ["mysql://h/db", "x.db", "sqlite:x.db"])
    def test_refused(self, given: str) -> None:
        with pytest.raises(ValueError, match="SQLite"):
            database_url_for_drivers(given)

    def _migrate(self, url: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "ASSISTANTD_DATABASE_URL": url, "ASSISTANTD_DATA_DIR": str(tmp_path)}
        return subprocess.run(
            [sys.executable, "-m", "assistantd", "migrate"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def test_plain_sqlite_url_starts(self, tmp_path: Path) -> None:
        done = self._migrate(f"sqlite:///{tmp_path / 'plain.db'}", tmp_path)
        assert done.returncode == 0, done.stderr
        assert (tmp_path / "plain.db").exists()

    def test_unusable_url_is_one_line(self, tmp_path: Path) -> None:
        done = self._migrate("mysql://h/db", tmp_path)
        assert done.returncode == 2
        assert done.stderr.count("\n") == 1, done.stderr
        assert done.stderr.startswith("assistantd: ASSISTANTD_DATABASE_URL: must be"), done.stderr

    def test_plain_postgres_url(self, database_url: str, tmp_path: Path) -> None:
        if not database_url.startswith("postgresql"):
            pytest.skip("the PostgreSQL run checks the plain postgres:// form")
        plain = database_url.replace("postgresql+psycopg://", "postgres://", 1)
        done = self._migrate(plain, tmp_path)
        assert done.returncode == 0, done.stderr
