"""Compaction: `POST /responses/compact`, compaction items as input, and a response that
compacts its own context (`context_management`, a final `compaction_trigger`)."""

from __future__ import annotations

import json
from typing import Any, TypeVar

import httpx
import pytest
from openai import AzureOpenAI, BadRequestError, NotFoundError, OpenAI
from openai.types.responses import (
    CompactedResponse,
    Response,
    ResponseCompactionItem,
    ResponseInputMessageItem,
    ResponseStreamEvent,
)
from pydantic import BaseModel, TypeAdapter

from assistantd.runs.compaction import PROMPT, SUMMARY_HEADER
from tests.responses.conftest import raw_events
from tests.support.scripted_model import Reply, ScriptedModel

M = TypeVar("M", bound=BaseModel)

STREAM_EVENT: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)


# Fields OpenAI sends that the SDK's types lack, not compaction's business: the response's
# `store`, `presence_penalty` and `frequency_penalty`, the deltas' `obfuscation`.
KNOWN_EXTRAS = {
    "Response": {"store", "presence_penalty", "frequency_penalty"},
    "ResponseTextDeltaEvent": {"obfuscation"},
}


def no_extras(value: Any) -> None:
    """Every field of the parsed object is one the SDK's type declares."""
    if isinstance(value, BaseModel):
        extra = set(value.model_extra or ()) - KNOWN_EXTRAS.get(type(value).__name__, set())
        assert not extra, f"{type(value).__name__}: {extra}"
        for name in type(value).model_fields:
            no_extras(getattr(value, name))
    elif isinstance(value, list):
        for element in value:
            no_extras(element)


def strictly(model: type[M], data: Any) -> M:
    parsed = model.model_validate(data, strict=True)
    no_extras(parsed)
    return parsed


def compacted(raw: dict[str, Any]) -> tuple[list[ResponseInputMessageItem], ResponseCompactionItem]:
    """A `response.compaction` object parsed strictly: the SDK types its output as output
    items, whose message type is the assistant's; the user messages it holds (as the spec's
    example shows) are parsed as the input messages they are."""
    *kept, last = raw["output"]
    strictly(CompactedResponse, {**raw, "output": [last]})
    messages = [strictly(ResponseInputMessageItem, item) for item in kept]
    return messages, strictly(ResponseCompactionItem, last)


def compact_raw(client: OpenAI | AzureOpenAI, **body: Any) -> dict[str, Any]:
    answer = client.responses.with_raw_response.compact(**body)
    data: dict[str, Any] = json.loads(answer.content)
    return data


def summary_for(model: ScriptedModel, text: str, usage: tuple[int, int] = (321, 45)) -> None:
    """The next summary requests get `text`."""
    model.script(PROMPT, Reply(text=text, usage=usage))


def history(marker: str) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": f"{marker} plan a trip to Oslo"},
        {
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": "Pack a warm coat.", "annotations": []}],
        },
        {"type": "function_call", "call_id": "call_w1", "name": "weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_w1", "output": "-5C and snow"},
        {"role": "user", "content": "and the hotel?"},
    ]


