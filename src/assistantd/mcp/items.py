"""The MCP item types: as the API shows them, as a client gives them back, and as the model
reads them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from assistantd.db.models import Item
from assistantd.kit.schemas import RequestModel
from assistantd.mcp.params import function_name

TYPES = frozenset({"mcp_list_tools", "mcp_call", "mcp_approval_request", "mcp_approval_response"})


def wire(row: Item) -> dict[str, Any]:
    """One MCP item in the Responses wire shape."""
    data = row.data or {}
    kind = row.type
    if kind == "mcp_list_tools":
        return {
            "type": kind,
            "id": row.id,
            "server_label": data.get("server_label", ""),
            "tools": data.get("tools") or [],
            "error": data.get("error"),
        }
    if kind == "mcp_call":
        return {
            "type": kind,
            "id": row.id,
            "server_label": data.get("server_label", ""),
            "name": data.get("name", ""),
            "arguments": data.get("arguments", ""),
            "output": data.get("output"),
            "error": data.get("error"),
            "status": row.status,
            "approval_request_id": data.get("approval_request_id"),
        }
    if kind == "mcp_approval_request":
        return {
            "type": kind,
            "id": row.id,
            "server_label": data.get("server_label", ""),
            "name": data.get("name", ""),
            "arguments": data.get("arguments", ""),
        }
    assert kind == "mcp_approval_response"
    return {
        "type": kind,
        "id": row.id,
        "approval_request_id": data.get("approval_request_id", ""),
        "approve": bool(data.get("approve")),
        "reason": data.get("reason"),
    }


# --- as a client gives them back ---------------------------------------------------------------

_Id = str


class McpListToolsItem(RequestModel):
    type: Literal["mcp_list_tools"]
    id: _Id
    server_label: str
    tools: list[dict[str, Any]]
    error: str | None = None


class McpCallItem(RequestModel):
    type: Literal["mcp_call"]
    id: _Id
    server_label: str
    name: str
    arguments: str
    output: str | None = None
    error: dict[str, Any] | str | None = None
    status: str | None = None
    approval_request_id: str | None = None


class McpApprovalRequestItem(RequestModel):
    type: Literal["mcp_approval_request"]
    id: _Id
    server_label: str
    name: str
    arguments: str


class McpApprovalResponseItem(RequestModel):
    type: Literal["mcp_approval_response"]
    id: _Id | None = None
    approval_request_id: str = Field(min_length=1)
    approve: bool
    reason: str | None = None


InputMcpItem = McpListToolsItem | McpCallItem | McpApprovalRequestItem | McpApprovalResponseItem


def row_fields(given: InputMcpItem) -> tuple[str, dict[str, Any], str]:
    """An input item's type, data and status as a row keeps them."""
    if isinstance(given, McpApprovalResponseItem):
        return (
            given.type,
            given.model_dump(include={"approval_request_id", "approve", "reason"}),
            ("completed"),
        )
    data = given.model_dump(exclude={"type", "id", "status"}, exclude_none=True)
    status = "completed"
    if isinstance(given, McpCallItem):
        if isinstance(given.error, str):
            data["error"] = {"type": "mcp_protocol_error", "code": -32000, "message": given.error}
        status = "failed" if given.error else "completed"
    return given.type, data, status


# --- as the model reads them -------------------------------------------------------------------


def call_name(row: Item) -> str:
    data = row.data or {}
    return str(
        data.get("_function_name")
        or function_name(str(data.get("server_label", "")), str(data.get("name", "")))
    )


def model_output(row: Item, declined: dict[str, str | None]) -> str:
    """What the model read for an MCP call, or for a declined approval request."""
    data = row.data or {}
    if row.type == "mcp_approval_request":
        reason = declined.get(row.id) or declined.get(row.call_id or "")
        why = f" ({reason})" if reason else ""
        return f"Error: the user declined to run this tool{why}."
    if data.get("_model_output") is not None:
        return str(data["_model_output"])
    if data.get("error"):
        error = data["error"]
        if isinstance(error, dict) and error.get("type") == "mcp_tool_execution_error":
            # A client's copy of the call may hold anything in `content`: text parts count.
            parts = error.get("content")
            parts = parts if isinstance(parts, list) else []
            texts = (str(p.get("text", "")) for p in parts if isinstance(p, dict))
            return "Error: " + "\n".join(texts)
        message = error.get("message") if isinstance(error, dict) else error
        return f"Error: {message}"
    return str(data.get("output") or "")


def declined_request(row: Item, declined: dict[str, str | None]) -> bool:
    """Whether the approval request `row` is declined (a client's copy of a request keeps its
    first id as its call id)."""
    return row.id in declined or (row.call_id is not None and row.call_id in declined)


def declined_requests(items: list[Item]) -> dict[str, str | None]:
    """The approval requests the context's approval responses decline, with their reasons."""
    found: dict[str, str | None] = {}
    for item in items:
        if item.type == "mcp_approval_response" and not (item.data or {}).get("approve"):
            found[str((item.data or {}).get("approval_request_id"))] = (item.data or {}).get(
                "reason"
            )
    return found
