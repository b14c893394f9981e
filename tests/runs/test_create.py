"""Creating runs through the official clients: the run object, overrides and defaults, the
assistant's message, listing, modifying and retrieving runs, and what create refuses."""

from __future__ import annotations

import time

import httpx
import pytest
from openai import AzureOpenAI, BadRequestError, NotFoundError, OpenAI
from openai.types.beta import Assistant

from tests.runs.conftest import RUN_KEYS, function_tool, sent_keys, wait_run
from tests.support.scripted_model import Reply, ScriptedModel, ToolCall
from tests.support.server import LiveServer


class TestCreateAndPoll:
    def test_text_run_object(
        self, client: OpenAI, assistant: Assistant, model: ScriptedModel, marker: str
    ) -> None:
        thread = client.beta.threads.create(messages=[{"role": "user", "content": marker}])
        model.script(marker, Reply(text=["Hello", " there", "."], usage=(11, 3)))
        before = int(time.time())
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id
        )
        assert run.status == "completed", run.last_error
        assert sent_keys(run) == RUN_KEYS
        assert run.id.startswith("run_")
        assert run.object == "thread.run"
        assert run.thread_id == thread.id
        assert run.assistant_id == assistant.id
        assert run.model == "gpt-4o"
        assert run.instructions == "You are terse."
        assert [t.model_dump(exclude_unset=True) for t in run.tools] == [
            {
                **function_tool("lookup"),
                "function": {
                    **function_tool("lookup")["function"],
                    "description": None,
                    "strict": False,
                },
            }
        ]
        assert run.required_action is None
        assert run.last_error is None
        assert run.incomplete_details is None
        assert run.cancelled_at is None
        assert run.failed_at is None
        assert run.expires_at is None  # terminal
        assert before - 1 <= run.created_at <= run.started_at <= run.completed_at  # type: ignore[operator]
        assert run.completed_at <= int(time.time())  # type: ignore[operator]
        assert run.usage is not None
        assert run.usage.model_dump() == {
            "prompt_tokens": 11,
            "completion_tokens": 3,
            "total_tokens": 14,
        }
        assert run.metadata == {}
        assert run.max_prompt_tokens is None
        assert run.max_completion_tokens is None
        assert run.truncation_strategy is not None
        assert run.truncation_strategy.model_dump() == {"type": "auto", "last_messages": None}
        assert run.tool_choice == "auto"
        assert run.parallel_tool_calls is True
        assert run.response_format == "auto"

    def test_created_run_is_queued_without_usage(
        self, client: OpenAI, assistant: Assistant, marker: str
    ) -> None:
        thread = client.beta.threads.create(messages=[{"role": "user", "content": marker}])
        run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
        assert sent_keys(run) == RUN_KEYS
        assert run.status in {"queued", "in_progress", "completed"}
        if run.status == "queued":
            assert run.usage is None
            assert run.started_at is None
            assert run.completed_at is None
            assert run.expires_at is not None
            assert run.expires_at - run.created_at == 600
        done = wait_run(client, thread.id, run.id, {"completed"})
        assert done.usage is not None
        assert done.expires_at is None

    def test_azure_create_and_poll(
        self, azure_client: AzureOpenAI, model: ScriptedModel, marker: str
    ) -> None:
        assistant = azure_client.beta.assistants.create(model="gpt-4o", instructions="Be kind.")
        thread = azure_client.beta.threads.create(messages=[{"role": "user", "content": marker}])
        model.script(marker, Reply(text="Hi from Azure."))
        run = azure_client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id
        )
        assert run.status == "completed", run.last_error
        assert sent_keys(run) == RUN_KEYS
        messages = azure_client.beta.threads.messages.list(thread.id, order="asc").data
        assert messages[-1].content[0].text.value == "Hi from Azure."  # type: ignore[union-attr]

    def test_poll_after_header(
        self, client: OpenAI, server: LiveServer, assistant: Assistant, marker: str
    ) -> None:
        thread = client.beta.threads.create(messages=[{"role": "user", "content": marker}])
        run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
        raw = client.beta.threads.runs.with_raw_response.retrieve(run.id, thread_id=thread.id)
        assert raw.headers["openai-poll-after-ms"] == "25"
        assert raw.parse().id == run.id
        wait_run(client, thread.id, run.id, {"completed"})


