"""Archive and decompression bombs, one per parser: each file ends `failed` with a `last_error`
(or, where the parser copes, `completed`), the server's memory stays within its budget and
/healthz answers throughout."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.hostile import bombs
from tests.hostile.conftest import PARSER_MEMORY_MB, Attack

BOMBS: list[tuple[str, Callable[[], bytes], str | None]] = [
    # name, content, what last_error.message says (None: the parser copes and completes)
    ("unpacks-too-far.docx", lambda: bombs.docx_bomb(300), "unpacks to 300 MB"),
    ("tree-bomb.docx", lambda: bombs.docx_bomb(200), None),
    ("unpacks-too-far.pptx", lambda: bombs.pptx_bomb(300), "unpacks to 300 MB"),
    ("stream-bomb.pdf", lambda: bombs.pdf_bomb(300), None),
    ("unterminated.html", lambda: bombs.html_bomb(4), None),
    ("nested.json", lambda: bombs.json_bomb(5_000), None),
]


def _ingest(attack: Attack, name: str, data: bytes) -> dict[str, object]:
    http = attack.http
    file = http.post("/files", files={"file": (name, data)}, data={"purpose": "assistants"})
    assert file.status_code == 200, file.text
    store = http.post("/vector_stores", json={"file_ids": [file.json()["id"]]}).json()
    deadline = time.monotonic() + 120
    while True:
        row = http.get(f"/vector_stores/{store['id']}/files/{file.json()['id']}").json()
        if row["status"] != "in_progress":
            break
        assert time.monotonic() < deadline, row
        time.sleep(0.1)
    # The database may be the suite's (PostgreSQL): leave no chunks behind for others' searches.
    http.delete(f"/vector_stores/{store['id']}").raise_for_status()
    http.delete(f"/files/{file.json()['id']}").raise_for_status()
    return dict(row)


@pytest.mark.parametrize(("name", "make", "says"), BOMBS, ids=[b[0] for b in BOMBS])
def test_bomb(attack: Attack, name: str, make: Callable[[], bytes], says: str | None) -> None:
    row = _ingest(attack, name, make())
    if says is not None:
        assert row["status"] == "failed", row
    if row["status"] == "failed":
        error = row["last_error"]
        assert isinstance(error, dict)
        assert error["code"] == "invalid_file", error
        assert error["message"], error
        if says is not None:
            assert says in error["message"], error
    else:
        assert row["status"] == "completed", row


def test_memory_bound_names_the_setting(attack: Attack) -> None:
    """A document within the unpacked size whose parse needs more memory than the parser may
    have fails, saying so; the server never held it."""
    row = _ingest(
        attack, "wide.docx", bombs.docx_bomb(200, unit=b"<w:p><w:r><w:t>a</w:t></w:r></w:p>")
    )
    assert row["status"] == "failed", row
    error = row["last_error"]
    assert isinstance(error, dict)
    assert error["code"] == "invalid_file"
    assert PARSER_MEMORY_MB > 0
