"""Client tools as the model sees them: chat-completions functions.

Every tool a Responses client runs (function, custom, namespace, local_shell, shell,
apply_patch, and a client-executed tool_search) is offered to the backend as a function. Its
run's tool entry keeps, under `client`, what the tool is (`kind`, its own `name` and
`namespace`), so a call the model makes to the function comes back as the tool's own item
type (`items.client_calls`). A deferred tool (`defer_loading`) is kept but not offered: a
`tool_search_output` that carries it offers it from then on.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from typing import Any

from pydantic import TypeAdapter, ValidationError

from assistantd.errors import InvalidRequestError
from assistantd.tools.client_params import (
    ApplyPatchToolParam,
    ClientToolParam,
    CustomGrammarFormat,
    CustomToolParam,
    FunctionToolParam,
    LoadableTool,
    LocalShellToolParam,
    NamespaceToolParam,
    ShellToolParam,
    ToolSearchToolParam,
)

MAX_FUNCTION_NAME = 64  # Chat Completions' limit on a function's name
# Function names of the tools that have no name of their own.
LOCAL_SHELL, SHELL, APPLY_PATCH, TOOL_SEARCH = "local_shell", "shell", "apply_patch", "tool_search"

_LOCAL_SHELL_PARAMETERS = {
    "type": "object",
    "properties": {
        "command": {
            "type": "array",
            "items": {"type": "string"},
            "description": 'The command to run, as argv: for example ["bash", "-lc", "ls -la"].',
        },
        "working_directory": {"type": "string", "description": "Where to run it."},
        "timeout_ms": {"type": "integer", "description": "A time limit in milliseconds."},
        "env": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "Environment variables to set.",
        },
        "user": {"type": "string", "description": "The user to run it as."},
    },
    "required": ["command"],
}
_SHELL_PARAMETERS = {
    "type": "object",
    "properties": {
        "commands": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Shell commands to run, in order.",
        },
        "timeout_ms": {"type": "integer", "description": "A time limit in milliseconds."},
        "max_output_length": {
            "type": "integer",
            "description": "The most characters of output to return from each command.",
        },
    },
    "required": ["commands"],
}
_APPLY_PATCH_PARAMETERS = {
    "type": "object",
    "properties": {
        "type": {"type": "string", "enum": ["create_file", "update_file", "delete_file"]},
        "path": {"type": "string", "description": "The file's path."},
        "diff": {
            "type": "string",
            "description": "create_file: the new file's lines, each prefixed with '+'. "
            "update_file: the changes as a V4A diff (hunks starting with '@@', context lines "
            "prefixed with ' ', removed ones with '-', added ones with '+'). delete_file: none.",
        },
    },
    "required": ["type", "path"],
}
_TOOL_SEARCH_PARAMETERS = {
    "type": "object",
    "properties": {"query": {"type": "string", "description": "What the tools should do."}},
    "required": ["query"],
}
_DESCRIPTIONS = {
    LOCAL_SHELL: "Run a command on the user's machine and read its output.",
    SHELL: "Run shell commands in the user's environment and read their output.",
    APPLY_PATCH: "Create, update or delete a file in the user's workspace.",
    TOOL_SEARCH: "Search for tools that are not loaded yet. The tools found can be called from "
    "the next turn on.",
}


def offered_name(name: str, namespace: str | None) -> str:
    """The function name a tool is offered under: `{namespace}__{name}`, cut to the 64
    characters a function name may have (with a digest to keep it apart from others)."""
    if not namespace:
        return name
    full = f"{namespace}__{name}"
    if len(full) <= MAX_FUNCTION_NAME:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:8]
    return f"{full[: MAX_FUNCTION_NAME - 9]}_{digest}"


def chat_function(fn: dict[str, Any]) -> dict[str, Any]:
    """A function of a run's tool entry as Chat Completions takes it."""
    spec: dict[str, Any] = {
        "name": fn["name"],
        "parameters": fn.get("parameters") or {"type": "object", "properties": {}},
    }
    if fn.get("description"):
        spec["description"] = fn["description"]
    if fn.get("strict"):
        spec["strict"] = True
    return {"type": "function", "function": spec}


def _entry(
    function: dict[str, Any], client: dict[str, Any], *, deferred: bool = False
) -> dict[str, Any]:
    entry: dict[str, Any] = {"type": "function", "function": function, "client": client}
    if deferred:
        entry["deferred"] = True
    return entry


def _function(tool: FunctionToolParam, namespace: NamespaceToolParam | None) -> dict[str, Any]:
    ns = namespace.name if namespace is not None else None
    description = tool.description
    if namespace is not None:
        # The namespace's description is the model's only view of what groups these tools.
        description = f"[{namespace.name}: {namespace.description}] {description or ''}".strip()
    spec = {
        "name": offered_name(tool.name, ns),
        "description": description,
        "parameters": tool.parameters,
        "strict": bool(tool.strict),
    }
    client = {"kind": "function", "name": tool.name, "namespace": ns}
    return _entry(spec, client, deferred=bool(tool.defer_loading))


