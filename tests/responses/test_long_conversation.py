"""A conversation of 100,000 items costs what fits the model's window: a response reads its
newest items (in SQL, newest first, stopping when the window is full) with `truncation: auto`,
and is `context_length_exceeded` at once without it; `input_tokens` on it answers within a
second. The items are written straight into the database (100k API calls would take minutes)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from openai import BadRequestError
from sqlalchemy import create_engine, insert, text

from assistantd.db.engine import sync_url
from assistantd.db.models import Item
from assistantd.kit.ids import Prefix, created_at_of, new_id, position_of
from assistantd.settings import Settings
from tests.runs.conftest import Tuned
from tests.support.scripted_model import Reply, ScriptedModel

ITEMS = 100_000
WINDOW = 8192
WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa"
FAST_SECONDS = 1.0


@pytest.fixture(scope="module")
def windowed() -> Iterator[ScriptedModel]:
    """A backend that says (as vLLM does) that its `gpt-4o` has an 8,192-token window."""
    backend = ScriptedModel(model_info={"gpt-4o": {"max_model_len": WINDOW}}).start()
    yield backend
    backend.stop()


@pytest.fixture(scope="module")
def long_server(tuned_server: Callable[..., Tuned], windowed: ScriptedModel) -> tuple[Tuned, str]:
    """The server, and a conversation of its project with `ITEMS` items: `first` is the
    oldest's text, `last` the newest's."""
    tuned = tuned_server({"ASSISTANTD_MODEL_BASE_URL": windowed.base_url})
    conversation = tuned.client.conversations.create(
        items=[{"type": "message", "role": "user", "content": "first"}]
    ).id
    write_items(tuned.database_url, Path(tuned.env["ASSISTANTD_DATA_DIR"]), conversation)
    return tuned, conversation


def write_items(database_url: str, data_dir: Path, conversation: str, count: int = ITEMS) -> None:
    """`count` messages after the conversation's own, alternately the user's and the
    assistant's, the newest saying `last`."""
    engine = create_engine(sync_url(Settings(database_url=database_url, data_dir=data_dir)))
    try:
        with engine.begin() as connection:
            for start in range(0, count, 10_000):
                rows = []
                for index in range(start, min(start + 10_000, count)):
                    item_id = new_id(Prefix.MESSAGE)
                    said = "last" if index == count - 1 else f"item {index}: {WORDS}"
                    rows.append(
                        {
                            "id": item_id,
                            "project": "tuned",
                            "created_at": created_at_of(item_id),
                            "thread_id": conversation,
                            "position": position_of(item_id),
                            "type": "message",
                            "role": "assistant" if index % 2 else "user",
                            "content": [
                                {"type": "text", "text": {"value": said, "annotations": []}}
                            ],
                            "status": "completed",
                        }
                    )
                connection.execute(insert(Item), rows)
        if connection.dialect.name == "postgresql":
            # What autovacuum does after a bulk change: without statistics the planner takes
            # a conversation's items for a few dozen and sorts them all.
            with engine.begin() as analyze:
                analyze.execute(text("ANALYZE items"))
    finally:
        engine.dispose()


T = TypeVar("T")


def timed(call: Callable[[], T]) -> tuple[T, float]:
    started = time.perf_counter()
    result = call()
    return result, time.perf_counter() - started


class TestInputTokens:
    def test_auto_counts_what_fits(self, long_server: tuple[Tuned, str]) -> None:
        tuned, conversation = long_server
        client = tuned.client
        count, elapsed = timed(
            lambda: (
                client.responses.input_tokens.count(
                    model="gpt-4o", conversation=conversation, input="now?", truncation="auto"
                ).input_tokens
            )
        )
        assert WINDOW // 2 < count <= WINDOW, count
        assert elapsed < FAST_SECONDS, f"{elapsed:.2f} s"

    def test_disabled_is_too_long_at_once(self, long_server: tuple[Tuned, str]) -> None:
        tuned, conversation = long_server
        started = time.perf_counter()
        with pytest.raises(BadRequestError) as err:
            tuned.client.responses.input_tokens.count(
                model="gpt-4o", conversation=conversation, input="now?"
            )
        elapsed = time.perf_counter() - started
        assert err.value.code == "context_length_exceeded"
        assert err.value.param == "input"
        assert elapsed < FAST_SECONDS, f"{elapsed:.2f} s"

    def test_an_unknown_window_reads_a_bounded_tail(self, long_server: tuple[Tuned, str]) -> None:
        """Without a model nobody knows the window: the newest items whose stored JSON makes
        262,144 tokens are read."""
        tuned, conversation = long_server
        count, elapsed = timed(
            lambda: (
                tuned.client.responses.input_tokens.count(
                    conversation=conversation, input="now?", truncation="auto"
                ).input_tokens
            )
        )
        assert 50_000 < count <= 262_144, count
        assert elapsed < FAST_SECONDS, f"{elapsed:.2f} s"


class TestAResponse:
    def test_auto_reads_the_newest_items(
        self, long_server: tuple[Tuned, str], windowed: ScriptedModel, marker: str
    ) -> None:
        tuned, conversation = long_server
        windowed.script(marker, Reply(text="read the tail"))
        response, elapsed = timed(
            lambda: tuned.client.responses.create(
                model="gpt-4o", conversation=conversation, input=marker, truncation="auto"
            )
        )
        assert response.output_text == "read the tail"
        sent = windowed.requests(marker)[-1]["messages"]
        said = [m["content"] for m in sent]
        assert said[-1] == marker
        assert said[-2] == "last"
        assert said[0] == "first"  # the oldest message stays, the middle went
        assert not any(text.startswith("item 0:") for text in said)
        assert 100 < len(sent) < 1000
        assert elapsed < 5 * FAST_SECONDS, f"{elapsed:.2f} s"

    def test_disabled_fails_before_the_model(
        self, long_server: tuple[Tuned, str], windowed: ScriptedModel, marker: str
    ) -> None:
        tuned, conversation = long_server
        with pytest.raises(BadRequestError) as err:
            tuned.client.responses.create(model="gpt-4o", conversation=conversation, input=marker)
        assert err.value.code == "context_length_exceeded"
        assert windowed.requests(marker) == []