class TestOverrides:
    def test_instructions_model_tools_sampling_metadata(
        self, client: OpenAI, assistant: Assistant, model: ScriptedModel, marker: str
    ) -> None:
        thread = client.beta.threads.create(messages=[{"role": "user", "content": marker}])
        tools = [function_tool("other", "Another tool.")]
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread.id,
            assistant_id=assistant.id,
            model="gpt-4o-mini",
            instructions="Override.",
            additional_instructions="Also this.",
            tools=tools,  # type: ignore[list-item]
            temperature=0.3,
            top_p=0.9,
            metadata={"k": "v"},
            max_prompt_tokens=5000,
            max_completion_tokens=700,
            truncation_strategy={"type": "last_messages", "last_messages": 5},
            tool_choice={"type": "function", "function": {"name": "other"}},
            parallel_tool_calls=False,
            response_format={"type": "json_object"},
        )
        assert run.model == "gpt-4o-mini"
        assert run.instructions == "Override.\n\nAlso this."
        assert [t.model_dump(exclude_unset=True) for t in run.tools] == [
            {
                "type": "function",
                "function": {
                    "name": "other",
                    "description": "Another tool.",
                    "parameters": tools[0]["function"]["parameters"],
                    "strict": False,
                },
            }
        ]
        assert run.temperature == 0.3
        assert run.top_p == 0.9
        assert run.metadata == {"k": "v"}
        assert run.max_prompt_tokens == 5000
        assert run.max_completion_tokens == 700
        assert run.truncation_strategy is not None
        assert run.truncation_strategy.model_dump() == {"type": "last_messages", "last_messages": 5}
        assert run.tool_choice is not None
        assert run.tool_choice.model_dump() == {  # type: ignore[union-attr]
            "type": "function",
            "function": {"name": "other"},
        }
        assert run.parallel_tool_calls is False
        assert run.response_format is not None
        assert run.response_format.model_dump() == {"type": "json_object"}  # type: ignore[union-attr]
        sent = model.requests(marker)[-1]
        assert sent["model"] == "gpt-4o-mini"
        assert sent["messages"][0] == {"role": "system", "content": "Override.\n\nAlso this."}

    def test_additional_instructions_append_to_the_assistants(
        self, client: OpenAI, assistant: Assistant, model: ScriptedModel, marker: str
    ) -> None:
        thread = client.beta.threads.create(messages=[{"role": "user", "content": marker}])
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id, additional_instructions="Use French."
        )
        assert run.instructions == "You are terse.\n\nUse French."
        assert model.requests(marker)[-1]["messages"][0]["content"] == run.instructions

    def test_assistant_sampling_is_the_default(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        assistant = client.beta.assistants.create(
            model="gpt-4o",
            temperature=0.2,
            top_p=0.5,
            response_format={"type": "json_object"},
        )
        thread = client.beta.threads.create(messages=[{"role": "user", "content": marker}])
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id
        )
        assert run.status == "completed"
        assert (run.temperature, run.top_p) == (0.2, 0.5)
        assert run.response_format.model_dump() == {"type": "json_object"}  # type: ignore[union-attr]
        assert run.instructions == ""
        assert run.tools == []
        sent = model.requests(marker)[-1]
        assert (sent["temperature"], sent["top_p"]) == (0.2, 0.5)
        assert sent["messages"][0]["role"] == "user"  # no empty system message

    def test_additional_messages_join_the_thread_before_the_run(
        self, client: OpenAI, assistant: Assistant, model: ScriptedModel, marker: str
    ) -> None:
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "first"}])
        model.script(marker, Reply(text="Noted."))
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread.id,
            assistant_id=assistant.id,
            additional_messages=[
                {"role": "user", "content": f"{marker} second", "metadata": {"n": "2"}},
                {"role": "assistant", "content": "an earlier answer"},
            ],
        )
        assert run.status == "completed"
        listed = client.beta.threads.messages.list(thread.id, order="asc").data
        assert [(m.role, m.content[0].text.value) for m in listed] == [  # type: ignore[union-attr]
            ("user", "first"),
            ("user", f"{marker} second"),
            ("assistant", "an earlier answer"),
            ("assistant", "Noted."),
        ]
        assert listed[1].metadata == {"n": "2"}
        assert listed[1].run_id is None  # added by the client, not written by the run
        sent = model.requests(marker)[-1]["messages"]
        assert sent[1:] == [
            {"role": "user", "content": "first"},
            {"role": "user", "content": f"{marker} second"},
            {"role": "assistant", "content": "an earlier answer"},
        ]


