"""Token budgets, truncation and the model-turn bound."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from openai import OpenAI
from openai.types.beta import Assistant

from tests.runs.conftest import Tuned, function_tool
from tests.support.scripted_model import Reply, ScriptedModel, ToolCall

WORDS = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor"  # 19 tok


def long_thread(client: OpenAI, marker: str, count: int, words: int = 4) -> tuple[str, list[str]]:
    """A thread of `count` user messages of about `words` * 19 tokens; `marker` in the last."""
    texts = [f"m{i:02d} " + " ".join([WORDS] * words) for i in range(count)]
    texts[-1] += f" {marker}"
    thread = client.beta.threads.create()
    for start in range(0, count, 32):
        client.beta.threads.messages.create(thread.id, role="user", content=texts[start])
        for text in texts[start + 1 : start + 32]:
            client.beta.threads.messages.create(thread.id, role="user", content=text)
    return thread.id, texts


def user_texts(request: dict[str, Any]) -> list[str]:
    return [m["content"] for m in request["messages"] if m["role"] == "user"]


def assert_dropped_from_the_middle(seen: list[str], texts: list[str]) -> None:
    """`auto` truncation as OpenAI does it: messages in the middle of the thread go first; the
    oldest stays while any older one does, and the newest are kept in order."""
    assert 1 <= len(seen) < len(texts)
    if len(seen) == 1:
        assert seen == texts[-1:]
    else:
        assert seen == [texts[0], *texts[len(texts) - len(seen) + 1 :]]


class TestMaxCompletionTokens:
    def test_cut_short_by_the_model(
        self, client: OpenAI, assistant: Assistant, model: ScriptedModel, marker: str
    ) -> None:
        thread = client.beta.threads.create(messages=[{"role": "user", "content": marker}])
        model.script(marker, Reply(text="A long answer that", finish_reason="length"))
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id, max_completion_tokens=256
        )
        assert run.status == "incomplete"
        assert run.incomplete_details is not None
        assert run.incomplete_details.reason == "max_completion_tokens"
        assert run.usage is not None
        assert run.last_error is None
        assert run.expires_at is None
        assert run.completed_at is None  # OpenAI leaves it null on an incomplete run
        [message] = client.beta.threads.messages.list(thread.id, run_id=run.id).data
        assert message.status == "incomplete"
        assert message.incomplete_details is not None
        assert message.incomplete_details.reason == "max_tokens"
        assert message.content[0].text.value == "A long answer that"  # type: ignore[union-attr]
        [step] = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data
        assert step.status == "completed"
        # the thread is free again
        client.beta.threads.messages.create(thread.id, role="user", content="continue")

    def test_cut_short_by_the_models_own_cap(
        self, client: OpenAI, assistant: Assistant, model: ScriptedModel, marker: str
    ) -> None:
        """No budget of the run's ran out: the run completes, its message says it was cut."""
        thread = client.beta.threads.create(messages=[{"role": "user", "content": marker}])
        model.script(marker, Reply(text="A long answer that", finish_reason="length"))
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id
        )
        assert run.status == "completed", run.incomplete_details
        assert run.incomplete_details is None
        [message] = client.beta.threads.messages.list(thread.id, run_id=run.id).data
        assert message.status == "incomplete"
        assert message.incomplete_details is not None
        assert message.incomplete_details.reason == "max_tokens"
        assert message.content[0].text.value == "A long answer that"  # type: ignore[union-attr]

    def test_budget_spans_turns(
        self, client: OpenAI, assistant: Assistant, model: ScriptedModel, marker: str
    ) -> None:
        thread = client.beta.threads.create(messages=[{"role": "user", "content": marker}])
        model.script(
            marker,
            Reply(tool_calls=[ToolCall("lookup", "{}")], usage=(20, 256)),
            Reply(text="never asked"),
        )
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id, max_completion_tokens=256
        )
        assert run.status == "requires_action"
        call = run.required_action.submit_tool_outputs.tool_calls[0]  # type: ignore[union-attr]
        run = client.beta.threads.runs.submit_tool_outputs_and_poll(
            run_id=run.id,
            thread_id=thread.id,
            tool_outputs=[{"tool_call_id": call.id, "output": "x"}],
        )
        assert run.status == "incomplete"
        assert run.incomplete_details.reason == "max_completion_tokens"  # type: ignore[union-attr]
        assert run.usage is not None
        assert run.usage.completion_tokens == 256
        assert len(model.requests(marker)) == 1  # the budget was spent: no second call


