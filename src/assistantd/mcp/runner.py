"""The `mcp` tool in an execution: the functions the model is offered (from the servers' tool
lists, fetched once per context), the calls it makes, and the calls its client approved.

The model sees each allowed tool of a server as a function (`mcp__{label}__{tool}`). A tool
that needs approval streams as an `mcp_approval_request` item and is not run: the response ends
with it. An `mcp_approval_response` that approves it, in a later request's input, runs the call
before the model's first turn of that request; one that declines it tells the model so.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from assistantd.db.models import Item, Run
from assistantd.items.kinds import new_item, server_call_data
from assistantd.kit.ids import Prefix, new_id
from assistantd.kit.sealed import Sealer
from assistantd.mcp import client
from assistantd.mcp.items import wire
from assistantd.mcp.params import allowed, function_name, needs_approval
from assistantd.settings import Settings
from assistantd.tools.base import ToolContext, ToolResult

PREFIX = "mcp__"


def definitions(run: Run) -> list[dict[str, Any]]:
    return [t for t in run.tools or [] if t.get("type") == "mcp"]


def definition_for(run: Run, server_label: str) -> dict[str, Any] | None:
    return next((t for t in definitions(run) if t.get("server_label") == server_label), None)


class McpTool:
    """Runs one MCP tool call (the ServerTool interface); the tool lists and approvals are the
    executor's (`prepare`, `run_approved`)."""

    type = "mcp"
    function_name = PREFIX

    def __init__(self, settings: Settings, sealer: Sealer) -> None:
        self.settings = settings
        self.sealer = sealer

    def claims(self, name: str) -> bool:
        return name.startswith(PREFIX)

    def function_schema(self, definition: dict[str, Any]) -> dict[str, Any]:
        raise AssertionError("MCP functions come from the servers' tool lists (`prepare`)")

    def initial_details(self, call_id: str) -> dict[str, Any]:
        return {}

    async def check_available(self) -> None:
        return None

    async def execute(self, ctx: ToolContext, call_id: str, arguments: str) -> ToolResult:
        name = str(ctx.call.get("name", ""))
        try:
            parsed = json.loads(arguments or "{}")
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            return self.failure(call_id, arguments, "the arguments are not a JSON object")
        done = await client.call_tool(
            client.server_of(ctx.tool_definition, self.sealer, ctx.project),
            self.settings,
            name,
            parsed,
        )
        return ToolResult(
            output=done.text,
            details={},
            item_data={"arguments": arguments, "output": done.output, "error": done.error},
            failed=done.error is not None,
        )

    def failure(self, call_id: str, arguments: str, message: str) -> ToolResult:
        error = {"type": "mcp_protocol_error", "code": -32000, "message": message}
        return ToolResult(
            output=f"Error: {message}",
            details={},
            item_data={"arguments": arguments, "output": None, "error": error},
            failed=True,
        )

    async def annotate(
        self, ctx: ToolContext, text: str, results: list[ToolResult]
    ) -> list[dict[str, Any]]:
        return []


@dataclass
class Offered:
    """The MCP functions of one model turn."""

    chat_tools: list[dict[str, Any]] = field(default_factory=list)
    # function name -> (the item type a call makes, the item's first data)
    by_name: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)


def _listing(items: list[Item], run: Run, label: str) -> Item | None:
    """The newest tool list of the server in the context (a failed one counts only in the
    response that made it: a later one lists again)."""
    for item in reversed(items):
        data = item.data or {}
        if item.type != "mcp_list_tools" or data.get("server_label") != label:
            continue
        if data.get("error") and item.run_id != run.id:
            continue
        return item
    return None


async def prepare(
    run: Run,
    items: list[Item],
    rec: Any,
    settings: Settings,
    sealer: Sealer,
    *,
    before_write: Callable[[], Awaitable[None]],
) -> Offered:
    """The functions the model is offered; a server's tools are listed (an `mcp_list_tools`
    item, appended to `items`) when the context has no list of them yet (`before_write` is
    awaited first)."""
    offered = Offered()
    for definition in definitions(run):
        label = str(definition["server_label"])
        listing = _listing(items, run, label)
        if listing is None:
            await before_write()
            listing = await _list(run, definition, rec, settings, sealer)
            items.append(listing)
        for tool in (listing.data or {}).get("tools") or []:
            if not allowed(definition, tool):
                continue
            name = function_name(label, str(tool["name"]))
            description = tool.get("description") or ""
            if definition.get("server_description"):
                description = f"[{label}: {definition['server_description']}] {description}"
            spec: dict[str, Any] = {
                "name": name,
                "parameters": tool.get("input_schema") or {"type": "object", "properties": {}},
            }
            if description:
                spec["description"] = description
            offered.chat_tools.append({"type": "function", "function": spec})
            kind = "mcp_approval_request" if needs_approval(definition, tool) else "mcp_call"
            first = {"server_label": label, "name": tool["name"], "arguments": ""}
            offered.by_name[name] = (kind, first)
    return offered


class ChoiceUnmet(Exception):
    """A `tool_choice` names an MCP tool the server's list does not offer (the message says)."""


