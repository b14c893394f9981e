"""Item types, and the rows the engine and both API surfaces create."""

from __future__ import annotations

from typing import Any

from assistantd.db.models import Item
from assistantd.kit.ids import Prefix, created_at_of, new_id, position_of

SERVER_CALL_TYPES = frozenset(
    {"code_interpreter_call", "file_search_call", "web_search_call", "mcp_call"}
)
# Items that record a tool call the model made: server tools' carry their results; the calls a
# client runs (`items.client_calls`) are answered by separate output items.
CLIENT_CALL_TYPES = frozenset(
    {
        "function_call",
        "custom_tool_call",
        "local_shell_call",
        "shell_call",
        "apply_patch_call",
        "tool_search_call",
    }
)
CALL_TYPES = SERVER_CALL_TYPES | CLIENT_CALL_TYPES
# The item type of each server tool's calls, by tool type.
SERVER_CALL_TYPE = {
    "code_interpreter": "code_interpreter_call",
    "file_search": "file_search_call",
    "web_search": "web_search_call",
    "mcp": "mcp_call",
}
PREFIX = {
    "message": Prefix.MESSAGE,
    "function_call": Prefix.FUNCTION_CALL,
    "function_call_output": Prefix.FUNCTION_CALL_OUTPUT,
    "code_interpreter_call": Prefix.CODE_INTERPRETER_CALL,
    "file_search_call": Prefix.FILE_SEARCH_CALL,
    "web_search_call": Prefix.WEB_SEARCH_CALL,
    "reasoning": Prefix.REASONING,
    "compaction": Prefix.COMPACTION,
    "custom_tool_call": Prefix.CUSTOM_TOOL_CALL,
    "custom_tool_call_output": Prefix.CUSTOM_TOOL_CALL_OUTPUT,
    "local_shell_call": Prefix.LOCAL_SHELL_CALL,
    "local_shell_call_output": Prefix.LOCAL_SHELL_CALL_OUTPUT,
    "shell_call": Prefix.SHELL_CALL,
    "shell_call_output": Prefix.SHELL_CALL_OUTPUT,
    "apply_patch_call": Prefix.APPLY_PATCH_CALL,
    "apply_patch_call_output": Prefix.APPLY_PATCH_CALL_OUTPUT,
    "tool_search_call": Prefix.TOOL_SEARCH_CALL,
    "tool_search_output": Prefix.TOOL_SEARCH_OUTPUT,
    "additional_tools": Prefix.ADDITIONAL_TOOLS,
    "mcp_list_tools": Prefix.MCP_LIST_TOOLS,
    "mcp_call": Prefix.MCP_CALL,
    "mcp_approval_request": Prefix.MCP_APPROVAL_REQUEST,
    "mcp_approval_response": Prefix.MCP_APPROVAL_RESPONSE,
}


def new_item(
    project: str,
    item_type: str,
    *,
    thread_id: str | None,
    status: str = "completed",
    run_id: str | None = None,
    input_of: str | None = None,
    call_id: str | None = None,
    data: dict[str, Any] | None = None,
    item_id: str | None = None,
) -> Item:
    """A new item row that is not a message (see `messages.service.new_message`), not yet
    added to a session."""
    item_id = item_id or new_id(PREFIX[item_type])
    return Item(
        id=item_id,
        project=project,
        created_at=created_at_of(item_id),
        thread_id=thread_id,
        position=position_of(item_id),
        type=item_type,
        role=None,
        content=None,
        status=status,
        run_id=run_id,
        input_of=input_of,
        call_id=call_id,
        data=data or {},
        attachments=None,
        metadata_=None,
    )


def output_text(output: Any) -> str:
    """A function call output as the model reads it: the string, or the text of its parts."""
    if output is None:
        return ""
    if isinstance(output, str):
        return output
    pieces = []
    for part in output:
        if part.get("type") == "input_text":
            pieces.append(str(part.get("text", "")))
        elif part.get("type") == "input_image":
            pieces.append(f"[image {part.get('file_id') or part.get('image_url', '')}]")
        elif part.get("type") == "input_file":
            pieces.append(f"[file {part.get('filename') or part.get('file_id', '')}]")
    return "\n".join(pieces)


def server_call_data(
    result_item_data: dict[str, Any], function_name: str, arguments: str, model_output: str
) -> dict[str, Any]:
    """A server tool call item's data: the fields the tool gave for it, and what the model saw
    (kept private, for its later turns)."""
    seen = {"_function_name": function_name, "_arguments": arguments, "_model_output": model_output}
    return {**result_item_data, **seen}