def _custom(tool: CustomToolParam, namespace: NamespaceToolParam | None) -> dict[str, Any]:
    ns = namespace.name if namespace is not None else None
    pieces = [f"[{namespace.name}: {namespace.description}]"] if namespace is not None else []
    if tool.description:
        pieces.append(tool.description)
    pieces.append(
        "This tool takes free-form text: put the whole text in `input` as it is (not JSON "
        "inside the string)."
    )
    fmt = tool.format
    if isinstance(fmt, CustomGrammarFormat):
        pieces.append(
            f"The input must match this {fmt.syntax} grammar exactly:\n```\n{fmt.definition}\n```"
        )
    spec = {
        "name": offered_name(tool.name, ns),
        "description": "\n\n".join(pieces),
        "parameters": {
            "type": "object",
            "properties": {"input": {"type": "string", "description": "The tool's input text."}},
            "required": ["input"],
        },
        "strict": False,
    }
    client: dict[str, Any] = {"kind": "custom", "name": tool.name, "namespace": ns}
    if isinstance(fmt, CustomGrammarFormat):  # for a backend that decodes under it
        client["grammar"] = {"syntax": fmt.syntax, "definition": fmt.definition}
    return _entry(spec, client, deferred=bool(tool.defer_loading))


def _fixed(kind: str, parameters: dict[str, Any], description: str | None = None) -> dict[str, Any]:
    spec = {
        "name": kind,
        "description": description or _DESCRIPTIONS[kind],
        "parameters": parameters,
        "strict": False,
    }
    return _entry(spec, {"kind": kind, "name": kind, "namespace": None})


def entries(tool: ClientToolParam) -> list[dict[str, Any]]:
    """The run's tool entries of one client tool (a namespace has one per member)."""
    if isinstance(tool, FunctionToolParam):
        return [_function(tool, None)]
    if isinstance(tool, CustomToolParam):
        return [_custom(tool, None)]
    if isinstance(tool, NamespaceToolParam):
        return [
            _function(m, tool) if isinstance(m, FunctionToolParam) else _custom(m, tool)
            for m in tool.tools
        ]
    if isinstance(tool, LocalShellToolParam):
        return [_fixed(LOCAL_SHELL, _LOCAL_SHELL_PARAMETERS)]
    if isinstance(tool, ShellToolParam):
        entry = _fixed(SHELL, _SHELL_PARAMETERS)
        if tool.environment is not None:
            entry["client"]["environment"] = {"type": "local"}
        return [entry]
    if isinstance(tool, ApplyPatchToolParam):
        return [_fixed(APPLY_PATCH, _APPLY_PATCH_PARAMETERS)]
    assert isinstance(tool, ToolSearchToolParam)
    entry = _fixed(TOOL_SEARCH, tool.parameters or _TOOL_SEARCH_PARAMETERS, tool.description)
    entry["client"]["execution"] = "client"
    return [entry]


_LOADABLE: TypeAdapter[Any] = TypeAdapter(LoadableTool)


def loaded_entries(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The entries of the tools a `tool_search_output` or an `additional_tools` item carries
    (checked when it came in), offered whether or not they were deferred."""
    found: list[dict[str, Any]] = []
    for given in tools:
        try:
            tool = _LOADABLE.validate_python(given)
        except ValidationError:
            continue
        for entry in entries(tool):
            entry.pop("deferred", None)
            found.append(entry)
    return found


# --- grammars ------------------------------------------------------------------------------

_GRAMMAR_SYNTAXES = ("lark", "regex")


def check_grammar(fmt: CustomGrammarFormat, param: str) -> None:
    """A custom tool's grammar must parse: a regex as Python's `re` reads it, a Lark grammar
    as Lark loads it (rules defined, a `start` rule, its regex terminals valid)."""
    if fmt.syntax not in _GRAMMAR_SYNTAXES:
        raise InvalidRequestError(
            f"Invalid value: '{fmt.syntax}'. Supported values are: 'lark' and 'regex'.",
            param=param.removesuffix(".definition") + ".syntax",
            code="invalid_value",
        )
    problem = (
        _regex_problem(fmt.definition) if fmt.syntax == "regex" else _lark_problem(fmt.definition)
    )
    if problem is not None:
        raise InvalidRequestError(
            f"Invalid {fmt.syntax} grammar in '{param}': {problem}",
            param=param,
            code="invalid_grammar",
        )


def _regex_problem(definition: str) -> str | None:
    try:
        re.compile(definition)
    except re.error as exc:
        return str(exc)
    return None


@lru_cache(maxsize=64)  # a client such as Codex sends the same grammar every turn
def _lark_problem(definition: str) -> str | None:
    from lark.exceptions import LarkError
    from lark.load_grammar import GrammarBuilder

    builder = GrammarBuilder()
    try:
        builder.load_grammar(definition, "<definition>")
        grammar = builder.build()
        if not any(rule[0] in ("start", "?start") for rule in grammar.rule_defs):
            return "it has no 'start' rule."
        terminals, _, _ = grammar.compile(["start"], set())
        for terminal in terminals:
            re.compile(terminal.pattern.to_regexp())
    except (LarkError, re.error) as exc:
        return " ".join(str(exc).split())
    except OSError:  # an %import of a grammar Lark does not ship
        return "it imports a grammar that is not available."
    return None