class TestAssistantMessage:
    def test_message_shape(
        self, client: OpenAI, assistant: Assistant, model: ScriptedModel, marker: str
    ) -> None:
        thread = client.beta.threads.create(messages=[{"role": "user", "content": marker}])
        model.script(marker, Reply(text="The answer."))
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id
        )
        listed = client.beta.threads.messages.list(thread.id, run_id=run.id).data
        assert len(listed) == 1
        message = listed[0]
        assert message.model_dump(exclude_unset=True) == {
            "id": message.id,
            "object": "thread.message",
            "created_at": message.created_at,
            "thread_id": thread.id,
            "status": "completed",
            "incomplete_details": None,
            "completed_at": message.completed_at,
            "incomplete_at": None,
            "role": "assistant",
            "content": [{"type": "text", "text": {"value": "The answer.", "annotations": []}}],
            "assistant_id": assistant.id,
            "run_id": run.id,
            "attachments": [],
            "metadata": {},
        }
        assert run.created_at <= message.created_at <= message.completed_at  # type: ignore[operator]
        again = client.beta.threads.messages.retrieve(message.id, thread_id=thread.id)
        assert again == message


class TestListRetrieveModify:
    def test_list_and_paginate(
        self, client: OpenAI, assistant: Assistant, model: ScriptedModel, marker: str
    ) -> None:
        thread = client.beta.threads.create(messages=[{"role": "user", "content": marker}])
        ids = []
        for _ in range(3):
            run = client.beta.threads.runs.create_and_poll(
                thread_id=thread.id, assistant_id=assistant.id
            )
            assert run.status == "completed"
            ids.append(run.id)
        page = client.beta.threads.runs.list(thread.id)
        assert [r.id for r in page.data] == ids[::-1]  # newest first by default
        assert page.has_more is False
        assert [r.id for r in client.beta.threads.runs.list(thread.id, order="asc")] == ids
        first = client.beta.threads.runs.list(thread.id, limit=2, order="asc")
        assert [r.id for r in first.data] == ids[:2]
        assert first.has_more is True
        assert first.first_id == ids[0]
        assert first.last_id == ids[1]
        # the SDK follows `after` through every page
        assert [r.id for r in client.beta.threads.runs.list(thread.id, limit=1, order="asc")] == ids
        before = client.beta.threads.runs.list(thread.id, before=ids[2], order="asc")
        assert [r.id for r in before.data] == ids[:2]
        for listed in page.data:
            assert sent_keys(listed) == RUN_KEYS

    def test_empty_list(self, client: OpenAI) -> None:
        thread = client.beta.threads.create()
        page = client.beta.threads.runs.list(thread.id)
        assert page.data == []
        assert page.has_more is False
        assert page.first_id is None
        assert page.last_id is None

    def test_modify_metadata(self, client: OpenAI, assistant: Assistant, marker: str) -> None:
        thread = client.beta.threads.create(messages=[{"role": "user", "content": marker}])
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id, metadata={"a": "1"}
        )
        changed = client.beta.threads.runs.update(run.id, thread_id=thread.id, metadata={"b": "2"})
        assert changed.metadata == {"b": "2"}
        assert changed.status == "completed"
        assert client.beta.threads.runs.retrieve(run.id, thread_id=thread.id).metadata == {"b": "2"}
        untouched = client.beta.threads.runs.update(run.id, thread_id=thread.id)
        assert untouched.metadata == {"b": "2"}
        with pytest.raises(BadRequestError):
            client.beta.threads.runs.update(
                run.id,
                thread_id=thread.id,
                extra_body={"instructions": "no"},
            )

    def test_other_project_and_other_thread_get_404(
        self, client: OpenAI, other_client: OpenAI, assistant: Assistant, marker: str
    ) -> None:
        thread = client.beta.threads.create(messages=[{"role": "user", "content": marker}])
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id
        )
        with pytest.raises(NotFoundError):
            other_client.beta.threads.runs.retrieve(run.id, thread_id=thread.id)
        with pytest.raises(NotFoundError):
            other_client.beta.threads.runs.list(thread.id)
        elsewhere = client.beta.threads.create()
        with pytest.raises(NotFoundError):
            client.beta.threads.runs.retrieve(run.id, thread_id=elsewhere.id)
        with pytest.raises(NotFoundError):
            client.beta.threads.runs.retrieve("run_nope", thread_id=thread.id)


