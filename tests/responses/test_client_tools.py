"""Client tool types: custom (freeform, with grammars), namespace, local_shell, shell,
apply_patch and a client-run tool_search with deferred tools. The scripted model calls each
as the function it is offered as; the call comes back as the tool's own item with its events,
and the client's output item answers it in a stored chain, a conversation, or a `store: false`
history. Every item and event is parsed by the openai SDK's own types."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import BadRequestError, OpenAI
from openai.types.conversations import ConversationItem
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import BaseModel, TypeAdapter

from tests.responses.conftest import raw_events
from tests.support.scripted_model import Reply, ScriptedModel, ToolCall

EVENT: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
ITEM: TypeAdapter[Any] = TypeAdapter(ConversationItem)
CODEX_PATCH_GRAMMAR = (
    'start: begin_patch hunk+ end_patch\nbegin_patch: "*** Begin Patch" LF\n'
    'end_patch: "*** End Patch" LF?\nhunk: add_hunk\nadd_hunk: "*** Add File: " filename LF '
    'add_line+\nfilename: /(.+)/\nadd_line: "+" /(.*)/ LF -> line\n%import common.LF\n'
)
PATCH = '*** Begin Patch\n*** Add File: hello.txt\n+Hello "world"\n*** End Patch\n'


# What OpenAI sends that the SDK's types leave out: a response's `store`, `presence_penalty`
# and `frequency_penalty`, the padding of
# deltas, the function's name on `function_call_arguments.done` (the reference requires it),
# and the status of custom tool calls and outputs (the reference's item resources,
# `CustomToolCallResource` and `CustomToolCallOutputResource`, require it; the SDK's
# conversation item union uses the types without it).
KNOWN_EXTRAS = {
    "Response": {"store", "presence_penalty", "frequency_penalty"},
    "ResponseFunctionCallArgumentsDeltaEvent": {"obfuscation"},
    "ResponseTextDeltaEvent": {"obfuscation"},
    "ResponseFunctionCallArgumentsDoneEvent": {"name"},
    "ResponseCustomToolCall": {"status"},
    "ResponseCustomToolCallOutput": {"status"},
}


def no_extras(model: BaseModel) -> None:
    """Every field the server sent is one the SDK's type knows, at every level."""
    extra = set(model.model_extra or ()) - KNOWN_EXTRAS.get(type(model).__name__, set())
    assert not extra, f"{type(model).__name__}: unknown fields {extra}"
    for name in type(model).model_fields:
        value = getattr(model, name)
        for inner in value if isinstance(value, list) else [value]:
            if isinstance(inner, BaseModel):
                no_extras(inner)


def parsed_events(events: list[dict[str, Any]]) -> list[Any]:
    out = []
    for event in events:
        model = EVENT.validate_python(event)
        assert model.type == event["type"]
        no_extras(model)
        out.append(model)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    return out


