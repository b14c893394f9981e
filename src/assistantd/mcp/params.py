"""The `mcp` tool of a request: checked (400s naming the field), in the engine's shape, and as
the response echoes it."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from assistantd.errors import InvalidRequestError
from assistantd.kit.sealed import Sealer
from assistantd.mcp.hosts import HostRefused, check_name
from assistantd.settings import Settings


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ToolFilter(_Model):
    tool_names: list[str] | None = None
    read_only: bool | None = None


class ApprovalFilter(_Model):
    always: ToolFilter | None = None
    never: ToolFilter | None = None


class McpToolParam(_Model):
    type: Literal["mcp"]
    server_label: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    server_url: str | None = Field(None, max_length=2048)
    connector_id: str | None = None
    tunnel_id: str | None = None
    allowed_callers: list[Literal["direct", "programmatic"]] | None = Field(None, min_length=1)
    authorization: str | None = None
    headers: dict[str, str] | None = None
    server_description: str | None = None
    allowed_tools: list[str] | ToolFilter | None = None
    require_approval: Literal["always", "never"] | ApprovalFilter | None = None
    defer_loading: bool | None = None


def parse(raw: dict[str, Any], index: int, settings: Settings) -> McpToolParam:
    """The tool checked, its server's host against the settings' policy."""
    param = f"tools[{index}]"
    try:
        tool = McpToolParam.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidRequestError(
            f"Invalid '{param}.{where}': {first['msg']}.", param=f"{param}.{where}"
        ) from exc
    if tool.connector_id is not None:
        raise InvalidRequestError(
            "Connectors are not available on this server: give the MCP server's 'server_url' "
            "instead of 'connector_id'.",
            param=f"{param}.connector_id",
            code="unsupported_parameter",
        )
    if tool.tunnel_id is not None:
        raise InvalidRequestError(
            "MCP tunnels are not available on this server: give the MCP server's 'server_url' "
            "instead of 'tunnel_id'.",
            param=f"{param}.tunnel_id",
            code="unsupported_parameter",
        )
    if tool.allowed_callers is not None and "direct" not in tool.allowed_callers:
        raise InvalidRequestError(
            "Only 'direct' calls (by the model) are available on this server.",
            param=f"{param}.allowed_callers",
            code="unsupported_value",
        )
    if tool.defer_loading:
        raise InvalidRequestError(
            "Deferred MCP tools (discovered by tool search) are not available on this server.",
            param=f"{param}.defer_loading",
            code="unsupported_value",
        )
    if tool.server_url is None:
        raise InvalidRequestError(
            f"Missing required parameter: '{param}.server_url'.",
            param=f"{param}.server_url",
            code="missing_required_parameter",
        )
    try:
        check_name(tool.server_url, settings)
    except HostRefused as exc:
        raise InvalidRequestError(
            f"Invalid '{param}.server_url': {exc}.", param=f"{param}.server_url"
        ) from exc
    return tool


SECRETS = "mcp_secrets"  # the sealed kind of a tool's authorization and headers


def engine(tool: McpToolParam) -> dict[str, Any]:
    """The tool as the run stores it; its authorization and headers are sealed (`seal`)
    before the run is."""
    return tool.model_dump(exclude_none=True)


def seal(tools: list[dict[str, Any]], sealer: Sealer) -> list[dict[str, Any]]:
    """The engine's tools with each MCP tool's authorization and headers sealed under the
    server key: no credential is stored in the clear."""
    out = []
    for tool in tools:
        if tool.get("type") == "mcp" and ("authorization" in tool or "headers" in tool):
            tool = dict(tool)
            secrets = {key: tool.pop(key) for key in ("authorization", "headers") if key in tool}
            tool["_secrets"] = sealer.seal(SECRETS, secrets)
        out.append(tool)
    return out


def secrets_of(definition: dict[str, Any], sealer: Sealer) -> dict[str, Any]:
    """The tool's authorization and headers (opened, if sealed)."""
    if "_secrets" not in definition:
        return {k: definition[k] for k in ("authorization", "headers") if k in definition}
    opened: dict[str, Any] = sealer.open(SECRETS, definition["_secrets"], param="tools")
    return opened


def echoed(tool: McpToolParam) -> dict[str, Any]:
    """The tool as the response shows it: no authorization, and no header values (either may
    be a credential; the response is stored and shown to every key of the project)."""
    shown = tool.model_dump(
        exclude_none=True,
        exclude={"authorization", "defer_loading", "allowed_callers", "headers"},
    )
    shown.setdefault("allowed_tools", None)
    shown["headers"] = None
    shown.setdefault("require_approval", "always")
    shown.setdefault("server_description", None)
    return shown


def check_labels(tools: list[dict[str, Any]]) -> None:
    seen: set[str] = set()
    for index, tool in enumerate(tools):
        if tool.get("type") != "mcp":
            continue
        if tool["server_label"] in seen:
            raise InvalidRequestError(
                f"Duplicate MCP server_label '{tool['server_label']}'.",
                param=f"tools[{index}].server_label",
            )
        seen.add(tool["server_label"])


# --- which tools, and which need approval -----------------------------------------------------


def _read_only(tool: dict[str, Any]) -> bool:
    return bool((tool.get("annotations") or {}).get("readOnlyHint"))


def _in_filter(spec: dict[str, Any] | None, tool: dict[str, Any]) -> bool:
    if not spec:
        return False
    names = spec.get("tool_names")
    if names is not None and tool["name"] in names:
        return True
    return bool(spec.get("read_only")) and _read_only(tool)


def allowed(definition: dict[str, Any], tool: dict[str, Any]) -> bool:
    spec = definition.get("allowed_tools")
    if spec is None:
        return True
    if isinstance(spec, list):
        return tool["name"] in spec
    names = spec.get("tool_names")
    if names is not None and tool["name"] not in names:
        return False
    return not spec.get("read_only") or _read_only(tool)


def needs_approval(definition: dict[str, Any], tool: dict[str, Any]) -> bool:
    spec = definition.get("require_approval", "always")
    if spec is None or spec == "always":
        return True
    if spec == "never":
        return False
    if _in_filter(spec.get("never"), tool):
        return False
    if _in_filter(spec.get("always"), tool):
        return True
    return True  # a tool neither filter names asks, as "always" does


_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def function_name(server_label: str, tool_name: str) -> str:
    """The chat function the model calls for a server's tool (≤ 64 characters)."""
    name = f"mcp__{server_label}__{_UNSAFE.sub('_', tool_name)}"
    return name[:64]
