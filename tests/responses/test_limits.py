"""A response's context and the model's window: `truncation` decides what happens when it
does not fit; `max_tool_calls` and unknown models."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from openai import BadRequestError, OpenAI

from tests.runs.conftest import Tuned
from tests.support.scripted_model import ScriptedModel

WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa"


@pytest.fixture(scope="module")
def small(tuned_server: Callable[..., Tuned], model: ScriptedModel, work_dir: Path) -> OpenAI:
    """A server whose model `tiny` has a 600-token window (100 of them for the answer)."""
    models_file = work_dir / "models-responses-limits.yaml"
    models_file.write_text(
        f"backends:\n  scripted:\n    base_url: {model.base_url}\n"
        "models:\n"
        "  tiny:\n    backend: scripted\n    upstream_model: gpt-4o\n"
        "    context_window: 600\n    max_output_tokens: 100\n"
    )
    return tuned_server({"ASSISTANTD_MODELS_FILE": str(models_file)}).client


def long_chain(client: OpenAI, marker: str, turns: int) -> str:
    previous = None
    for turn in range(turns):
        previous = client.responses.create(
            model="tiny",
            input=f"{marker} turn {turn}: {WORDS}",
            previous_response_id=previous,
            truncation="auto",
        ).id
    assert previous is not None
    return previous


def test_disabled_truncation_fails_with_openais_error(small: OpenAI, marker: str) -> None:
    last = long_chain(small, marker, 12)
    with pytest.raises(BadRequestError) as err:
        small.responses.create(model="tiny", previous_response_id=last, input="and now?")
    assert err.value.body == {  # type: ignore[comparison-overlap]
        "message": "Your input exceeds the context window of this model. Please adjust your "
        "input and try again.",
        "type": "invalid_request_error",
        "param": "input",
        "code": "context_length_exceeded",
    }


def test_disabled_truncation_in_the_background_fails_the_response(
    small: OpenAI, marker: str
) -> None:
    last = long_chain(small, marker, 12)
    response = small.responses.create(
        model="tiny", previous_response_id=last, input="and now?", background=True
    )
    while response.status in ("queued", "in_progress"):
        response = small.responses.retrieve(response.id)
    assert response.status == "failed"
    assert response.error is not None
    assert response.error.code == "context_length_exceeded"  # type: ignore[comparison-overlap]


def test_auto_truncation_drops_from_the_middle(
    small: OpenAI, model: ScriptedModel, marker: str
) -> None:
    last = long_chain(small, marker, 12)
    response = small.responses.create(
        model="tiny", previous_response_id=last, input=f"{marker} final", truncation="auto"
    )
    assert response.status == "completed"
    sent = model.requests(f"{marker} final")[-1]["messages"]
    users = [m["content"] for m in sent if m["role"] == "user"]
    assert users[0] == f"{marker} turn 0: {WORDS}"  # the oldest turn stays
    assert users[-1] == f"{marker} final"
    assert 2 < len(users) < 13
    kept = [int(text.split("turn ")[1].split(":")[0]) for text in users[1:-1]]
    assert kept == list(range(12 - len(kept), 12))  # the newest, in order
