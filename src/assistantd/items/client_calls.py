"""The items of the tools a client runs: a call the model makes to the function a client tool is
offered as (`tools.client`) becomes the tool's own item (`custom_tool_call`, `shell_call`...),
and each such call and its output become chat messages again for the model's later turns.

Item data, by type: `function_call` {name, arguments, namespace?}; `custom_tool_call` {name,
input, namespace?}; `local_shell_call` and `shell_call` {action (, environment)};
`apply_patch_call` {operation}; `tool_search_call` {arguments, execution}. Outputs keep
`output` (`shell_call_output` also `max_output_length`, `tool_search_output` `tools` and
`execution`); an `apply_patch_call_output`'s status is the row's.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from assistantd.db.models import Item
from assistantd.items.kinds import output_text
from assistantd.tools.client import (
    APPLY_PATCH,
    LOCAL_SHELL,
    SHELL,
    TOOL_SEARCH,
    chat_function,
    loaded_entries,
    offered_name,
)

# The item type of a call to each kind of client tool.
CALL_TYPE = {
    "function": "function_call",
    "custom": "custom_tool_call",
    "local_shell": "local_shell_call",
    "shell": "shell_call",
    "apply_patch": "apply_patch_call",
    "tool_search": "tool_search_call",
}
# Items that answer a client's call (any of them answers any call: a client may answer a
# local_shell_call with a function_call_output, as Codex does).
OUTPUT_TYPES = frozenset(
    {
        "function_call_output",
        "custom_tool_call_output",
        "local_shell_call_output",
        "shell_call_output",
        "apply_patch_call_output",
        "tool_search_output",
    }
)
_PATCH_TYPES = ("create_file", "update_file", "delete_file")


def _loads(arguments: str) -> Any:
    try:
        return json.loads(arguments)
    except ValueError:
        return None


def _object(arguments: str) -> dict[str, Any]:
    value = _loads(arguments)
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value] if isinstance(value, list) else []


def custom_input(arguments: str) -> str:
    """A custom tool's input: `{"input": "..."}`, else the arguments as they are (a model may
    send the text itself)."""
    value = _loads(arguments)
    if isinstance(value, dict) and isinstance(value.get("input"), str):
        return str(value["input"])
    if isinstance(value, str):
        return value
    return arguments


def started_data(client: dict[str, Any] | None, name: str) -> dict[str, Any]:
    """A call item's data while the model is still writing it."""
    return call_data(client, name, "")


def call_data(client: dict[str, Any] | None, name: str, arguments: str) -> dict[str, Any]:
    """A call item's data from the model's call of function `name` with `arguments`."""
    if client is None:
        return {"name": name, "arguments": arguments}
    kind = client["kind"]
    namespace = {"namespace": client["namespace"]} if client.get("namespace") else {}
    if kind == "function":
        return {"name": client["name"], "arguments": arguments, **namespace}
    if kind == "custom":
        text = custom_input(arguments) if arguments else ""
        return {"name": client["name"], "input": text, **namespace}
    given = _object(arguments)
    if kind == LOCAL_SHELL:
        command = given.get("command")
        argv = ["bash", "-lc", command] if isinstance(command, str) else _strings(command)
        env = given.get("env")
        action = {
            "type": "exec",
            "command": argv,
            "env": {str(k): str(v) for k, v in env.items()} if isinstance(env, dict) else {},
            "timeout_ms": _int(given.get("timeout_ms")),
            "working_directory": _str(given.get("working_directory")),
            "user": _str(given.get("user")),
        }
        return {"action": action}
    if kind == SHELL:
        action = {
            "commands": _strings(given.get("commands")),
            "timeout_ms": _int(given.get("timeout_ms")),
            "max_output_length": _int(given.get("max_output_length")),
        }
        return {"action": action, "environment": client.get("environment")}
    if kind == APPLY_PATCH:
        if isinstance(given.get("operation"), dict):
            given = given["operation"]
        kind_of = given.get("type") if given.get("type") in _PATCH_TYPES else "update_file"
        operation: dict[str, Any] = {"type": kind_of, "path": _str(given.get("path")) or ""}
        if kind_of != "delete_file":
            operation["diff"] = _str(given.get("diff")) or ""
        return {"operation": operation}
    assert kind == TOOL_SEARCH
    value = _loads(arguments) if arguments else {}
    return {"arguments": value if value is not None else arguments, "execution": "client"}