class TestMaxPromptTokens:
    def test_a_prompt_that_cannot_fit(
        self, client: OpenAI, assistant: Assistant, model: ScriptedModel, marker: str
    ) -> None:
        huge = " ".join([WORDS] * 100) + f" {marker}"  # ~1900 tokens in one message
        thread = client.beta.threads.create(messages=[{"role": "user", "content": huge}])
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id, max_prompt_tokens=256
        )
        assert run.status == "incomplete"
        assert run.incomplete_details is not None
        assert run.incomplete_details.reason == "max_prompt_tokens"
        assert run.usage is not None
        assert model.requests(marker) == []  # the backend was never asked
        assert [m.role for m in client.beta.threads.messages.list(thread.id)] == ["user"]

    def test_a_long_thread_is_truncated_to_the_budget(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        # tool definitions are part of the prompt too: give them some weight
        assistant = client.beta.assistants.create(
            model="gpt-4o", tools=[function_tool("lookup", "Look a thing up. " * 25)]
        )
        thread_id, texts = long_thread(client, marker, 30, words=1)
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread_id, assistant_id=assistant.id, max_prompt_tokens=256
        )
        assert run.status == "completed", run.last_error
        [sent] = model.requests(marker)
        assert_dropped_from_the_middle(user_texts(sent), texts)
        assert run.usage is not None
        # the backend's own count (tool definitions included) stays within the budget
        assert run.usage.prompt_tokens <= 256, run.usage


class TestTruncationStrategy:
    def test_last_messages(
        self, client: OpenAI, assistant: Assistant, model: ScriptedModel, marker: str
    ) -> None:
        thread_id, texts = long_thread(client, marker, 6, words=1)
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread_id,
            assistant_id=assistant.id,
            truncation_strategy={"type": "last_messages", "last_messages": 2},
        )
        assert run.status == "completed"
        [sent] = model.requests(marker)
        assert sent["messages"][0]["role"] == "system"
        assert user_texts(sent) == texts[-2:]
        assert len(sent["messages"]) == 3

    def test_last_messages_keeps_the_runs_own_turns(
        self, client: OpenAI, assistant: Assistant, model: ScriptedModel, marker: str
    ) -> None:
        thread_id, texts = long_thread(client, marker, 4, words=1)
        model.script(marker, Reply(tool_calls=[ToolCall("lookup", "{}")]), Reply(text="ok"))
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread_id,
            assistant_id=assistant.id,
            truncation_strategy={"type": "last_messages", "last_messages": 1},
        )
        call = run.required_action.submit_tool_outputs.tool_calls[0]  # type: ignore[union-attr]
        run = client.beta.threads.runs.submit_tool_outputs_and_poll(
            run_id=run.id,
            thread_id=thread_id,
            tool_outputs=[{"tool_call_id": call.id, "output": "x"}],
        )
        assert run.status == "completed"
        last = model.requests(marker)[-1]["messages"]
        assert [m["role"] for m in last] == ["system", "user", "assistant", "tool"]
        assert last[1]["content"] == texts[-1]


@pytest.fixture(scope="module")
def limited(tuned_server: Callable[..., Tuned], model: ScriptedModel, work_dir: Path) -> OpenAI:
    """A server with a tiny-window model (`tiny`) and at most 3 model calls per run."""
    models_file = work_dir / "models-limits.yaml"
    models_file.write_text(
        f"backends:\n  scripted:\n    base_url: {model.base_url}\n"
        "models:\n"
        "  tiny:\n    backend: scripted\n    upstream_model: gpt-4o\n"
        "    context_window: 600\n    max_output_tokens: 100\n"
        "default:\n  backend: scripted\n"
    )
    tuned = tuned_server(
        {"ASSISTANTD_MODELS_FILE": str(models_file), "ASSISTANTD_MAX_MODEL_TURNS": "3"}
    )
    return tuned.client


