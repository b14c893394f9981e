"""The context window a backend reports is used as the models file's would be; when nobody knows
it, the request is sent as it is and the backend's own context-length error becomes
`context_length_exceeded` (a 400 for a request that waits for its response, as OpenAI answers)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest
from openai import BadRequestError, OpenAI

from tests.responses.conftest import raw_events
from tests.runs.conftest import Tuned
from tests.support.scripted_model import Reply, ScriptedModel

WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa"
VLLM_TOO_LONG = Reply(
    status=400,
    error_message="This model's maximum context length is 4096 tokens. However, you requested "
    "5210 tokens (5110 in the messages, 100 in the completion). Please reduce the length of "
    "the messages or completion.",
)
LLAMA_CPP_TOO_LONG = Reply(
    status=400,
    error_message="the request exceeds the available context size, try increasing it",
)


@pytest.fixture(scope="module")
def vllm() -> Iterator[ScriptedModel]:
    """A backend that says (as vLLM does) that its `gpt-4o` has a 600-token window."""
    backend = ScriptedModel(model_info={"gpt-4o": {"max_model_len": 600}}).start()
    yield backend
    backend.stop()


@pytest.fixture(scope="module")
def sized(tuned_server: Callable[..., Tuned], vllm: ScriptedModel) -> OpenAI:
    """A server with no models file in front of that backend."""
    return tuned_server({"ASSISTANTD_MODEL_BASE_URL": vllm.base_url}).client


def long_chain(client: OpenAI, marker: str, turns: int) -> str:
    previous = None
    for turn in range(turns):
        previous = client.responses.create(
            model="gpt-4o",
            input=f"{marker} turn {turn}: {WORDS}",
            previous_response_id=previous,
            truncation="auto",
        ).id
    assert previous is not None
    return previous


class TestAReportedWindow:
    def test_disabled_truncation_is_refused_before_the_model(
        self, sized: OpenAI, vllm: ScriptedModel, marker: str
    ) -> None:
        last = long_chain(sized, marker, 12)
        asked = len(vllm.requests(marker))
        with pytest.raises(BadRequestError) as err:
            sized.responses.create(model="gpt-4o", previous_response_id=last, input="and now?")
        assert err.value.code == "context_length_exceeded"
        assert len(vllm.requests(marker)) == asked
        # the window, asked once for every response, and the start-up log's probe of the backend
        # by each process (on PostgreSQL the worker is a process of its own)
        probes = 2 if os.environ.get("ASSISTANTD_TEST_BACKEND") == "postgres" else 1
        assert vllm.hits("/v1/models") == 1 + probes

    def test_auto_truncation_drops_from_the_middle(
        self, sized: OpenAI, vllm: ScriptedModel, marker: str
    ) -> None:
        last = long_chain(sized, marker, 12)
        response = sized.responses.create(
            model="gpt-4o", previous_response_id=last, input=f"{marker} final", truncation="auto"
        )
        assert response.status == "completed"
        sent = vllm.requests(f"{marker} final")[-1]["messages"]
        users = [m["content"] for m in sent if m["role"] == "user"]
        assert users[0].startswith(f"{marker} turn 0:")  # the oldest turn stays
        assert users[-1] == f"{marker} final"
        assert len(users) < 13  # turns from the middle went


class TestAnUnknownWindow:
    def test_a_long_prompt_is_sent(self, client: OpenAI, model: ScriptedModel, marker: str) -> None:
        model.script(marker, Reply(text="read it all"))
        text = f"{marker} " + WORDS * 4000  # ~40k tokens: more than any default would allow
        response = client.responses.create(model="gpt-4o", input=text)
        assert response.output_text == "read it all"

    @pytest.mark.parametrize("too_long", [VLLM_TOO_LONG, LLAMA_CPP_TOO_LONG])
    def test_the_backends_error_is_a_400(
        self, client: OpenAI, model: ScriptedModel, marker: str, too_long: Reply
    ) -> None:
        model.script(marker, too_long)
        with pytest.raises(BadRequestError) as err:
            client.responses.create(model="gpt-4o", input=marker)
        assert err.value.code == "context_length_exceeded"
        assert err.value.param == "input"
        assert too_long.error_message in str(err.value.message)
        assert len(model.requests(marker)) == 1  # not retried

    def test_a_stream_fails_with_the_code(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        model.script(marker, VLLM_TOO_LONG)
        body = {"model": "gpt-4o", "input": marker, "stream": True}
        events = raw_events(client, "responses", body=body)
        assert events[-1]["type"] == "response.failed"
        # OpenAI's code, as Codex CLI reads it (the SDK's ResponseError literal lacks it)
        assert events[-1]["response"]["error"]["code"] == "context_length_exceeded"

    def test_a_background_response_fails_with_the_code(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        model.script(marker, VLLM_TOO_LONG)
        response = client.responses.create(model="gpt-4o", input=marker, background=True)
        while response.status in ("queued", "in_progress"):
            response = client.responses.retrieve(response.id)
        assert response.status == "failed"
        assert response.error is not None
        assert response.error.code == "context_length_exceeded"  # type: ignore[comparison-overlap]

    def test_an_assistants_run_fails_as_invalid_prompt(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        model.script(marker, VLLM_TOO_LONG)
        assistant = client.beta.assistants.create(model="gpt-4o")
        run = client.beta.threads.create_and_run_poll(
            assistant_id=assistant.id,
            thread={"messages": [{"role": "user", "content": marker}]},
            poll_interval_ms=20,
        )
        assert run.status == "failed"
        assert run.last_error is not None
        assert run.last_error.code == "invalid_prompt"  # the Assistants API's codes
        assert "maximum context length" in run.last_error.message
