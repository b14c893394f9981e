"""A response's `tools` and `tool_choice`: checked, in the engine's (Assistants) shapes, and as
the response echoes them.

Function tools become chat-completions functions the client runs. `file_search` searches the
vector stores the tool names, with its filters and ranking; `code_interpreter` runs in the
container the tool names, or in one made for the conversation or chain (`{"type": "auto"}`).
Both are the same server tools the Assistants API runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from assistantd.containers import service as containers
from assistantd.db.models import Run
from assistantd.errors import InvalidRequestError
from assistantd.kit.ids import Prefix, check_prefix
from assistantd.mcp import params as mcp_params
from assistantd.responses import client_tools
from assistantd.responses.schemas import (
    AutoContainerParam,
    CodeInterpreterToolParam,
    FileSearchToolParam,
    Tool,
    ToolChoiceAllowed,
    ToolChoiceClient,
    ToolChoiceCustom,
    ToolChoiceFunction,
    ToolChoiceHosted,
    ToolChoiceMcp,
)
from assistantd.settings import Settings
from assistantd.tools import web_search_params
from assistantd.tools.client_params import CLIENT_TOOL_PARAMS as CLIENT_TOOLS
from assistantd.tools.web_search_params import WebSearchPreviewToolParam, WebSearchToolParam
from assistantd.vector_stores import repository as vector_stores

DEFAULT_MAX_RESULTS = 20


@dataclass
class ToolSet:
    engine: list[dict[str, Any]] = field(default_factory=list)
    echoed: list[dict[str, Any]] = field(default_factory=list)
    # The code interpreter's container: an id, or the auto spec to resolve (`containers`).
    container: str | AutoContainerParam | None = None
    container_param: str = ""

    @property
    def function_names(self) -> set[str]:
        """The functions a `tool_choice` may name (not other client tools' functions)."""
        return {
            t["function"]["name"]
            for t in self.engine
            if t["type"] == "function" and (t.get("client") or {}).get("kind") == "function"
        }

    @property
    def types(self) -> set[str]:
        return {t["type"] for t in self.engine}


def convert(given: list[Tool] | None, settings: Settings) -> ToolSet:
    tools = ToolSet()
    clients = client_tools.entries(
        [(index, tool) for index, tool in enumerate(given or []) if isinstance(tool, CLIENT_TOOLS)]
    )
    for index, tool in enumerate(given or []):
        if isinstance(tool, CLIENT_TOOLS):
            tools.engine.extend(clients[index])
            tools.echoed.append(client_tools.echoed(tool))
        elif isinstance(tool, FileSearchToolParam):
            ranking = tool.ranking_options.model_dump() if tool.ranking_options else None
            max_results = tool.max_num_results or DEFAULT_MAX_RESULTS
            filters = tool.filters.model_dump() if tool.filters is not None else None
            tools.engine.append(
                {
                    "type": "file_search",
                    "file_search": {"max_num_results": max_results, "ranking_options": ranking},
                    "vector_store_ids": list(tool.vector_store_ids),
                    "filters": filters,
                }
            )
            tools.echoed.append(
                {
                    "type": "file_search",
                    "filters": filters,
                    "max_num_results": max_results,
                    "ranking_options": ranking
                    or {"ranker": "auto", "score_threshold": 0.0, "hybrid_search": None},
                    "vector_store_ids": list(tool.vector_store_ids),
                }
            )
        elif isinstance(tool, WebSearchToolParam | WebSearchPreviewToolParam):
            if "web_search" in tools.types:
                raise InvalidRequestError(
                    "Only one web_search tool may be given.", param=f"tools[{index}]"
                )
            tools.engine.append(web_search_params.engine_entry(tool))
            tools.echoed.append(web_search_params.echoed(tool))
        elif isinstance(tool, CodeInterpreterToolParam):
            if tools.container is not None:
                raise InvalidRequestError(
                    "Only one code_interpreter tool may be given.", param=f"tools[{index}]"
                )
            tools.container = tool.container
            tools.container_param = f"tools[{index}].container"
            # The container id is filled in once resolved (see `responses.create`).
            tools.engine.append({"type": "code_interpreter", "container": None})
            tools.echoed.append(tool.model_dump(exclude_none=True))
        elif tool.type == "mcp":
            server = mcp_params.parse(tool.model_dump(), index, settings)
            tools.engine.append(mcp_params.engine(server))
            tools.echoed.append(mcp_params.echoed(server))
        else:
            raise InvalidRequestError(
                f"Invalid value: '{tool.type}'. Supported values are: 'function', 'custom', "
                "'namespace', 'local_shell', 'shell', 'apply_patch', 'tool_search', "
                "'file_search', 'code_interpreter', 'web_search', 'web_search_2025_08_26', "
                "'web_search_preview', 'web_search_preview_2025_03_11', and 'mcp'.",
                param=f"tools[{index}].type",
                code="invalid_value",
            )
    mcp_params.check_labels(tools.engine)
    return tools


async def check_vector_stores(session: AsyncSession, project: str, given: list[Tool]) -> None:
    """Every vector store a file_search tool names is one of the project's."""
    for index, tool in enumerate(given):
        if not isinstance(tool, FileSearchToolParam):
            continue
        for at, store_id in enumerate(tool.vector_store_ids):
            param = f"tools[{index}].vector_store_ids[{at}]"
            check_prefix(store_id, Prefix.VECTOR_STORE, param)
            store = await vector_stores.get(session, project, store_id)
            if store is None:
                raise InvalidRequestError(
                    f"Vector store with id '{store_id}' not found.", param=param
                )


def tool_choice(choice: Any, tools: ToolSet) -> tuple[Any, Any]:
    """`tool_choice` in the engine's shape and as echoed."""
    if choice is None:
        return "auto", "auto"
    if isinstance(choice, str):
        return choice, choice
    if isinstance(choice, ToolChoiceFunction):
        if choice.name not in tools.function_names:
            raise InvalidRequestError(
                f"Invalid 'tool_choice': function '{choice.name}' is not one of the tools.",
                param="tool_choice.name",
            )
        return {"type": "function", "function": {"name": choice.name}}, choice.model_dump()
    if isinstance(choice, ToolChoiceCustom | ToolChoiceClient):
        name = choice.name if isinstance(choice, ToolChoiceCustom) else None
        forced = client_tools.choice(choice.type, name, tools.engine)
        if forced is None:
            what = f"custom tool '{name}'" if name is not None else f"'{choice.type}' tool"
            raise InvalidRequestError(
                f"Invalid 'tool_choice': the request has no {what}.",
                param="tool_choice.name" if name is not None else "tool_choice.type",
            )
        return {"type": "function", "function": {"name": forced}}, choice.model_dump()
    if isinstance(choice, ToolChoiceMcp):
        return _mcp_choice(choice, tools), choice.model_dump()
    if isinstance(choice, ToolChoiceHosted):
        hosted = "web_search" if choice.type.startswith("web_search") else choice.type
        if hosted not in tools.types:
            raise InvalidRequestError(
                f"Invalid 'tool_choice': the request has no '{choice.type}' tool.",
                param="tool_choice.type",
            )
        return {"type": hosted}, choice.model_dump()
    assert isinstance(choice, ToolChoiceAllowed)
    allowed: list[str] = []
    for index, tool in enumerate(choice.tools):
        if tool.type == "function" and tool.name in tools.function_names:
            allowed.append(str(tool.name))
            continue
        forced = client_tools.choice(tool.type, tool.name, tools.engine)
        if tool.type == "function" or forced is None:
            raise InvalidRequestError(
                f"Invalid 'tool_choice.tools[{index}]': not one of the request's client tools.",
                param=f"tool_choice.tools[{index}]",
            )
        allowed.append(forced)
    engine = {"type": "allowed_tools", "mode": choice.mode, "functions": allowed}
    return engine, choice.model_dump(exclude_none=True)


def _mcp_choice(choice: ToolChoiceMcp, tools: ToolSet) -> dict[str, Any]:
    """An MCP server's tool (or any of its tools) to force: the server is one of the request's,
    and the tool one its `allowed_tools` names (whether the server has it is known once its
    tools are listed: a response forced to a tool the server lacks fails, saying so)."""
    label = choice.server_label
    server = next(
        (t for t in tools.engine if t["type"] == "mcp" and t["server_label"] == label), None
    )
    if server is None:
        raise InvalidRequestError(
            f"Invalid 'tool_choice': the request has no MCP server labeled "
            f"'{choice.server_label}'.",
            param="tool_choice.server_label",
        )
    if choice.name is not None:
        spec = server.get("allowed_tools")
        names = spec if isinstance(spec, list) else (spec or {}).get("tool_names")
        if names is not None and choice.name not in names:
            raise InvalidRequestError(
                f"Invalid 'tool_choice': the tool '{choice.name}' is not among the allowed "
                f"tools of MCP server '{choice.server_label}'.",
                param="tool_choice.name",
            )
    return {"type": "mcp", "server_label": choice.server_label, "name": choice.name}


_RECENT_RESPONSES = 20


async def container_for(
    session: AsyncSession,
    project: str,
    tools: ToolSet,
    *,
    chain: list[str],
    thread_id: str | None,
    owner_id: str,
) -> tuple[str | None, bool]:
    """The container the code interpreter of this response runs in, and whether it is new:
    the one the tool names, or for `{"type": "auto"}` the one its chain (or conversation) used
    last, while it lives, else a new one, owned by `owner_id` (the conversation, or this
    response), whose deletion deletes it. `file_ids` of an auto container are copied into it
    either way."""
    spec = tools.container
    if spec is None:
        return None, False
    param = tools.container_param
    if isinstance(spec, str):
        row = await containers.use(session, project, spec, param=param)
        return row.id, False
    earlier = await _earlier_container(session, project, chain=chain, thread_id=thread_id)
    if earlier is not None:
        row = await containers.require(session, project, earlier)
        if not containers.is_expired(row):
            await containers.touch(session, row)
            if spec.file_ids:
                await containers.add_by_ids(session, row, spec.file_ids, param=f"{param}.file_ids")
            return row.id, False
    created = await containers.create_auto(
        session,
        project,
        file_ids=spec.file_ids,
        memory_limit=spec.memory_limit,
        param=f"{param}.file_ids",
        owner_id=owner_id,
    )
    return created.id, True


async def _earlier_container(
    session: AsyncSession, project: str, *, chain: list[str], thread_id: str | None
) -> str | None:
    """The container of the newest response before this one in its chain, or in its
    conversation, that had one."""
    query = select(Run.options).where(Run.project == project)
    if chain:
        query = query.where(Run.id.in_(chain))
    elif thread_id is not None:
        query = query.where(
            Run.thread_id == thread_id, Run.id.startswith(Prefix.RESPONSE, autoescape=True)
        )
    else:
        return None
    rows = await session.scalars(query.order_by(Run.id.desc()).limit(_RECENT_RESPONSES))
    for options in rows:
        container = (options or {}).get("container_id")
        if container:
            return str(container)
    return None