def create(client: OpenAI, **body: Any) -> dict[str, Any]:
    """A response created over plain HTTP, parsed strictly by the SDK's `Response`."""
    answer = httpx.post(
        f"{client.base_url}responses",
        json={"model": "gpt-4o", **body},
        headers={"Authorization": f"Bearer {client.api_key}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    wire = answer.json()
    no_extras(Response.model_validate(wire))
    return dict(wire)


def get(client: OpenAI, path: str) -> dict[str, Any]:
    answer = httpx.get(
        f"{client.base_url}{path}",
        headers={"Authorization": f"Bearer {client.api_key}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def refused(client: OpenAI, **body: Any) -> dict[str, Any]:
    with pytest.raises(BadRequestError) as err:
        client.responses.create(model="gpt-4o", **body)
    error = err.value.body
    assert isinstance(error, dict)
    return error


def custom_tool(**extra: Any) -> dict[str, Any]:
    return {
        "type": "custom",
        "name": "apply_patch",
        "description": "Edit files.",
        "format": {"type": "grammar", "syntax": "lark", "definition": CODEX_PATCH_GRAMMAR},
        **extra,
    }


def offered(request: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["function"]["name"]: t["function"] for t in request.get("tools") or []}


def replayed_call(request: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The last tool call the model is shown, and the tool message that answers it."""
    messages = request["messages"]
    at = max(i for i, m in enumerate(messages) if m.get("tool_calls"))
    call = messages[at]["tool_calls"][0]
    answer = messages[at + 1]
    assert answer["role"] == "tool"
    assert answer["tool_call_id"] == call["id"]
    return call["function"], answer


class TestCustomTool:
    def test_streamed_call_then_output_in_a_chain(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        model.script(
            marker, Reply(tool_calls=[ToolCall("apply_patch", json.dumps({"input": PATCH}))])
        )
        body = {"model": "gpt-4o", "input": marker, "stream": True, "tools": [custom_tool()]}
        events = raw_events(client, "responses", body=body)
        parsed_events(events)
        assert [e["type"] for e in events if "input" in e["type"] or "item" in e["type"]] == [
            "response.output_item.added",
            *["response.custom_tool_call_input.delta"]
            * sum(e["type"] == "response.custom_tool_call_input.delta" for e in events),
            "response.custom_tool_call_input.done",
            "response.output_item.done",
        ]
        added = events[2]["item"]
        assert added["type"] == "custom_tool_call"
        assert added["status"] == "in_progress"
        assert added["input"] == ""
        deltas = [
            e["delta"] for e in events if e["type"] == "response.custom_tool_call_input.delta"
        ]
        assert len(deltas) > 1
        assert "".join(deltas) == PATCH
        [done] = [e for e in events if e["type"] == "response.custom_tool_call_input.done"]
        assert done["input"] == PATCH
        assert done["item_id"] == added["id"]
        item = events[-1]["response"]["output"][0]
        assert item == {
            "type": "custom_tool_call",
            "id": added["id"],
            "call_id": added["call_id"],
            "name": "apply_patch",
            "input": PATCH,
            "status": "completed",
        }
        assert events[-1]["response"]["tools"] == [custom_tool()]

        # The model was offered a function taking the text, with the grammar described.
        [first] = model.requests(marker)
        function = offered(first)["apply_patch"]
        assert function["parameters"]["required"] == ["input"]
        assert "Edit files." in function["description"]
        assert CODEX_PATCH_GRAMMAR in function["description"]

        model.script("Patched OK", Reply(text="The file is there."))
        answer = create(
            client,
            previous_response_id=events[-1]["response"]["id"],
            input=[
                {
                    "type": "custom_tool_call_output",
                    "call_id": item["call_id"],
                    "output": "Patched OK",
                }
            ],
            tools=[custom_tool()],
        )
        assert answer["output"][0]["content"][0]["text"] == "The file is there."
        call, tool_message = replayed_call(model.requests("Patched OK")[-1])
        assert call == {"name": "apply_patch", "arguments": json.dumps({"input": PATCH})}
        assert tool_message["content"] == "Patched OK"
        listed = get(client, f"responses/{answer['id']}/input_items")
        [output] = [i for i in listed["data"] if i["type"] == "custom_tool_call_output"]
        assert output["output"] == "Patched OK"

    def test_a_regex_grammar_and_a_text_format(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        model.script(marker, Reply(tool_calls=[ToolCall("digits", '{"input": "12345"}')]))
        tools = [
            {
                "type": "custom",
                "name": "digits",
                "format": {"type": "grammar", "syntax": "regex", "definition": r"\d+"},
            },
            {"type": "custom", "name": "note", "format": {"type": "text"}},
        ]
        response = create(client, input=marker, tools=tools)
        assert response["output"][0]["input"] == "12345"
        described = offered(model.requests(marker)[0])
        assert "regex grammar" in described["digits"]["description"]
        assert "\\d+" in described["digits"]["description"]
        assert "grammar" not in described["note"]["description"]

    def test_tool_choice_forces_it(self, client: OpenAI, model: ScriptedModel, marker: str) -> None:
        create(
            client,
            input=marker,
            tools=[custom_tool()],
            tool_choice={"type": "custom", "name": "apply_patch"},
        )
        request = model.requests(marker)[0]
        assert request["tool_choice"] == {"type": "function", "function": {"name": "apply_patch"}}


class TestNamespace:
    def test_called_by_its_namespaced_name_and_answered_in_a_store_false_history(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        tool = {
            "type": "namespace",
            "name": "crm",
            "description": "Customer records.",
            "tools": [
                {
                    "type": "function",
                    "name": "lookup",
                    "description": "Find a customer.",
                    "strict": False,
                    "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
                },
                {"type": "custom", "name": "note", "description": "Write a note."},
            ],
        }
        model.script(marker, Reply(tool_calls=[ToolCall("crm__lookup", '{"q": "Ada"}')]))
        events = raw_events(
            client,
            "responses",
            body={
                "model": "gpt-4o",
                "input": marker,
                "stream": True,
                "tools": [tool],
                "store": False,
            },
        )
        parsed_events(events)
        [done] = [e for e in events if e["type"] == "response.function_call_arguments.done"]
        assert done["name"] == "lookup"
        call = events[-1]["response"]["output"][0]
        assert call["type"] == "function_call"
        assert call["name"] == "lookup"
        assert call["namespace"] == "crm"
        functions = offered(model.requests(marker)[0])
        assert set(functions) == {"crm__lookup", "crm__note"}
        assert "Customer records." in functions["crm__lookup"]["description"]

        model.script("found Ada", Reply(text="Ada is a customer."))
        history = [
            {"role": "user", "content": marker},
            call,
            {"type": "function_call_output", "call_id": call["call_id"], "output": "found Ada"},
        ]
        answer = create(client, input=history, tools=[tool], store=False)
        assert answer["output"][0]["content"][0]["text"] == "Ada is a customer."
        replayed, tool_message = replayed_call(model.requests("found Ada")[-1])
        assert replayed == {"name": "crm__lookup", "arguments": '{"q": "Ada"}'}
        assert tool_message["content"] == "found Ada"

    def test_a_long_name_fits_the_function_name_limit(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        tool = {
            "type": "namespace",
            "name": "n" * 40,
            "description": "d",
            "tools": [{"type": "function", "name": "f" * 40}],
        }
        create(client, input=marker, tools=[tool])
        [name] = offered(model.requests(marker)[0])
        assert len(name) == 64
        assert name.startswith("n" * 40 + "__")


class TestShells:
    def test_local_shell_answered_in_a_conversation(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        model.script(
            marker,
            Reply(
                tool_calls=[
                    ToolCall("local_shell", '{"command": ["ls", "-la"], "timeout_ms": 1000}')
                ]
            ),
        )
        conversation = client.conversations.create()
        first = create(
            client, input=marker, tools=[{"type": "local_shell"}], conversation=conversation.id
        )
        call = first["output"][0]
        assert call["type"] == "local_shell_call"
        assert call["action"] == {
            "type": "exec",
            "command": ["ls", "-la"],
            "env": {},
            "timeout_ms": 1000,
            "working_directory": None,
            "user": None,
        }
        model.script("total 0", Reply(text="Empty."))
        output = {
            "type": "local_shell_call_output",
            "id": call["call_id"],
            "output": '{"stdout": "total 0"}',
        }
        answer = create(
            client, input=[output], tools=[{"type": "local_shell"}], conversation=conversation.id
        )
        assert answer["output"][0]["content"][0]["text"] == "Empty."
        replayed, tool_message = replayed_call(model.requests("total 0")[-1])
        assert replayed["name"] == "local_shell"
        assert json.loads(replayed["arguments"]) == {"command": ["ls", "-la"], "timeout_ms": 1000}
        assert tool_message["content"] == '{"stdout": "total 0"}'
        items = get(client, f"conversations/{conversation.id}/items?order=asc")
        kinds = [i["type"] for i in items["data"]]
        assert kinds == ["message", "local_shell_call", "local_shell_call_output", "message"]
        for item in items["data"]:
            no_extras(ITEM.validate_python(item))
        assert items["data"][2]["id"] == call["call_id"]  # OpenAI's names the call by `id`

    def test_shell_streams_its_commands_and_takes_its_output_in_a_chain(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        model.script(
            marker,
            Reply(
                tool_calls=[
                    ToolCall("shell", '{"commands": ["ls", "pwd"], "max_output_length": 500}')
                ]
            ),
        )
        events = raw_events(
            client,
            "responses",
            body={
                "model": "gpt-4o",
                "input": marker,
                "stream": True,
                "tools": [{"type": "shell", "environment": {"type": "local"}}],
            },
        )
        parsed_events(events)
        names = [e["type"] for e in events]
        assert names[2:-1] == [
            "response.output_item.added",
            *[
                "response.shell_call_command.added",
                "response.shell_call_command.delta",
                "response.shell_call_command.done",
            ]
            * 2,
            "response.output_item.done",
        ]
        assert [
            e["command"] for e in events if e["type"] == "response.shell_call_command.done"
        ] == ["ls", "pwd"]
        call = events[-1]["response"]["output"][0]
        assert call["type"] == "shell_call"
        assert call["action"] == {
            "commands": ["ls", "pwd"],
            "timeout_ms": None,
            "max_output_length": 500,
        }
        assert call["environment"] == {"type": "local"}

        model.script("/home/me", Reply(text="You are home."))
        output = {
            "type": "shell_call_output",
            "call_id": call["call_id"],
            "output": [
                {"stdout": "a.txt\n", "stderr": "", "outcome": {"type": "exit", "exit_code": 0}},
                {"stdout": "/home/me\n", "stderr": "", "outcome": {"type": "timeout"}},
            ],
        }
        answer = create(
            client,
            previous_response_id=events[-1]["response"]["id"],
            input=[output],
            tools=[{"type": "shell"}],
        )
        assert answer["output"][0]["content"][0]["text"] == "You are home."
        replayed, tool_message = replayed_call(model.requests("/home/me")[-1])
        assert replayed["name"] == "shell"
        assert "exit code 0" in tool_message["content"]
        assert "timed out" in tool_message["content"]
        listed = get(client, f"responses/{answer['id']}/input_items")
        [shown] = [i for i in listed["data"] if i["type"] == "shell_call_output"]
        no_extras(ITEM.validate_python(shown))


class TestApplyPatch:
    def test_operation_and_output_in_a_store_false_history(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        arguments = {"type": "create_file", "path": "hello.txt", "diff": "+hi\n"}
        model.script(marker, Reply(tool_calls=[ToolCall("apply_patch", json.dumps(arguments))]))
        first = create(
            client,
            input=marker,
            tools=[{"type": "apply_patch"}],
            store=False,
            tool_choice={"type": "apply_patch"},
        )
        assert model.requests(marker)[0]["tool_choice"] == {
            "type": "function",
            "function": {"name": "apply_patch"},
        }
        call = first["output"][0]
        assert call["type"] == "apply_patch_call"
        assert call["operation"] == arguments
        assert call["status"] == "completed"
        model.script("patch applied", Reply(text="Created."))
        history = [
            {"role": "user", "content": marker},
            call,
            {
                "type": "apply_patch_call_output",
                "call_id": call["call_id"],
                "status": "completed",
                "output": "patch applied",
            },
        ]
        answer = create(client, input=history, tools=[{"type": "apply_patch"}], store=False)
        assert answer["output"][0]["content"][0]["text"] == "Created."
        replayed, tool_message = replayed_call(model.requests("patch applied")[-1])
        assert replayed["name"] == "apply_patch"
        assert json.loads(replayed["arguments"]) == arguments
        assert tool_message["content"] == "completed: patch applied"


class TestToolSearch:
    def test_deferred_tools_are_offered_once_found(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        weather = {
            "type": "function",
            "name": "get_weather",
            "description": "The weather in a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            "strict": False,
        }
        search = {"type": "tool_search", "execution": "client", "description": "Find tools."}
        tools = [search, {**weather, "defer_loading": True}]
        model.script(marker, Reply(tool_calls=[ToolCall("tool_search", '{"query": "weather"}')]))
        events = raw_events(
            client,
            "responses",
            body={"model": "gpt-4o", "input": marker, "stream": True, "tools": tools},
        )
        parsed_events(events)
        call = events[-1]["response"]["output"][0]
        assert call["type"] == "tool_search_call"
        assert call["execution"] == "client"
        assert call["arguments"] == {"query": "weather"}
        first_offer = offered(model.requests(marker)[0])
        assert set(first_offer) == {"tool_search"}
        assert first_offer["tool_search"]["description"] == "Find tools."

        model.script("get_weather", Reply(tool_calls=[ToolCall("get_weather", '{"city": "Oslo"}')]))
        found = {
            "type": "tool_search_output",
            "call_id": call["call_id"],
            "execution": "client",
            "tools": [weather],
        }
        second = create(
            client, previous_response_id=events[-1]["response"]["id"], input=[found], tools=tools
        )
        assert second["output"][0]["type"] == "function_call"
        assert second["output"][0]["name"] == "get_weather"
        request = model.requests("get_weather")[-1]
        assert set(offered(request)) == {"tool_search", "get_weather"}
        replayed, tool_message = replayed_call(request)
        assert replayed == {"name": "tool_search", "arguments": '{"query": "weather"}'}
        assert "get_weather" in tool_message["content"]
        listed = get(client, f"responses/{second['id']}/input_items")
        [shown] = [i for i in listed["data"] if i["type"] == "tool_search_output"]
        no_extras(ITEM.validate_python(shown))

    def test_a_deferred_tool_is_not_counted_before_it_is_found(self, client: OpenAI) -> None:
        search = {"type": "tool_search", "execution": "client"}
        big = {"type": "function", "name": "big", "description": "word " * 400}
        counts = [
            client.responses.input_tokens.count(
                model="gpt-4o", input="hi", tools=[search, {**big, "defer_loading": deferred}]
            ).input_tokens
            for deferred in (True, False)
        ]
        assert counts[0] + 300 < counts[1]

    def test_deferred_tools_need_a_tool_search(self, client: OpenAI) -> None:
        error = refused(
            client, input="x", tools=[{"type": "function", "name": "f", "defer_loading": True}]
        )
        assert error["param"] == "tools"

    def test_server_execution_is_refused_by_name(self, client: OpenAI) -> None:
        error = refused(client, input="x", tools=[{"type": "tool_search"}])
        assert error["param"] == "tools[0].execution"


def test_codex_turns_are_served(client: OpenAI, model: ScriptedModel, marker: str) -> None:
    """Codex's tools as it sends them (functions, a custom apply_patch with a Lark grammar,
    tool_search, a namespace, and `web_search`, accepted and not offered: the suite's server
    has no search engine), on two `store: false` turns: the patch call, then the whole history
    with its output."""
    codex = json.loads((Path(__file__).parent / "data" / "codex_tools.json").read_text())
    tools = codex["tools"]
    body = {"model": "gpt-4o", "tools": tools, **codex["request"]}
    model.script(marker, Reply(tool_calls=[ToolCall("apply_patch", json.dumps({"input": PATCH}))]))
    history: list[dict[str, Any]] = [{"type": "message", "role": "user", "content": marker}]
    events = raw_events(client, "responses", body={**body, "input": history})
    parsed_events(events)
    assert events[-1]["type"] == "response.completed"
    [call] = events[-1]["response"]["output"]
    assert call["type"] == "custom_tool_call"
    assert call["input"] == PATCH
    functions = offered(model.requests(marker)[0])
    assert {"exec_command", "apply_patch", "tool_search", "multi_agent_v1__spawn_agent"} <= set(
        functions
    )
    assert "web_search" not in functions

    model.script("Success. Updated", Reply(text="Done."))
    done = "Success. Updated the following files:\nA hello.txt\n"
    output = {"type": "custom_tool_call_output", "call_id": call["call_id"], "output": done}
    history += [call, output]
    events = raw_events(client, "responses", body={**body, "input": history})
    parsed_events(events)
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == "Done."
    replayed, tool_message = replayed_call(model.requests("Success. Updated")[-1])
    assert replayed["name"] == "apply_patch"
    assert tool_message["content"].startswith("Success. Updated")


def test_additional_tools_in_the_input_are_offered(
    client: OpenAI, model: ScriptedModel, marker: str
) -> None:
    """Codex's default model sends no `tools`: an `additional_tools` input item of namespaces
    (its shell reached through the `functions` namespace's freeform `exec` tool)."""
    exec_tool = {
        "type": "custom",
        "name": "exec",
        "description": "Run JavaScript: `await tools.exec_command({cmd})`.",
        "format": {"type": "grammar", "syntax": "lark", "definition": "start: /(.|\\n)+/"},
    }
    extra = {
        "type": "additional_tools",
        "role": "developer",
        "tools": [
            {
                "type": "namespace",
                "name": "functions",
                "description": "Tools.",
                "tools": [exec_tool],
            }
        ],
    }
    source = 'await tools.exec_command({cmd: "ls"});'
    model.script(
        marker, Reply(tool_calls=[ToolCall("functions__exec", json.dumps({"input": source}))])
    )
    history: list[dict[str, Any]] = [extra, {"role": "user", "content": marker}]
    first = create(client, input=history, store=False)
    [call] = first["output"]
    assert (call["type"], call["namespace"], call["name"], call["input"]) == (
        "custom_tool_call",
        "functions",
        "exec",
        source,
    )
    assert set(offered(model.requests(marker)[0])) == {"functions__exec"}

    model.script("a.txt b.txt", Reply(text="Two files."))
    output = {
        "type": "custom_tool_call_output",
        "call_id": call["call_id"],
        "output": "a.txt b.txt",
    }
    history += [call, output]
    answer = create(client, input=history, store=False)
    assert answer["output"][0]["content"][0]["text"] == "Two files."
    replayed, tool_message = replayed_call(model.requests("a.txt b.txt")[-1])
    assert replayed == {"name": "functions__exec", "arguments": json.dumps({"input": source})}
    assert tool_message["content"] == "a.txt b.txt"

    stored = create(client, input=[extra, {"role": "user", "content": "list"}])
    listed = get(client, f"responses/{stored['id']}/input_items?order=asc")
    assert listed["data"][0]["type"] == "additional_tools"
    no_extras(ITEM.validate_python(listed["data"][0]))


def test_the_sdk_stream_helper_gathers_the_calls(
    client: OpenAI, model: ScriptedModel, marker: str
) -> None:
    model.script(
        marker,
        Reply(
            tool_calls=[
                ToolCall("apply_patch", json.dumps({"input": PATCH})),
                ToolCall("shell", '{"commands": ["ls"]}'),
            ]
        ),
    )
    with client.responses.stream(
        model="gpt-4o", input=marker, tools=[custom_tool(), {"type": "shell"}]
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert "response.custom_tool_call_input.done" in kinds
    assert "response.shell_call_command.done" in kinds
    assert [item.type for item in final.output] == ["custom_tool_call", "shell_call"]
    assert final.output[0].input == PATCH  # type: ignore[union-attr]


def test_conversation_items_take_client_calls_and_outputs(
    client: OpenAI, model: ScriptedModel, marker: str
) -> None:
    """Items added to a conversation directly (as a client that runs its tools elsewhere
    would) are what the next response's model sees."""
    conversation = client.conversations.create()
    items = [
        {"type": "message", "role": "user", "content": marker},
        {"type": "custom_tool_call", "call_id": "call_c1", "name": "apply_patch", "input": PATCH},
        {"type": "custom_tool_call_output", "call_id": "call_c1", "output": "applied c1"},
    ]
    answer = httpx.post(
        f"{client.base_url}conversations/{conversation.id}/items",
        json={"items": items},
        headers={"Authorization": f"Bearer {client.api_key}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    for item in answer.json()["data"]:
        no_extras(ITEM.validate_python(item))
    model.script("applied c1", Reply(text="Fine."))
    create(
        client,
        input="next",
        conversation=conversation.id,
        tools=[custom_tool()],
        tool_choice={
            "type": "allowed_tools",
            "mode": "auto",
            "tools": [{"type": "custom", "name": "apply_patch"}],
        },
    )
    request = model.requests("applied c1")[-1]
    replayed, tool_message = replayed_call(request)
    assert replayed == {"name": "apply_patch", "arguments": json.dumps({"input": PATCH})}
    assert tool_message["content"] == "applied c1"
    assert set(offered(request)) == {"apply_patch"}


class TestBadInput:
    def test_an_unknown_grammar_syntax(self, client: OpenAI) -> None:
        tool = {
            "type": "custom",
            "name": "t",
            "format": {"type": "grammar", "syntax": "ebnf", "definition": "x"},
        }
        error = refused(client, input="x", tools=[tool])
        assert error["param"] == "tools[0].format.syntax"
        assert error["code"] == "invalid_value"

    def test_a_regex_that_does_not_compile(self, client: OpenAI) -> None:
        tool = {
            "type": "custom",
            "name": "t",
            "format": {"type": "grammar", "syntax": "regex", "definition": "(a"},
        }
        error = refused(client, input="x", tools=[{"type": "function", "name": "f"}, tool])
        assert error["param"] == "tools[1].format.definition"
        assert "tools[1].format.definition" in error["message"]

    @pytest.mark.parametrize("definition", ['start: "a" (', "start: undefined_rule", 'other: "a"'])
    def test_a_lark_grammar_that_does_not_parse(self, client: OpenAI, definition: str) -> None:
        member = {
            "type": "custom",
            "name": "t",
            "format": {"type": "grammar", "syntax": "lark", "definition": definition},
        }
        tool = {"type": "namespace", "name": "ns", "description": "d", "tools": [member]}
        error = refused(client, input="x", tools=[tool])
        assert error["param"] == "tools[0].tools[0].format.definition"

    @pytest.mark.parametrize(
        "output",
        [
            {"type": "custom_tool_call_output", "call_id": "call_nope", "output": "x"},
            {"type": "local_shell_call_output", "id": "call_nope", "output": "x"},
            {"type": "shell_call_output", "call_id": "call_nope", "output": []},
            {"type": "apply_patch_call_output", "call_id": "call_nope", "status": "completed"},
            {"type": "tool_search_output", "call_id": "call_nope", "tools": []},
        ],
    )
    def test_an_output_for_an_unknown_call(self, client: OpenAI, output: dict[str, Any]) -> None:
        first = client.responses.create(model="gpt-4o", input="hello")
        error = refused(client, previous_response_id=first.id, input=[output])
        assert error["param"] == "input"
        assert "call_nope" in error["message"]

    def test_a_hosted_shell(self, client: OpenAI) -> None:
        error = refused(
            client, input="x", tools=[{"type": "shell", "environment": {"type": "container_auto"}}]
        )
        assert error["param"] == "tools[0].environment"

    def test_two_tools_of_one_name(self, client: OpenAI) -> None:
        error = refused(
            client, input="x", tools=[{"type": "custom", "name": "shell"}, {"type": "shell"}]
        )
        assert error["param"] == "tools[1]"

    def test_a_choice_of_a_missing_tool(self, client: OpenAI) -> None:
        error = refused(
            client,
            input="x",
            tools=[custom_tool()],
            tool_choice={"type": "custom", "name": "other"},
        )
        assert error["param"] == "tool_choice.name"
        error = refused(client, input="x", tools=[custom_tool()], tool_choice={"type": "shell"})
        assert error["param"] == "tool_choice.type"

    def test_other_hosted_tools_stay_refused(self, client: OpenAI) -> None:
        error = refused(client, input="x", tools=[{"type": "computer_use_preview"}])
        assert error["param"] == "tools[0].type"
