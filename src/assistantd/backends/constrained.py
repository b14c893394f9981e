"""A forced call of a custom tool with a grammar, decoded under that grammar by the backend.

A custom tool's `grammar` format (syntax `lark` or `regex`) is always described in the text of
the function the tool is offered as (`tools.client`). When the model's backend can constrain
its output (the models file's `grammar:`, `backends.routing`) and a turn must call exactly that
tool — `tool_choice` names it (`{"type": "custom", "name": ...}`, or `allowed_tools` in
`required` mode with only it), or is `required` with it the only tool offered — the turn asks
the backend for plain text under the grammar instead of a tool call, and that text becomes the
call's `input` (`as_call`), streamed with the same `response.custom_tool_call_input.*` events.

How the grammar is sent, by dialect:
- `vllm`: `structured_outputs: {"regex": ...}` or `{"grammar": <the Lark grammar>}` (vLLM 0.12
  and later; its guidance backend reads Lark as OpenAI writes it, xgrammar converts it);
- `vllm-guided`: `guided_regex` / `guided_grammar` (vLLM before 0.12);
- `llama.cpp`: `grammar`, the grammar converted to GBNF (`backends.gbnf`). A grammar GBNF cannot
  express (look-arounds, back-references...) is not sent: the turn is an ordinary forced call,
  with the grammar described in the tool's text.

The request keeps its tools (the model still reads the tool's description) with `tool_choice:
"none"`, and a note in the system message says which tool's input to write.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from functools import lru_cache
from typing import Any

from assistantd.backends import gbnf
from assistantd.backends.chat import ChatEvent, ChatRequest, Finish, TextDelta, ToolCallDelta
from assistantd.backends.routing import GrammarDialect

__all__ = ["as_call", "constrain", "grammar_params"]

log = logging.getLogger(__name__)


@lru_cache(maxsize=64)  # a client such as Codex sends the same grammar every turn
def _gbnf(syntax: str, definition: str) -> str | None:
    try:
        if syntax == "regex":
            return gbnf.regex_to_gbnf(definition)
        return gbnf.lark_to_gbnf(definition)
    except gbnf.Unconvertible as exc:
        log.info("a %s grammar has no GBNF form (%s); it is described instead", syntax, exc)
        return None


def grammar_params(dialect: GrammarDialect, syntax: str, definition: str) -> dict[str, Any] | None:
    """The Chat Completions parameters that constrain the output to the grammar, or None when
    this dialect cannot take it."""
    if dialect == "vllm":
        key = "regex" if syntax == "regex" else "grammar"
        return {"structured_outputs": {key: definition}}
    if dialect == "vllm-guided":
        return {"guided_regex" if syntax == "regex" else "guided_grammar": definition}
    converted = _gbnf(syntax, definition)
    return None if converted is None else {"grammar": converted}


def _forced(request: ChatRequest) -> str | None:
    """The one function this turn must call, if any."""
    choice = request.tool_choice
    if isinstance(choice, dict) and choice.get("type") == "function":
        return str(choice["function"]["name"])
    if choice == "required" and len(request.tools) == 1:
        return str(request.tools[0]["function"]["name"])
    return None


def constrain(
    request: ChatRequest,
    dialect: GrammarDialect,
    client_tools: Mapping[str, Mapping[str, Any]],
) -> bool:
    """Turn `request` into one for the grammar-constrained input of the custom tool it forces,
    if it forces one that has a grammar the dialect takes; True when it did."""
    name = _forced(request)
    client = client_tools.get(name) if name is not None else None
    if name is None or client is None or client.get("kind") != "custom":
        return False
    grammar = client.get("grammar")
    if not grammar:
        return False
    params = grammar_params(dialect, grammar["syntax"], grammar["definition"])
    if params is None:
        return False
    request.tool_choice = "none"
    request.parallel_tool_calls = None
    request.response_format = None
    request.extra = {**request.extra, **params}
    request.messages = _with_note(
        request.messages,
        f"Now write the input of the `{client['name']}` tool: only that text, as the tool "
        "takes it, and nothing else.",
    )
    request.constrained_call = name
    return True


def _with_note(messages: list[dict[str, Any]], note: str) -> list[dict[str, Any]]:
    """`messages` with `note` at the end of the leading system message (or as one): where every
    chat template takes it."""
    first = messages[0] if messages else None
    if first is not None and first.get("role") in ("system", "developer"):
        content = first.get("content")
        if isinstance(content, str):
            return [{**first, "content": f"{content}\n\n{note}"}, *messages[1:]]
    return [{"role": "system", "content": note}, *messages]


async def as_call(
    stream: AsyncGenerator[ChatEvent, None], name: str
) -> AsyncGenerator[ChatEvent, None]:
    """The backend's text as the arguments of a call of function `name`, `{"input": text}`,
    written as the text arrives (reasoning and usage pass through). Closing it closes
    `stream`."""
    opening = '{"input": "'
    async with aclosing(stream) as events:
        async for event in events:
            if isinstance(event, TextDelta):
                if event.text:
                    fragment = json.dumps(event.text, ensure_ascii=False)[1:-1]
                    yield ToolCallDelta(0, None, name if opening else None, opening + fragment)
                    opening = ""
            elif isinstance(event, Finish):
                yield ToolCallDelta(0, None, name if opening else None, opening + '"}')
                yield Finish("tool_calls" if event.reason == "stop" else event.reason)
            elif not isinstance(event, ToolCallDelta):  # none were asked for
                yield event
