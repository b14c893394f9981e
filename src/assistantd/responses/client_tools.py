"""A response's client tools (function, custom, namespace, local_shell, shell, apply_patch, and
a client-executed tool_search): checked, in the run's entries (`tools.client`), as echoed, and
the `tool_choice` forms that name them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from assistantd.errors import InvalidRequestError
from assistantd.tools import client
from assistantd.tools.client_params import (
    ClientToolParam,
    CustomGrammarFormat,
    CustomToolParam,
    FunctionToolParam,
    NamespaceToolParam,
    ShellToolParam,
    ToolSearchToolParam,
)


def _check(tool: ClientToolParam, index: int, *, prefix: str = "tools") -> None:
    param = f"{prefix}[{index}]"
    if isinstance(tool, CustomToolParam) and isinstance(tool.format, CustomGrammarFormat):
        client.check_grammar(tool.format, f"{param}.format.definition")
    elif isinstance(tool, NamespaceToolParam):
        for at, member in enumerate(tool.tools):
            if isinstance(member, CustomToolParam) and isinstance(
                member.format, CustomGrammarFormat
            ):
                client.check_grammar(member.format, f"{param}.tools[{at}].format.definition")
    elif isinstance(tool, ShellToolParam) and tool.environment is not None:
        if tool.environment.get("type") != "local" or tool.environment.get("skills"):
            raise InvalidRequestError(
                "Hosted shell environments are not supported by this server: give the shell "
                'tool no \'environment\' or {"type": "local"} (without skills), and run the '
                "commands of its shell_call items yourself.",
                param=f"{param}.environment",
                code="unsupported_parameter",
            )
    elif isinstance(tool, ToolSearchToolParam) and tool.execution != "client":
        raise InvalidRequestError(
            "Server-executed tool search is not supported by this server: set "
            "'execution' to 'client' and answer its tool_search_call items with "
            "tool_search_output items.",
            param=f"{param}.execution",
            code="unsupported_parameter",
        )


def check_loaded(given_input: Sequence[Any]) -> None:
    """The tools a `tool_search_output` or `additional_tools` item of the input makes
    available are ones this server serves (grammars that parse, no hosted shell...)."""
    for index, item in enumerate(given_input):
        if getattr(item, "type", None) not in ("tool_search_output", "additional_tools"):
            continue
        for at, tool in enumerate(item.tools):
            _check(tool, at, prefix=f"input[{index}].tools")


def entries(given: Sequence[tuple[int, ClientToolParam]]) -> dict[int, list[dict[str, Any]]]:
    """The run's entries of the request's client tools (`(index in tools, tool)`), by index."""
    by_index: dict[int, list[dict[str, Any]]] = {}
    where: dict[str, int] = {}
    for index, tool in given:
        _check(tool, index)
        by_index[index] = client.entries(tool)
        for entry in by_index[index]:
            name = entry["function"]["name"]
            if name in where:
                raise InvalidRequestError(
                    f"Duplicate tool name: '{name}' (tools[{where[name]}] and tools[{index}]); "
                    "each tool must be offered under its own name.",
                    param=f"tools[{index}]",
                )
            where[name] = index
    found = [entry for listed in by_index.values() for entry in listed]
    deferred = any(entry.get("deferred") for entry in found)
    if deferred and not any(entry["client"]["kind"] == client.TOOL_SEARCH for entry in found):
        raise InvalidRequestError(
            "Tools with 'defer_loading' need a tool_search tool (with 'execution': 'client') "
            "to be found by.",
            param="tools",
        )
    return by_index


def echoed(tool: ClientToolParam) -> dict[str, Any]:
    """The tool as the response shows it."""
    if isinstance(tool, FunctionToolParam):
        shown: dict[str, Any] = {
            "type": "function",
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.parameters,
            "strict": bool(tool.strict),
        }
        if tool.defer_loading is not None:
            shown["defer_loading"] = tool.defer_loading
        return shown
    return tool.model_dump(exclude_none=True)


def choice(kind: str, name: str | None, run_tools: Sequence[dict[str, Any]]) -> str | None:
    """The function name a `tool_choice` of a client tool's type (`custom` with its name,
    `apply_patch`, `shell`) forces, or None when the request has no such tool."""
    for entry in run_tools:
        described = entry.get("client")
        if described is None or described["kind"] != kind:
            continue
        if name is None or (described["name"] == name and not described.get("namespace")):
            return str(entry["function"]["name"])
    return None
