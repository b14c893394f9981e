"""`POST /responses`: the request's fields, the response object, and what the model receives."""

from __future__ import annotations

import httpx
import pytest
from openai import BadRequestError, NotFoundError, OpenAI
from pydantic import BaseModel

from tests.responses.conftest import RESPONSE_KEYS, weather_tool
from tests.support.scripted_model import Reply, ScriptedModel, ToolCall


class TestTextAnswer:
    def test_string_input(self, client: OpenAI, model: ScriptedModel, marker: str) -> None:
        model.script(marker, Reply(text=["Hello ", "there."], usage=(12, 3)))
        response = client.responses.create(model="gpt-4o", input=f"hi {marker}")
        assert response.id.startswith("resp_")
        assert response.object == "response"
        assert response.status == "completed"
        assert response.output_text == "Hello there."
        [message] = response.output
        assert message.type == "message"
        assert message.id.startswith("msg_")
        assert message.role == "assistant"
        assert message.status == "completed"
        assert [part.type for part in message.content] == ["output_text"]
        assert message.content[0].annotations == []
        assert response.usage is not None
        assert (response.usage.input_tokens, response.usage.output_tokens) == (12, 3)
        assert response.usage.total_tokens == 15
        assert response.usage.input_tokens_details.cached_tokens == 0
        assert response.usage.output_tokens_details.reasoning_tokens == 0
        assert response.completed_at is not None
        assert response.error is None
        assert response.incomplete_details is None
        [sent] = model.requests(marker)
        assert sent["messages"] == [{"role": "user", "content": f"hi {marker}"}]

    def test_every_key_in_order_with_defaults(self, client: OpenAI, marker: str) -> None:
        response = client.responses.create(model="gpt-4o", input=marker)
        raw = client.responses.with_raw_response.retrieve(response.id).http_response.json()
        assert list(raw) == RESPONSE_KEYS
        assert raw["tool_choice"] == "auto"
        assert raw["tools"] == []
        assert raw["parallel_tool_calls"] is True
        assert raw["text"] == {"format": {"type": "text"}, "verbosity": "medium"}
        assert raw["truncation"] == "disabled"
        assert raw["store"] is True
        assert raw["background"] is False
        assert raw["temperature"] == 1.0
        assert raw["top_p"] == 1.0
        assert raw["metadata"] == {}
        assert raw["instructions"] is None
        assert raw["conversation"] is None
        assert raw["reasoning"] == {"effort": None, "summary": None}
        assert raw["service_tier"] == "default"
        assert raw["top_logprobs"] == 0
        assert "output_text" not in raw

    def test_parameters_are_echoed_and_sent(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        response = client.responses.create(
            model="gpt-4o-mini",
            input=marker,
            instructions="Answer in French.",
            temperature=0.3,
            top_p=0.9,
            max_output_tokens=300,
            metadata={"team": "blue"},
            user="user-1",
            safety_identifier="hash-1",
            prompt_cache_key="cache-1",
            prompt_cache_retention="24h",
            reasoning={"effort": "low", "summary": "auto"},
            text={"verbosity": "low"},
            truncation="auto",
            max_tool_calls=3,
            top_logprobs=0,
            service_tier="auto",
        )
        assert response.model == "gpt-4o-mini"
        assert response.instructions == "Answer in French."
        assert response.temperature == 0.3
        assert response.top_p == 0.9
        assert response.max_output_tokens == 300
        assert response.metadata == {"team": "blue"}
        assert response.user == "user-1"
        assert response.safety_identifier == "hash-1"
        assert response.prompt_cache_key == "cache-1"
        assert response.prompt_cache_retention == "24h"
        assert response.reasoning is not None
        assert (response.reasoning.effort, response.reasoning.summary) == ("low", "auto")
        assert response.text is not None
        assert response.text.verbosity == "low"
        assert response.truncation == "auto"
        assert response.max_tool_calls == 3
        [sent] = model.requests(marker)
        assert sent["model"] == "gpt-4o-mini"
        assert sent["messages"][0] == {"role": "system", "content": "Answer in French."}
        assert sent["temperature"] == 0.3
        assert sent["top_p"] == 0.9
        assert sent["max_tokens"] == 300
        assert sent["reasoning_effort"] == "low"

    def test_input_items_of_every_message_shape(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        client.responses.create(
            model="gpt-4o",
            input=[
                {"role": "developer", "content": "Be brief."},
                {"role": "system", "content": [{"type": "input_text", "text": "Rules."}]},
                {"type": "message", "role": "user", "content": "Earlier question"},
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [
                        {"type": "output_text", "text": "Earlier answer", "annotations": []}
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": marker},
                        {"type": "input_image", "image_url": "https://example.com/a.png"},
                    ],
                },
            ],
        )
        [sent] = model.requests(marker)
        assert sent["messages"] == [
            {"role": "system", "content": "Be brief."},
            {"role": "system", "content": "Rules."},
            {"role": "user", "content": "Earlier question"},
            {"role": "assistant", "content": "Earlier answer"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": marker},
                    {
                        "type": "image_url",
                        "image_url": {"url": "https://example.com/a.png", "detail": "auto"},
                    },
                ],
            },
        ]

    def test_input_file_reaches_the_model_as_its_text(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        uploaded = client.files.create(
            file=("notes.md", f"# Notes\nThe code word is {marker}.".encode()), purpose="user_data"
        )
        client.responses.create(
            model="gpt-4o",
            input=[
                {
                    "role": "user",
                    "content": [
                        {"type": "input_file", "file_id": uploaded.id},
                        {"type": "input_text", "text": "What is the code word?"},
                    ],
                }
            ],
        )
        [sent] = model.requests(marker)
        assert sent["messages"][0]["content"] == (
            f"[File: notes.md]\n# Notes\nThe code word is {marker}.\n\nWhat is the code word?"
        )


class TestFunctionCalls:
    def test_a_call_ends_the_response(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        model.script(marker, Reply(tool_calls=[ToolCall("get_weather", '{"city": "Oslo"}')]))
        response = client.responses.create(model="gpt-4o", input=marker, tools=[weather_tool()])
        assert response.status == "completed"
        [call] = response.output
        assert call.type == "function_call"
        assert call.id.startswith("fc_")
        assert call.call_id.startswith("call_")
        assert (call.name, call.arguments, call.status) == (
            "get_weather",
            '{"city": "Oslo"}',
            "completed",
        )
        assert response.output_text == ""
        assert response.tools[0].type == "function"
        assert response.tools[0].name == "get_weather"
        [sent] = model.requests(marker)
        assert sent["tools"] == [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "The weather in a city.",
                    "parameters": weather_tool()["parameters"],
                },
            }
        ]

    def test_parallel_calls_are_separate_items(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        model.script(
            marker,
            Reply(
                tool_calls=[
                    ToolCall("get_weather", '{"city": "Oslo"}'),
                    ToolCall("get_weather", '{"city": "Rome"}'),
                ]
            ),
        )
        response = client.responses.create(
            model="gpt-4o", input=marker, tools=[weather_tool()], parallel_tool_calls=True
        )
        calls = [item for item in response.output if item.type == "function_call"]
        assert [c.arguments for c in calls] == ['{"city": "Oslo"}', '{"city": "Rome"}']
        assert len({c.id for c in calls}) == len({c.call_id for c in calls}) == 2
        assert model.requests(marker)[0]["parallel_tool_calls"] is True

    @pytest.mark.parametrize(
        ("choice", "sent"),
        [
            ("none", "none"),
            ("required", "required"),
            (
                {"type": "function", "name": "get_time"},
                {"type": "function", "function": {"name": "get_time"}},
            ),
            (
                {
                    "type": "allowed_tools",
                    "mode": "required",
                    "tools": [{"type": "function", "name": "get_time"}],
                },
                "required",
            ),
        ],
    )
    def test_tool_choice_reaches_the_model(
        self, client: OpenAI, model: ScriptedModel, marker: str, choice: object, sent: object
    ) -> None:
        response = client.responses.create(
            model="gpt-4o",
            input=marker,
            tools=[weather_tool(), weather_tool("get_time")],
            tool_choice=choice,  # type: ignore[arg-type]
        )
        [request] = model.requests(marker)
        assert request["tool_choice"] == sent
        names = [tool["function"]["name"] for tool in request["tools"]]
        if isinstance(choice, dict) and choice["type"] == "allowed_tools":
            assert names == ["get_time"]
        else:
            assert names == ["get_weather", "get_time"]
        echoed = client.responses.with_raw_response.retrieve(response.id).http_response.json()
        assert echoed["tool_choice"] == choice

    def test_a_named_function_that_is_not_a_tool(self, client: OpenAI, marker: str) -> None:
        with pytest.raises(BadRequestError) as err:
            client.responses.create(
                model="gpt-4o",
                input=marker,
                tools=[weather_tool()],
                tool_choice={"type": "function", "name": "nope"},
            )
        assert err.value.body["param"] == "tool_choice.name"  # type: ignore[index]


@pytest.mark.parametrize(
    ("conversation", "param", "code"),
    [
        ({"id": "conv_x", "extra": 1}, "conversation.extra", "unknown_parameter"),
        ({}, "conversation.id", "missing_required_parameter"),
        (5, "conversation", "invalid_type"),
    ],
)
def test_a_malformed_conversation_names_what_is_wrong(
    client: OpenAI, marker: str, conversation: object, param: str, code: str
) -> None:
    with pytest.raises(BadRequestError) as err:
        client.responses.create(
            model="gpt-4o",
            input=marker,
            extra_body={"conversation": conversation},
        )
    assert (err.value.body["param"], err.value.code) == (param, code)  # type: ignore[index]


class Answer(BaseModel):
    city: str
    degrees: int


class TestStructuredOutput:
    def test_json_schema(self, client: OpenAI, model: ScriptedModel, marker: str) -> None:
        model.script(marker, Reply(text='{"city": "Oslo", "degrees": 4}'))
        parsed = client.responses.parse(model="gpt-4o", input=marker, text_format=Answer)
        assert parsed.output_parsed == Answer(city="Oslo", degrees=4)
        assert parsed.text is not None
        assert parsed.text.format is not None
        assert parsed.text.format.type == "json_schema"
        [sent] = model.requests(marker)
        fmt = sent["response_format"]
        assert fmt["type"] == "json_schema"
        assert fmt["json_schema"]["name"] == "Answer"
        assert fmt["json_schema"]["strict"] is True
        assert fmt["json_schema"]["schema"]["properties"].keys() == {"city", "degrees"}

    def test_json_object_needs_the_word_json(self, client: OpenAI, marker: str) -> None:
        with pytest.raises(BadRequestError) as err:
            client.responses.create(
                model="gpt-4o", input=marker, text={"format": {"type": "json_object"}}
            )
        assert "must contain the word 'json'" in err.value.message
        ok = client.responses.create(
            model="gpt-4o",
            input=f"Reply in JSON: {marker}",
            text={"format": {"type": "json_object"}},
        )
        assert ok.text is not None
        assert ok.text.format is not None
        assert ok.text.format.type == "json_object"


class TestLimits:
    def test_max_output_tokens_ends_incomplete(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        model.script(marker, Reply(text="cut off he", finish_reason="length"))
        response = client.responses.create(model="gpt-4o", input=marker, max_output_tokens=16)
        assert response.status == "incomplete"
        assert response.incomplete_details is not None
        assert response.incomplete_details.reason == "max_output_tokens"
        [message] = response.output
        assert message.status == "incomplete"
        assert response.output_text == "cut off he"
        assert response.completed_at is None
        assert response.usage is not None

    def test_a_backend_failure_fails_the_response(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        model.script(marker, Reply(status=500, error_message="the GPU caught fire"))
        response = client.responses.create(model="gpt-4o", input=marker)
        assert response.status == "failed"
        assert response.error is not None
        assert response.error.code == "server_error"
        assert "the GPU caught fire" in response.error.message
        assert response.output == []


class TestValidation:
    def test_model_is_required(self, client: OpenAI) -> None:
        with pytest.raises(BadRequestError) as err:
            client.responses.create(input="hi")  # type: ignore[call-arg]
        assert err.value.body == {  # type: ignore[comparison-overlap]
            "message": "Missing required parameter: 'model'.",
            "type": "invalid_request_error",
            "param": "model",
            "code": "missing_required_parameter",
        }

    def test_no_input_at_all(self, client: OpenAI) -> None:
        with pytest.raises(BadRequestError) as err:
            client.responses.create(model="gpt-4o")
        assert err.value.body["code"] == "missing_required_parameter"  # type: ignore[index]

    @pytest.mark.parametrize(
        ("extra", "param"),
        [
            ({"temperature": 3}, "temperature"),
            ({"top_p": 1.5}, "top_p"),
            ({"max_output_tokens": 15}, "max_output_tokens"),
            ({"max_tool_calls": 0}, "max_tool_calls"),
            ({"truncation": "sometimes"}, "truncation"),
            ({"include": ["bogus"]}, "include[0]"),
            ({"top_logprobs": 21}, "top_logprobs"),
            ({"metadata": {str(i): "v" for i in range(17)}}, "metadata"),
            ({"bogus": 1}, "bogus"),
            ({"tools": [{"type": "function"}]}, "tools[0].name"),
            ({"tools": [{"type": "computer_use_preview"}]}, "tools[0].type"),
            (
                {
                    "input": [
                        {
                            "type": "message",
                            "role": "user",
                            "content": [{"type": "output_text", "text": "x"}],
                        }
                    ]
                },
                "input[0]",
            ),
            ({"input": [{"type": "nonsense"}]}, "input[0]"),
        ],
    )
    def test_bad_fields(self, client: OpenAI, extra: dict[str, object], param: str) -> None:
        body = {"model": "gpt-4o", "input": "hi", **extra}
        answer = httpx.post(
            f"{client.base_url}responses",
            json=body,
            headers={"Authorization": f"Bearer {client.api_key}"},
        )
        assert answer.status_code == 400, answer.text
        error = answer.json()["error"]
        assert error["type"] == "invalid_request_error"
        assert error["param"] == param, error

    def test_background_needs_store(self, client: OpenAI) -> None:
        with pytest.raises(BadRequestError) as err:
            client.responses.create(model="gpt-4o", input="hi", background=True, store=False)
        assert err.value.body["param"] == "background"  # type: ignore[index]

    def test_a_prompt_template_is_unknown(self, client: OpenAI) -> None:
        with pytest.raises(NotFoundError) as err:
            client.responses.create(model="gpt-4o", input="hi", prompt={"id": "pmpt_123"})
        assert err.value.body["message"] == "Prompt with id 'pmpt_123' not found."

    def test_unknown_file(self, client: OpenAI) -> None:
        with pytest.raises(BadRequestError) as err:
            client.responses.create(
                model="gpt-4o",
                input=[
                    {"role": "user", "content": [{"type": "input_file", "file_id": "file-nope"}]}
                ],
            )
        assert err.value.body["param"] == "input[0].content[0].file_id"  # type: ignore[index]

    def test_nothing_is_stored_on_error(self, client: OpenAI, marker: str) -> None:
        """A refused request leaves no response and no items behind."""
        conversation = client.conversations.create()
        with pytest.raises(BadRequestError):
            client.responses.create(
                model="gpt-4o",
                conversation=conversation.id,
                input=[
                    {"role": "user", "content": marker},
                    {"type": "function_call_output", "call_id": "call_nope", "output": "x"},
                ],
            )
        assert client.conversations.items.list(conversation.id).data == []


def test_input_tokens(client: OpenAI, marker: str) -> None:
    short = client.responses.input_tokens.count(model="gpt-4o", input="hi")
    assert short.object == "response.input_tokens"
    longer = client.responses.input_tokens.count(
        model="gpt-4o", input="hi " * 200, instructions="Be brief.", tools=[weather_tool()]
    )
    assert 0 < short.input_tokens < longer.input_tokens
    # what a response with the same request reports as its input
    response = client.responses.create(model="gpt-4o", input=f"count {marker}")
    counted = client.responses.input_tokens.count(model="gpt-4o", input=f"count {marker}")
    assert response.usage is not None
    assert counted.input_tokens == response.usage.input_tokens


class TestErrorCodes:
    """The Responses family names each kind of error with a code (the Assistants API keeps its
    own wording, see tests/test_errors.py)."""

    @pytest.mark.parametrize(
        ("extra", "message", "code"),
        [
            ({"bogus": 1}, "Unknown parameter: 'bogus'.", "unknown_parameter"),
            ({"temperature": 5}, "decimal above maximum value", "decimal_above_max_value"),
            ({"max_output_tokens": 15}, "integer below minimum value", "integer_below_min_value"),
            ({"store": {"a": 1}}, "Invalid type for 'store'", "invalid_type"),
            ({"truncation": "never"}, "Invalid value", "invalid_value"),
        ],
    )
    def test_codes(self, client: OpenAI, extra: dict[str, object], message: str, code: str) -> None:
        answer = httpx.post(
            f"{client.base_url}responses",
            json={"model": "gpt-4o", "input": "hi", **extra},
            headers={"Authorization": f"Bearer {client.api_key}"},
        )
        assert answer.status_code == 400
        error = answer.json()["error"]
        assert message in error["message"]
        assert error["code"] == code
