"""A forced call of a custom tool with a grammar, on a model whose backend constrains output
(the models file's `grammar:`): the backend is asked for plain text under the grammar, in its
own dialect, and the text comes back as the call's `input` with the call's events. Elsewhere
the grammar is only described in the tool's text, and the call is an ordinary forced one."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from openai import OpenAI

from tests.responses.conftest import raw_events
from tests.responses.test_client_tools import CODEX_PATCH_GRAMMAR, PATCH, create, parsed_events
from tests.runs.conftest import Tuned
from tests.support.scripted_model import Reply, ScriptedModel, ToolCall

FORCED = {"type": "custom", "name": "apply_patch"}
DIGITS = r"\d{3}-[a-z]+"


def grammar_tool(syntax: str, definition: str, name: str = "apply_patch") -> dict[str, Any]:
    return {
        "type": "custom",
        "name": name,
        "description": "Edit files.",
        "format": {"type": "grammar", "syntax": syntax, "definition": definition},
    }


LARK_TOOL = grammar_tool("lark", CODEX_PATCH_GRAMMAR)


@pytest.fixture(scope="module")
def routed(tuned_server: Callable[..., Tuned], model: ScriptedModel, work_dir: Path) -> OpenAI:
    """Models of each grammar dialect, one without, and a backend whose models all have one."""
    models_file = work_dir / "models-grammar.yaml"
    models_file.write_text(
        f"backends:\n  scripted:\n    base_url: {model.base_url}\n"
        f"  llama:\n    base_url: {model.base_url}\n    grammar: llama.cpp\n"
        "models:\n"
        "  guided:\n    backend: scripted\n    upstream_model: gpt-4o\n    grammar: vllm\n"
        "  old-vllm:\n    backend: scripted\n    upstream_model: gpt-4o\n"
        "    grammar: vllm-guided\n"
        "  gguf:\n    backend: llama\n    upstream_model: gpt-4o\n"
        "  plain:\n    backend: scripted\n    upstream_model: gpt-4o\n"
    )
    return tuned_server({"ASSISTANTD_MODELS_FILE": str(models_file)}).client


def grammar_params(request: dict[str, Any]) -> dict[str, Any]:
    keys = ("structured_outputs", "guided_regex", "guided_grammar", "grammar")
    return {key: request[key] for key in keys if key in request}


class TestConstrained:
    def test_vllm_decodes_a_lark_grammar_into_the_calls_input(
        self, routed: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        model.script(marker, Reply(text=PATCH))
        body = {
            "model": "guided",
            "input": marker,
            "stream": True,
            "tools": [LARK_TOOL],
            "tool_choice": FORCED,
            "instructions": "Be careful.",
        }
        events = raw_events(routed, "responses", body=body)
        parsed_events(events)
        [request] = model.requests(marker)
        assert grammar_params(request) == {"structured_outputs": {"grammar": CODEX_PATCH_GRAMMAR}}
        # Plain text is asked for; the model still reads the tool, and what to write.
        assert request["tool_choice"] == "none"
        assert "parallel_tool_calls" not in request
        assert [t["function"]["name"] for t in request["tools"]] == ["apply_patch"]
        system = request["messages"][0]
        assert system["role"] in ("system", "developer")
        assert system["content"].startswith("Be careful.")
        assert "`apply_patch`" in system["content"]

        kinds = [e["type"] for e in events]
        assert "response.output_text.delta" not in kinds
        deltas = [
            e["delta"] for e in events if e["type"] == "response.custom_tool_call_input.delta"
        ]
        assert "".join(deltas) == PATCH
        [done] = [e for e in events if e["type"] == "response.custom_tool_call_input.done"]
        assert done["input"] == PATCH
        [item] = events[-1]["response"]["output"]
        assert item["type"] == "custom_tool_call"
        assert item["name"] == "apply_patch"
        assert item["input"] == PATCH
        assert item["status"] == "completed"
        assert done["item_id"] == item["id"]

        # The call and its output go back to the model as an ordinary call.
        model.script("Patched OK", Reply(text="Done."))
        answer = create(
            routed,
            model="guided",
            previous_response_id=events[-1]["response"]["id"],
            input=[
                {
                    "type": "custom_tool_call_output",
                    "call_id": item["call_id"],
                    "output": "Patched OK",
                }
            ],
            tools=[LARK_TOOL],
        )
        assert answer["output"][0]["content"][0]["text"] == "Done."
        follow_up = model.requests("Patched OK")[-1]
        assert grammar_params(follow_up) == {}
        call = next(m for m in follow_up["messages"] if m.get("tool_calls"))["tool_calls"][0]
        assert json.loads(call["function"]["arguments"]) == {"input": PATCH}

    @pytest.mark.parametrize(
        ("choice", "tools"),
        [
            ("required", [grammar_tool("regex", DIGITS, "code")]),
            (
                {
                    "type": "allowed_tools",
                    "mode": "required",
                    "tools": [{"type": "custom", "name": "code"}],
                },
                [grammar_tool("regex", DIGITS, "code"), LARK_TOOL],
            ),
        ],
        ids=["required-only-tool", "allowed-tools-required"],
    )
    def test_vllm_regex_when_the_tool_is_the_only_one_allowed(
        self, routed: OpenAI, model: ScriptedModel, marker: str, choice: Any, tools: Any
    ) -> None:
        model.script(marker, Reply(text="123-abc"))
        response = create(routed, model="guided", input=marker, tools=tools, tool_choice=choice)
        assert grammar_params(model.requests(marker)[0]) == {
            "structured_outputs": {"regex": DIGITS}
        }
        [item] = response["output"]
        assert (item["type"], item["name"], item["input"]) == (
            "custom_tool_call",
            "code",
            "123-abc",
        )

    def test_older_vllm_takes_guided_parameters(
        self, routed: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        model.script(marker, Reply(text=PATCH))
        create(routed, model="old-vllm", input=marker, tools=[LARK_TOOL], tool_choice=FORCED)
        assert grammar_params(model.requests(marker)[0]) == {"guided_grammar": CODEX_PATCH_GRAMMAR}

    def test_llama_cpp_takes_a_regex_as_gbnf(
        self, routed: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        model.script(marker, Reply(text="123-abc"))
        tools = [grammar_tool("regex", DIGITS, "code"), LARK_TOOL]
        response = create(
            routed,
            model="gguf",
            input=marker,
            tools=tools,
            tool_choice={"type": "custom", "name": "code"},
        )
        assert grammar_params(model.requests(marker)[0]) == {
            "grammar": 'root ::= [0-9]{3} "\\x2D" [a-z]+\n'
        }
        assert response["output"][0]["input"] == "123-abc"

    def test_llama_cpp_takes_a_lark_grammar_as_gbnf(
        self, routed: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        model.script(marker, Reply(text="a, b"))
        lark = 'start: WORD ("," WORD)*\nWORD: /[a-z]+/\n%ignore " "\n'
        create(
            routed,
            model="gguf",
            input=marker,
            tools=[grammar_tool("lark", lark, "words")],
            tool_choice={"type": "custom", "name": "words"},
        )
        gbnf = grammar_params(model.requests(marker)[0])["grammar"]
        assert gbnf.startswith("root ::= start ignored\n")
        assert "WORD ::= [a-z]+" in gbnf
        assert 'COMMA ::= ","' in gbnf

    def test_a_grammar_gbnf_cannot_express_is_described_instead(
        self, routed: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        model.script(marker, Reply(tool_calls=[ToolCall("code", '{"input": "ab"}')]))
        response = create(
            routed,
            model="gguf",
            input=marker,
            tools=[grammar_tool("regex", r"(?=a)\w+", "code")],
            tool_choice={"type": "custom", "name": "code"},
        )
        request = model.requests(marker)[0]
        assert grammar_params(request) == {}
        assert request["tool_choice"] == {"type": "function", "function": {"name": "code"}}
        assert "(?=a)" in request["tools"][0]["function"]["description"]
        assert response["output"][0]["input"] == "ab"

    @pytest.mark.parametrize(
        ("model_name", "choice"),
        [("plain", FORCED), ("guided", "auto"), ("guided", "required")],
        ids=["no-grammar-setting", "not-forced", "required-among-two"],
    )
    def test_otherwise_the_grammar_is_only_described(
        self, routed: OpenAI, model: ScriptedModel, marker: str, model_name: str, choice: Any
    ) -> None:
        model.script(
            marker, Reply(tool_calls=[ToolCall("apply_patch", json.dumps({"input": PATCH}))])
        )
        note = {"type": "custom", "name": "note", "format": {"type": "text"}}
        response = create(
            routed, model=model_name, input=marker, tools=[LARK_TOOL, note], tool_choice=choice
        )
        request = model.requests(marker)[0]
        assert grammar_params(request) == {}
        assert request["tool_choice"] != "none"
        assert CODEX_PATCH_GRAMMAR in request["tools"][0]["function"]["description"]
        assert response["output"][0]["input"] == PATCH