class TestCompact:
    def test_by_input(self, client: OpenAI, model: ScriptedModel, marker: str) -> None:
        summary_for(model, f"Trip to Oslo {marker}: cold, snow.")
        raw = compact_raw(
            client,
            model="gpt-4o",
            input=history(marker),
            instructions="You plan trips.",
            # what Codex sends besides the spec's fields
            extra_body={
                "tools": [{"type": "function", "name": "weather", "description": "Weather now."}],
                "parallel_tool_calls": True,
                "reasoning": {"effort": "low"},
                "text": {"verbosity": "low"},
            },
        )
        messages, item = compacted(raw)
        assert raw["object"] == "response.compaction"
        assert raw["id"].startswith("resp_")
        assert [m.content[0].text for m in messages] == [  # type: ignore[union-attr]
            f"{marker} plan a trip to Oslo",
            "and the hotel?",
        ]
        assert all(m.role == "user" and m.id.startswith("msg_") for m in messages)
        assert item.id.startswith("cmp_")
        assert marker not in item.encrypted_content  # sealed, not readable
        assert raw["usage"]["input_tokens"] == 321
        assert raw["usage"]["output_tokens"] == 45
        assert raw["usage"]["total_tokens"] == 366
        [sent] = model.requests(PROMPT)[-1:]
        assert "tools" not in sent
        texts = json.dumps(sent["messages"])
        assert "Pack a warm coat." in texts
        assert "-5C and snow" in texts
        assert sent["messages"][0] == {"role": "system", "content": "You plan trips."}
        assert "weather: Weather now." in sent["messages"][1]["content"]
        assert sent["messages"][-1] == {"role": "user", "content": PROMPT}

    def test_codex_request(self, client: OpenAI, model: ScriptedModel, marker: str) -> None:
        """The body Codex's compact client sends (codex-api CompactionInput)."""
        summary_for(model, f"Codex ran {marker}.")
        body = {
            "model": "gpt-5-codex",
            "input": [
                {
                    "type": "message",
                    "role": "developer",
                    "content": [
                        {"type": "input_text", "text": "<permissions>read-only</permissions>"}
                    ],
                },
                {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": f"{marker} run python"}],
                },
                {
                    "type": "function_call",
                    "status": "completed",
                    "name": "exec_command",
                    "arguments": '{"cmd": "python3 -c \'print(2+2)\'"}',
                    "call_id": "call_codex1",
                },
                {
                    "type": "function_call_output",
                    "id": "fco_01a25156-95e1-77b1-b951-d56590d6c613",
                    "call_id": "call_codex1",
                    "output": "Process exited with code 0\nOutput:\n4\n",
                },
            ],
            "instructions": "You are Codex.",
            "tools": [
                {
                    "type": "function",
                    "name": "exec_command",
                    "description": "Runs a command in a PTY.",
                    "strict": False,
                    "parameters": {"type": "object", "properties": {}},
                },
                {
                    "type": "namespace",
                    "name": "multi_agent_v1",
                    "description": "Tools for sub-agents.",
                    "tools": [{"type": "function", "name": "close_agent", "parameters": {}}],
                },
                {"type": "web_search", "external_web_access": False},
            ],
            "parallel_tool_calls": True,
            "reasoning": {"summary": "auto"},
            "prompt_cache_key": "01a25156-907e-7e90-911b-f6bc2dfc9ae4",
            "text": {"verbosity": "low"},
            "client_metadata": {"session_id": "01a25156-907e-7e90-911b-f6bc2dfc9ae4"},
        }
        answer = httpx.post(
            f"{client.base_url}responses/compact",
            json=body,
            headers={
                "Authorization": f"Bearer {client.api_key}",
                "x-codex-beta-features": "remote_compaction_v2",
            },
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        messages, item = compacted(answer.json())
        assert [m.role for m in messages] == ["user"]
        sent = model.requests(PROMPT)[-1]["messages"]
        assert "exec_command: Runs a command in a PTY." in sent[1]["content"]
        assert "- web_search" in sent[1]["content"]
        assert "print(2+2)" in json.dumps(sent)
        # Codex keeps the output as its history and sends it back on the next turn
        model.script(marker, Reply(text="Next turn."))
        turn = client.responses.create(
            model="gpt-5-codex", input=[*answer.json()["output"], {"role": "user", "content": "go"}]
        )
        assert turn.output_text == "Next turn."
        assert f"Codex ran {marker}." in json.dumps(model.requests(marker)[-1]["messages"])
        assert item.encrypted_content

    def test_a_reasoning_model_summarises(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        model.script(
            PROMPT,
            Reply(text="The plain summary.", reasoning="Let me think.", reasoning_tokens=7),
        )
        raw = compact_raw(client, model="gpt-4o", input=f"{marker} think first")
        assert raw["usage"]["output_tokens_details"]["reasoning_tokens"] == 7
        model.script(marker, Reply(text="ok"))
        client.responses.create(
            model="gpt-4o", input=[raw["output"][-1], {"role": "user", "content": f"{marker} go"}]
        )
        sent = json.dumps(model.requests(f"{marker} go")[-1]["messages"])
        assert "The plain summary." in sent
        assert "Let me think." not in sent

    def test_sdk_object(self, client: OpenAI, model: ScriptedModel, marker: str) -> None:
        summary_for(model, "A short summary.")
        result = client.responses.compact(model="gpt-4o", input=f"{marker} hello")
        assert isinstance(result, CompactedResponse)
        assert result.object == "response.compaction"
        assert result.output[-1].type == "compaction"
        assert result.usage.total_tokens == 366

    def test_by_previous_response(self, client: OpenAI, model: ScriptedModel, marker: str) -> None:
        model.script(marker, Reply(text="Bergen is rainy."))
        first = client.responses.create(model="gpt-4o", input=f"{marker} tell me about Bergen")
        summary_for(model, f"Bergen {marker}: rainy.")
        raw = compact_raw(
            client, model="gpt-4o", previous_response_id=first.id, input="and Tromso?"
        )
        messages, _ = compacted(raw)
        texts = [m.content[0].text for m in messages]  # type: ignore[union-attr]
        assert texts == [f"{marker} tell me about Bergen", "and Tromso?"]
        # the chain's message is the stored one
        assert messages[0].id == client.responses.input_items.list(first.id).data[0].id
        sent = model.requests(PROMPT)[-1]
        assert "Bergen is rainy." in json.dumps(sent["messages"])

    def test_azure_paths(
        self, azure_client: AzureOpenAI, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        summary_for(model, "Azure summary.")
        raw = compact_raw(azure_client, model="gpt-4o", input=f"{marker} via azure")
        compacted(raw)
        v1 = OpenAI(
            api_key=client.api_key, base_url=str(client.base_url).replace("/v1", "/openai/v1")
        )
        with v1:
            compacted(compact_raw(v1, model="gpt-4o", input=f"{marker} via azure v1"))

    def test_unknown_or_foreign_response_is_404(
        self, client: OpenAI, other_client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        with pytest.raises(NotFoundError):
            client.responses.compact(model="gpt-4o", previous_response_id="resp_nope")
        theirs = other_client.responses.create(model="gpt-4o", input=f"{marker} secret")
        with pytest.raises(NotFoundError) as caught:
            client.responses.compact(model="gpt-4o", previous_response_id=theirs.id)
        assert theirs.id in caught.value.message
        assert model.requests(PROMPT) == [] or all(
            f"{marker} secret" not in json.dumps(r["messages"]) for r in model.requests(PROMPT)
        )

    def test_bad_requests(self, client: OpenAI) -> None:
        with pytest.raises(BadRequestError) as caught:
            client.responses.compact(model="gpt-4o")
        assert caught.value.code == "missing_required_parameter"
        with pytest.raises(BadRequestError) as caught:
            client.responses.compact(
                model="gpt-4o", input="hi", extra_body={"text": {"format": {"type": "json_object"}}}
            )
        assert caught.value.param == "text.format"
        with pytest.raises(BadRequestError) as caught:
            client.responses.compact(model="gpt-4o", input=[{"type": "compaction_trigger"}])
        assert caught.value.param == "input[0]"


class TestCompactionItem:
    def test_expands_to_its_summary(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        summary_for(model, f"Oslo trip {marker}: the user needs a hotel.")
        raw = compact_raw(client, model="gpt-4o", input=history(marker))
        model.script(marker, Reply(text="Hotel Continental."))
        answer = client.responses.create(
            model="gpt-4o", input=[*raw["output"], {"role": "user", "content": "book it"}]
        )
        assert answer.output_text == "Hotel Continental."
        sent = model.requests(marker)[-1]["messages"]
        assert sent == [
            {"role": "user", "content": f"{marker} plan a trip to Oslo"},
            {"role": "user", "content": "and the hotel?"},
            {
                "role": "user",
                "content": f"{SUMMARY_HEADER}\n\nOslo trip {marker}: the user needs a hotel.",
            },
            {"role": "user", "content": "book it"},
        ]
        # the input items list it as it was given
        listed = client.responses.input_items.list(answer.id, order="asc").data
        assert [item.type for item in listed] == ["message", "message", "compaction", "message"]

    def test_whole_history_with_it(self, client: OpenAI, model: ScriptedModel, marker: str) -> None:
        """What came before the compaction item is its summary, but the user's messages."""
        summary_for(model, f"Summary {marker}.")
        raw = compact_raw(client, model="gpt-4o", input=history(marker))
        model.script(marker, Reply(text="ok"))
        client.responses.create(
            model="gpt-4o",
            input=[*history(marker), raw["output"][-1], {"role": "user", "content": "next"}],
        )
        sent = json.dumps(model.requests(marker)[-1]["messages"])
        assert f"Summary {marker}." in sent
        assert "Pack a warm coat." not in sent
        assert "-5C and snow" not in sent
        assert "and the hotel?" in sent

    def test_tampered_is_400_and_nothing_stored(
        self, client: OpenAI, other_client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        summary_for(model, "secret summary")
        raw = compact_raw(client, model="gpt-4o", input=f"{marker} start")
        item = raw["output"][-1]
        token = item["encrypted_content"]
        tampered = token[:20] + ("A" if token[20] != "A" else "B") + token[21:]
        conversation = client.conversations.create()
        for bad in (tampered, token[:-10], "not-a-token"):
            with pytest.raises(BadRequestError) as caught:
                client.responses.create(
                    model="gpt-4o",
                    input=[
                        {"type": "compaction", "encrypted_content": bad},
                        {"role": "user", "content": f"{marker} go on"},
                    ],
                    conversation=conversation.id,
                )
            assert caught.value.code == "invalid_encrypted_content"
            assert caught.value.param == "input[0].encrypted_content"
        with pytest.raises(BadRequestError) as caught:
            client.conversations.items.create(
                conversation.id,
                items=[{"type": "compaction", "encrypted_content": tampered}],  # type: ignore[list-item]
            )
        assert caught.value.code == "invalid_encrypted_content"
        assert client.conversations.items.list(conversation.id).data == []
        assert model.requests(f"{marker} go on") == []
        # another project cannot use it either
        with pytest.raises(BadRequestError) as caught:
            other_client.responses.create(
                model="gpt-4o", input=[item, {"role": "user", "content": "read it"}]
            )
        assert caught.value.code == "invalid_encrypted_content"


def long_answer(marker: str) -> str:
    return f"{marker} " + " ".join(f"detail{n}" for n in range(900))


class TestAutomaticCompaction:
    def test_context_management_streams_the_compaction(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        model.script(marker, Reply(text=long_answer(marker)), Reply(text="Short answer."))
        first = client.responses.create(model="gpt-4o", input=f"{marker} tell me everything")
        summary_for(model, f"Everything {marker}, summarised.")
        events = raw_events(
            client,
            "responses",
            body={
                "model": "gpt-4o",
                "previous_response_id": first.id,
                "input": "and in short?",
                "context_management": [{"type": "compaction", "compact_threshold": 1000}],
                "stream": True,
            },
        )
        parsed = [STREAM_EVENT.validate_python(event, strict=True) for event in events]
        for event in parsed:
            no_extras(event)
        assert [e["type"] for e in events] == [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.compaction.compacting",
            "response.output_item.done",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
        added, compacting, done = events[2:5]
        assert added["item"]["type"] == "compaction"
        assert added["output_index"] == 0
        assert compacting["item_id"] == added["item"]["id"] == done["item"]["id"]
        assert done["item"]["encrypted_content"]
        final = parsed[-1].response
        assert isinstance(final, Response)
        assert [item.type for item in final.output] == ["compaction", "message"]
        assert final.output_text == "Short answer."
        # the answer came from the compacted context
        answer_request = model.requests(marker)[-1]["messages"]
        sent = json.dumps(answer_request)
        assert "detail899" not in sent
        assert f"Everything {marker}, summarised." in sent
        assert answer_request[-1]["content"].startswith(SUMMARY_HEADER)
        # usage counts the compaction pass
        assert final.usage is not None
        assert final.usage.input_tokens > 321
        # and what continues the response sees it compacted too
        model.script(marker, Reply(text="Third."))
        third = client.responses.create(
            model="gpt-4o", previous_response_id=final.id, input="thanks"
        )
        assert third.output_text == "Third."
        sent = json.dumps(model.requests(marker)[-1]["messages"])
        assert "detail899" not in sent
        assert f"Everything {marker}, summarised." in sent

    def test_sdk_stream_helper(self, client: OpenAI, model: ScriptedModel, marker: str) -> None:
        model.script(marker, Reply(text=long_answer(marker)), Reply(text="Helper answer."))
        first = client.responses.create(model="gpt-4o", input=f"{marker} start")
        summary_for(model, "Helper summary.")
        with client.responses.stream(
            model="gpt-4o",
            previous_response_id=first.id,
            input="next",
            context_management=[{"type": "compaction", "compact_threshold": 1000}],
        ) as stream:
            kinds = [event.type for event in stream]
            final = stream.get_final_response()
        assert "response.compaction.compacting" in kinds
        assert [item.type for item in final.output] == ["compaction", "message"]
        assert final.output_text == "Helper answer."

    def test_threshold_counts_what_truncation_would_drop(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        huge = f"{marker} " + " ".join(f"detail{n}" for n in range(4000))  # past the window
        model.script(marker, Reply(text=huge), Reply(text="After."))
        first = client.responses.create(model="gpt-4o", input=f"{marker} everything")
        summary_for(model, "Huge, summarised.")
        second = client.responses.create(
            model="gpt-4o",
            previous_response_id=first.id,
            input="then?",
            truncation="auto",
            context_management=[{"type": "compaction", "compact_threshold": 5000}],
        )
        assert [item.type for item in second.output] == ["compaction", "message"]
        sent = json.dumps(model.requests(marker)[-1]["messages"])
        assert "Huge, summarised." in sent
        assert "detail3999" not in sent

    def test_below_the_threshold_nothing_happens(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        model.script(marker, Reply(text="Small."))
        response = client.responses.create(
            model="gpt-4o",
            input=f"{marker} hi",
            context_management=[{"type": "compaction", "compact_threshold": 1000}],
        )
        assert [item.type for item in response.output] == ["message"]

    def test_not_streamed(self, client: OpenAI, model: ScriptedModel, marker: str) -> None:
        model.script(marker, Reply(text=long_answer(marker)), Reply(text="Done."))
        first = client.responses.create(model="gpt-4o", input=f"{marker} go")
        summary_for(model, "Went.")
        second = client.responses.create(
            model="gpt-4o",
            previous_response_id=first.id,
            input="more",
            context_management=[{"type": "compaction", "compact_threshold": 1000}],
            store=False,
        )
        raw = second.model_dump(mode="json", exclude_unset=True)
        strictly(Response, raw)
        assert [item.type for item in second.output] == ["compaction", "message"]
        assert second.output_text == "Done."

    def test_compaction_trigger(self, client: OpenAI, model: ScriptedModel, marker: str) -> None:
        """Codex's remote compaction: the history, then a trigger; the response is only the
        compaction, streamed."""
        summary_for(model, f"Codex {marker}.")
        events = raw_events(
            client,
            "responses",
            body={
                "model": "gpt-4o",
                "input": [*history(marker), {"type": "compaction_trigger"}],
                "stream": True,
                "store": False,
            },
        )
        for event in events:
            no_extras(STREAM_EVENT.validate_python(event, strict=True))
        done = [e for e in events if e["type"] == "response.output_item.done"]
        assert [e["item"]["type"] for e in done] == ["compaction"]
        assert events[-1]["type"] == "response.completed"
        assert [i["type"] for i in events[-1]["response"]["output"]] == ["compaction"]
        assert model.requests(f"{marker} plan") == model.requests(PROMPT)[-1:]
        # the item continues the work
        model.script(marker, Reply(text="Continuing."))
        answer = client.responses.create(
            model="gpt-4o", input=[done[0]["item"], {"role": "user", "content": "go on"}]
        )
        assert answer.output_text == "Continuing."
        assert f"Codex {marker}." in json.dumps(model.requests(marker)[-1]["messages"])

    def test_trigger_must_be_last(self, client: OpenAI, marker: str) -> None:
        with pytest.raises(BadRequestError) as caught:
            client.responses.create(
                model="gpt-4o",
                input=[{"type": "compaction_trigger"}, {"role": "user", "content": marker}],
            )
        assert caught.value.param == "input[0]"