def forced(run: Run, items: list[Item], offered: Offered, choice: dict[str, Any]) -> list[str]:
    """The functions an MCP `tool_choice` forces a turn to call among: the named tool of the
    server, or any of its tools. None are forced when the server's tools could not be listed
    (the model reads why); ChoiceUnmet when they were and lack what the choice names."""
    label = str(choice["server_label"])
    listing = _listing(items, run, label)
    if listing is None or (listing.data or {}).get("error"):
        return []
    name = choice.get("name")
    if name is not None:
        wanted = function_name(label, str(name))
        if wanted not in offered.by_name:
            raise ChoiceUnmet(
                f"'tool_choice' names the tool '{name}' of MCP server '{label}', which the "
                "server does not list (or its allowed_tools filter excludes)."
            )
        return [wanted]
    found = [fn for fn, (_, first) in offered.by_name.items() if first["server_label"] == label]
    if not found:
        raise ChoiceUnmet(
            f"'tool_choice' asks for a tool of MCP server '{label}', which offers none."
        )
    return found


async def _list(
    run: Run, definition: dict[str, Any], rec: Any, settings: Settings, sealer: Sealer
) -> Item:
    label = str(definition["server_label"])
    item = new_item(
        run.project,
        "mcp_list_tools",
        thread_id=rec.items_thread_id,
        run_id=run.id,
        data={"server_label": label, "tools": []},
    )
    index = rec.start_index(item)
    where = {"item_id": item.id, "output_index": index}
    rec.send("response.output_item.added", output_index=index, item=wire(item))
    rec.send("response.mcp_list_tools.in_progress", **where)
    try:
        server = client.server_of(definition, sealer, run.project)
        tools = await client.list_tools(server, settings)
    except client.McpError as exc:
        item.data = {"server_label": label, "tools": [], "error": str(exc)}
        rec.send("response.mcp_list_tools.failed", **where)
    else:
        item.data = {"server_label": label, "tools": tools}
        rec.send("response.mcp_list_tools.completed", **where)
    rec.send("response.output_item.done", rows=[item], output_index=index, item=wire(item))
    await rec.store_now()
    return item


def work_due(run: Run, items: list[Item], *, approvals: bool) -> bool:
    """Whether an MCP server is to be asked before the turn: a call approved (looked for
    when `approvals`), or a server whose tools the context has not listed."""
    if approvals and approved_due(run, items):
        return True
    return any(_listing(items, run, str(d["server_label"])) is None for d in definitions(run))


def approved_due(run: Run, items: list[Item]) -> list[Item]:
    """The approval requests this request's input approves whose calls have not run yet (a
    call made already, by an interrupted attempt, is in the context)."""
    by_id = {item.call_id: item for item in items if item.type == "mcp_approval_request"}
    by_id.update({item.id: item for item in items if item.type == "mcp_approval_request"})
    made = {
        str((item.data or {}).get("approval_request_id"))
        for item in items
        if item.type == "mcp_call" and (item.data or {}).get("approval_request_id")
    }
    due: list[Item] = []
    for answer in items:
        data = answer.data or {}
        if answer.type != "mcp_approval_response" or answer.input_of != run.id:
            continue
        request = by_id.get(str(data.get("approval_request_id")))
        if not data.get("approve") or request is None or request.id in made:
            continue
        if request.type != "mcp_approval_request":
            continue
        made.add(request.id)
        due.append(request)
    return due


async def run_approved(run: Run, due: list[Item], rec: Any, tool: McpTool) -> list[Item]:
    """Run the approved calls; their `mcp_call` items, stored."""
    made = [await _run_one(run, request, rec, tool) for request in due]
    await rec.store_now()
    return made


async def _run_one(run: Run, request: Item, rec: Any, tool: McpTool) -> Item:
    asked = request.data or {}
    label = str(asked.get("server_label", ""))
    arguments = str(asked.get("arguments", ""))
    item = new_item(
        run.project,
        "mcp_call",
        thread_id=rec.items_thread_id,
        status="in_progress",
        run_id=run.id,
        call_id=request.call_id or new_id(Prefix.CALL),
        data={
            "server_label": label,
            "name": asked.get("name", ""),
            "arguments": arguments,
            "approval_request_id": request.id,
        },
    )
    index = rec.start_index(item)
    where = {"item_id": item.id, "output_index": index}
    rec.send("response.output_item.added", output_index=index, item=wire(item))
    rec.send("response.mcp_call.in_progress", **where)
    rec.send("response.mcp_call_arguments.done", **where, arguments=arguments)
    definition = definition_for(run, label)
    if definition is None:
        done = tool.failure(
            item.call_id or "",
            arguments,
            f"the MCP server '{label}' is not among this request's tools",
        )
    else:
        ctx = ToolContext(
            project=run.project,
            thread_id=run.thread_id or run.id,
            run_id=run.id,
            assistant_id="",
            tool_definition=definition,
            tool_resources={},
            sessions=rec.deps.sessions,
            blobs=rec.deps.blobs,
            settings=rec.deps.settings,
            call=dict(item.data or {}),
        )
        done = await tool.execute(ctx, item.call_id or "", arguments)
    name = call_name_of(label, str(asked.get("name", "")))
    item.data = {
        **(item.data or {}),
        **server_call_data(done.item_data, name, arguments, done.output),
    }
    item.status = "failed" if done.failed else "completed"
    rec.send(f"response.mcp_call.{'failed' if done.failed else 'completed'}", **where)
    rec.send("response.output_item.done", rows=[item], output_index=index, item=wire(item))
    return item


def call_name_of(label: str, tool_name: str) -> str:
    return function_name(label, tool_name)