class TestContextWindow:
    def test_auto_truncation_fits_the_window(
        self, limited: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        assistant = limited.beta.assistants.create(
            model="tiny", instructions="Sys.", tools=[function_tool("lookup")]
        )
        thread_id, texts = long_thread(limited, marker, 40)
        run = limited.beta.threads.runs.create_and_poll(
            thread_id=thread_id, assistant_id=assistant.id
        )
        assert run.status == "completed", run.last_error
        [sent] = model.requests(marker)
        assert sent["model"] == "gpt-4o"
        assert sent["max_tokens"] == 100  # the model's output limit
        assert sent["messages"][0] == {"role": "system", "content": "Sys."}
        assert_dropped_from_the_middle(user_texts(sent), texts)
        assert run.usage is not None
        assert run.usage.prompt_tokens <= 600 - 100

    def test_cut_by_the_models_cap_under_a_larger_budget(
        self, limited: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        """The model's cap (100 tokens) cut the answer, not the run's budget: completed."""
        assistant = limited.beta.assistants.create(model="tiny")
        thread = limited.beta.threads.create(messages=[{"role": "user", "content": marker}])
        model.script(marker, Reply(text="cut", finish_reason="length", usage=(10, 100)))
        run = limited.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id, max_completion_tokens=1000
        )
        assert run.status == "completed"
        [sent] = model.requests(marker)
        assert sent["max_tokens"] == 100
        [message] = limited.beta.threads.messages.list(thread.id, run_id=run.id).data
        assert message.status == "incomplete"
        assert message.incomplete_details.reason == "max_tokens"  # type: ignore[union-attr]

    def test_cut_by_what_is_left_of_the_budget(
        self, limited: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        """After a first turn, 56 tokens of the budget remain, under the model's cap: the
        second turn cut short makes the run incomplete."""
        assistant = limited.beta.assistants.create(model="tiny", tools=[function_tool("lookup")])
        thread = limited.beta.threads.create(messages=[{"role": "user", "content": marker}])
        model.script(
            marker,
            Reply(tool_calls=[ToolCall("lookup", "{}")], usage=(10, 200)),
            Reply(text="cut", finish_reason="length", usage=(10, 56)),
        )
        run = limited.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id, max_completion_tokens=256
        )
        call = run.required_action.submit_tool_outputs.tool_calls[0]  # type: ignore[union-attr]
        run = limited.beta.threads.runs.submit_tool_outputs_and_poll(
            run_id=run.id,
            thread_id=thread.id,
            tool_outputs=[{"tool_call_id": call.id, "output": "x"}],
        )
        assert run.status == "incomplete"
        assert run.incomplete_details.reason == "max_completion_tokens"  # type: ignore[union-attr]
        assert model.requests(marker)[-1]["max_tokens"] == 56

    def test_a_message_larger_than_the_window_fails(
        self, limited: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        assistant = limited.beta.assistants.create(model="tiny")
        huge = " ".join([WORDS] * 60) + f" {marker}"
        thread = limited.beta.threads.create(messages=[{"role": "user", "content": huge}])
        run = limited.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id
        )
        assert run.status == "failed"
        assert run.last_error is not None
        assert run.last_error.code == "invalid_prompt"
        assert "context window" in run.last_error.message
        assert "'tiny'" in run.last_error.message
        assert model.requests(marker) == []


class TestModelTurns:
    def test_a_server_answered_tool_loop_is_bounded(
        self, limited: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        assistant = limited.beta.assistants.create(model="gpt-4o", tools=[function_tool("lookup")])
        thread = limited.beta.threads.create(messages=[{"role": "user", "content": marker}])
        model.script(marker, Reply(tool_calls=[ToolCall("invented", "{}")]))  # forever
        run = limited.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id
        )
        assert run.status == "failed"
        assert run.last_error is not None
        assert run.last_error.code == "server_error"
        assert "ASSISTANTD_MAX_MODEL_TURNS" in run.last_error.message
        assert len(model.requests(marker)) == 3

    def test_a_client_tool_loop_is_bounded(
        self, limited: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        assistant = limited.beta.assistants.create(model="gpt-4o", tools=[function_tool("lookup")])
        thread = limited.beta.threads.create(messages=[{"role": "user", "content": marker}])
        model.script(marker, Reply(tool_calls=[ToolCall("lookup", "{}")]))  # forever
        run = limited.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id
        )
        rounds = 0
        while run.status == "requires_action":
            rounds += 1
            call = run.required_action.submit_tool_outputs.tool_calls[0]  # type: ignore[union-attr]
            run = limited.beta.threads.runs.submit_tool_outputs_and_poll(
                run_id=run.id,
                thread_id=thread.id,
                tool_outputs=[{"tool_call_id": call.id, "output": "again"}],
            )
            assert rounds <= 3
        assert rounds == 3
        assert run.status == "failed"
        assert run.last_error is not None
        assert "3 model calls" in run.last_error.message