class TestCreateRefuses:
    def test_unknown_model_is_400_at_create(self, tuned_client: OpenAI) -> None:
        assistant = tuned_client.beta.assistants.create(model="routed")
        thread = tuned_client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
        with pytest.raises(BadRequestError) as caught:
            tuned_client.beta.threads.runs.create(
                thread_id=thread.id, assistant_id=assistant.id, model="no-such-model"
            )
        assert caught.value.code == "model_not_found"
        assert caught.value.param == "model"
        assert "no-such-model" in caught.value.message
        assert tuned_client.beta.threads.runs.list(thread.id).data == []

    def test_unknown_assistant_is_404(self, client: OpenAI) -> None:
        thread = client.beta.threads.create()
        with pytest.raises(NotFoundError):
            client.beta.threads.runs.create(thread_id=thread.id, assistant_id="asst_missing")

    def test_bad_parameters_are_400(self, client: OpenAI, assistant: Assistant) -> None:
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "x"}])
        bad: list[dict[str, object]] = [
            {"max_prompt_tokens": 255},
            {"max_completion_tokens": 10},
            {"temperature": 2.5},
            {"top_p": -0.1},
            {"truncation_strategy": {"type": "last_messages"}},
            {"truncation_strategy": {"type": "last_messages", "last_messages": 0}},
            {"tool_choice": "sometimes"},
            {"tool_choice": {"type": "function", "function": {"name": "not_a_tool"}}},
            {"tool_choice": {"type": "code_interpreter"}},
            {"tools": [function_tool(f"f{i}") for i in range(21)]},
            {"response_format": {"type": "yaml"}},
            {"unknown_field": 1},
        ]
        for extra in bad:
            with pytest.raises(BadRequestError):
                client.beta.threads.runs.create(
                    thread_id=thread.id, assistant_id=assistant.id, extra_body=extra
                )
        assert client.beta.threads.runs.list(thread.id).data == []

    def test_thread_lock(
        self, client: OpenAI, assistant: Assistant, model: ScriptedModel, marker: str
    ) -> None:
        thread = client.beta.threads.create(messages=[{"role": "user", "content": marker}])
        model.script(marker, Reply(tool_calls=[ToolCall("lookup", "{}")]))
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id
        )
        assert run.status == "requires_action"
        with pytest.raises(BadRequestError) as caught:
            client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
        assert caught.value.type == "invalid_request_error"
        assert caught.value.message.endswith(
            f"Thread {thread.id} already has an active run {run.id}."
        )
        with pytest.raises(BadRequestError) as caught:
            client.beta.threads.messages.create(thread.id, role="user", content="more")
        assert f"while a run {run.id} is active" in caught.value.message
        # additional_messages do not slip past the lock either
        with pytest.raises(BadRequestError):
            client.beta.threads.runs.create(
                thread_id=thread.id,
                assistant_id=assistant.id,
                additional_messages=[{"role": "user", "content": "sneaky"}],
            )
        assert len(client.beta.threads.messages.list(thread.id).data) == 1
        # another thread is not locked
        other = client.beta.threads.create(messages=[{"role": "user", "content": "free"}])
        assert (
            client.beta.threads.runs.create_and_poll(
                thread_id=other.id, assistant_id=assistant.id
            ).status
            == "completed"
        )
        client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
        client.beta.threads.messages.create(thread.id, role="user", content="unlocked")

    def test_concurrent_creates_on_one_thread_start_one_run(
        self, server: LiveServer, api_key: str, assistant: Assistant, marker: str
    ) -> None:
        """The lock holds across concurrent requests: exactly one of them creates a run."""
        import concurrent.futures

        headers = {"Authorization": f"Bearer {api_key}", "OpenAI-Beta": "assistants=v2"}
        with httpx.Client(base_url=f"{server.url}/v1", headers=headers, timeout=30) as http:
            thread = http.post(
                "/threads", json={"messages": [{"role": "user", "content": marker}]}
            ).json()
            body = {"assistant_id": assistant.id}

            def create(_: int) -> int:
                return http.post(f"/threads/{thread['id']}/runs", json=body).status_code

            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                codes = list(pool.map(create, range(8)))
            runs = http.get(f"/threads/{thread['id']}/runs").json()["data"]
        assert sorted(codes) == [200] + [400] * 7 or (
            # a run may complete before a late request arrives, which may then start another
            codes.count(200) == len(runs) and codes.count(200) + codes.count(400) == 8
        )
        assert len(runs) == codes.count(200)


@pytest.fixture(scope="module")
def tuned_client(tuned_server: object, model: ScriptedModel, work_dir: object) -> OpenAI:
    """A server whose models file routes only `routed`; other names are unknown."""
    from pathlib import Path

    assert isinstance(work_dir, Path)
    models_file = work_dir / "models-create.yaml"
    models_file.write_text(
        f"backends:\n  scripted:\n    base_url: {model.base_url}\n"
        "models:\n  routed:\n    backend: scripted\n    upstream_model: gpt-4o\n"
    )
    start = tuned_server
    tuned = start(  # type: ignore[operator]
        {"ASSISTANTD_MODELS_FILE": str(models_file), "ASSISTANTD_MODEL_BASE_URL": ""}
    )
    return tuned.client  # type: ignore[no-any-return]