def render(row: Item) -> dict[str, Any]:
    """A client call or output item (not a function call's) in the Responses wire shape."""
    data = row.data or {}
    kind = row.type
    base = {"type": kind, "id": row.id, "call_id": row.call_id}
    if kind == "custom_tool_call":
        out = {**base, "name": data.get("name", ""), "input": data.get("input", "")}
        if data.get("namespace"):
            out["namespace"] = data["namespace"]
        return {**out, "status": row.status}
    if kind == "local_shell_call":
        return {**base, "action": data.get("action"), "status": row.status}
    if kind == "shell_call":
        environment = data.get("environment")
        return {**base, "action": data.get("action"), "environment": environment, **_st(row)}
    if kind == "apply_patch_call":
        status = "completed" if row.status == "completed" else "in_progress"
        return {**base, "operation": data.get("operation"), "status": status}
    if kind == "tool_search_call":
        execution = data.get("execution") or "client"
        return {**base, "execution": execution, "arguments": data.get("arguments"), **_st(row)}
    if kind == "custom_tool_call_output":
        return {**base, "output": data.get("output", ""), "status": row.status}
    if kind == "local_shell_call_output":
        # OpenAI's names the call by `id` (and has no `call_id`).
        return {"type": kind, "id": row.call_id, "output": data.get("output", ""), **_st(row)}
    if kind == "shell_call_output":
        limit = data.get("max_output_length")
        return {**base, "output": data.get("output") or [], "max_output_length": limit, **_st(row)}
    if kind == "apply_patch_call_output":
        status = "failed" if row.status == "failed" else "completed"
        return {**base, "status": status, "output": data.get("output")}
    if kind == "tool_search_output":
        execution = data.get("execution") or "client"
        return {**base, "execution": execution, "tools": data.get("tools") or [], **_st(row)}
    if kind == "additional_tools":
        tools = data.get("tools") or []
        return {"type": kind, "id": row.id, "role": data.get("role") or "developer", "tools": tools}
    raise ValueError(f"unknown item type {kind!r}")


def _st(row: Item) -> dict[str, str]:
    return {"status": row.status if row.status != "failed" else "completed"}


# --- back to the model ---------------------------------------------------------------------


def _compact(value: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in value.items() if v is not None}, ensure_ascii=False)


def chat_call(item: Item) -> tuple[str, str]:
    """The function name and arguments the model reads for a client call item."""
    data = item.data or {}
    kind = item.type
    if kind == "function_call":
        return offered_name(data.get("name", ""), data.get("namespace")), data.get("arguments", "")
    if kind == "custom_tool_call":
        name = offered_name(data.get("name", ""), data.get("namespace"))
        return name, json.dumps({"input": data.get("input", "")}, ensure_ascii=False)
    if kind == "local_shell_call":
        action = dict(data.get("action") or {})
        action.pop("type", None)
        if not action.get("env"):
            action.pop("env", None)
        return LOCAL_SHELL, _compact(action)
    if kind == "shell_call":
        return SHELL, _compact(dict(data.get("action") or {}))
    if kind == "apply_patch_call":
        return APPLY_PATCH, _compact(dict(data.get("operation") or {}))
    assert kind == "tool_search_call"
    arguments = data.get("arguments")
    text = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
    return TOOL_SEARCH, text


def chat_output(item: Item) -> str:
    """What the model reads as the result of a client's call."""
    data = item.data or {}
    kind = item.type
    if kind == "shell_call_output":
        pieces = []
        for number, part in enumerate(data.get("output") or []):
            outcome = part.get("outcome") or {}
            ended = (
                "timed out"
                if outcome.get("type") == "timeout"
                else f"exit code {outcome.get('exit_code')}"
            )
            pieces.append(f"[command {number}: {ended}]")
            if part.get("stdout"):
                pieces.append(f"stdout:\n{part['stdout']}")
            if part.get("stderr"):
                pieces.append(f"stderr:\n{part['stderr']}")
        return "\n".join(pieces) or "(no output)"
    if kind == "apply_patch_call_output":
        status = "failed" if item.status == "failed" else "completed"
        return f"{status}: {data['output']}" if data.get("output") else status
    if kind == "tool_search_output":
        found = [
            f"- {entry['function']['name']}: {entry['function'].get('description') or ''}".rstrip()
            for entry in loaded_entries(data.get("tools") or [])
        ]
        if not found:
            return "No tools found."
        return "Tools loaded; you can call them now:\n" + "\n".join(found)
    return output_text(data.get("output"))


# Items whose `tools` are offered to the model from where they are on.
_TOOL_ITEMS = frozenset({"tool_search_output", "additional_tools"})


def loaded(items: Iterable[Item]) -> list[dict[str, Any]]:
    """The tool entries that `tool_search_output` and `additional_tools` items among `items`
    make available, first found first."""
    found: dict[str, dict[str, Any]] = {}
    for item in items:
        if item.type not in _TOOL_ITEMS:
            continue
        for entry in loaded_entries((item.data or {}).get("tools") or []):
            found.setdefault(entry["function"]["name"], entry)
    return list(found.values())


def turn_tools(
    run_tools: Sequence[dict[str, Any]], offered: list[dict[str, Any]], items: Iterable[Item]
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """A response's chat tools for a turn (`offered`, plus those its context's tool searches
    loaded), and which client tool each function is, by function name."""
    found = loaded(items)
    client_tools = {
        t["function"]["name"]: t["client"] for t in [*run_tools, *found] if t.get("client")
    }
    names = {t["function"]["name"] for t in offered}
    extra = [chat_function(t["function"]) for t in found if t["function"]["name"] not in names]
    return [*offered, *extra], client_tools
