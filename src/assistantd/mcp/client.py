"""Talk to a remote MCP server with the official `mcp` SDK's client: list its tools, call one.

Streamable HTTP, or SSE for a URL whose path ends in `/sse` (or a server that refuses the
streamable transport). Every exchange is bounded in time (`mcp_timeout_seconds`, connecting
included) and in size (`mcp_max_output_bytes`); any failure is an `McpError` whose message the
model reads.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx2
from mcp import types
from mcp.client.session import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from assistantd.kit.sealed import Sealer
from assistantd.mcp import sessions
from assistantd.mcp.hosts import CheckedBackend, HostRefused, check_name
from assistantd.mcp.params import secrets_of
from assistantd.settings import Settings


class McpError(Exception):
    """The MCP server could not be reached or answered with an error (the message says which)."""


@dataclass(frozen=True)
class Server:
    url: str
    headers: dict[str, str]
    project: str = ""  # whose sessions with it are kept (a project shares none of another's)


def server_of(definition: dict[str, Any], sealer: Sealer, project: str) -> Server:
    """The server a tool names, with its headers (`authorization` as a bearer token)."""
    secrets = secrets_of(definition, sealer)
    headers = {str(k): str(v) for k, v in (secrets.get("headers") or {}).items()}
    if secrets.get("authorization"):
        headers["Authorization"] = f"Bearer {secrets['authorization']}"
    return Server(url=str(definition["server_url"]), headers=headers, project=project)


def _uses_sse(url: str) -> bool:
    return url.split("?", 1)[0].rstrip("/").endswith("/sse")


def _event_limit(settings: Settings) -> int:
    """The largest message read from the server: room for an output at the limit, encoded
    (what is larger fails the call, unread)."""
    return settings.mcp_max_output_bytes * 4 + 65_536


# HTTP clients kept between calls (their connections stay open to the servers they reached),
# by headers and time limit; the oldest goes when more are wanted, with the event loop.
_MAX_CLIENTS = 32
_clients: OrderedDict[tuple[Any, ...], httpx2.AsyncClient] = OrderedDict()
_clients_loop: asyncio.AbstractEventLoop | None = None


def _checked_client(
    settings: Settings,
    headers: dict[str, str] | None = None,
    timeout: httpx2.Timeout | None = None,
    auth: httpx2.Auth | None = None,
) -> httpx2.AsyncClient:
    """An HTTP client whose every connection goes to an address the host policy passed, at
    the time it connects (`CheckedBackend`); no proxy from the environment (it would resolve
    the name itself)."""
    transport = httpx2.AsyncHTTPTransport(trust_env=False)
    # httpx2's transport takes no network backend; its connection pool does.
    transport._pool._network_backend = CheckedBackend(settings)
    return httpx2.AsyncClient(
        headers=headers, timeout=timeout, auth=auth, transport=transport, trust_env=False
    )


def _http_for(server: Server, settings: Settings, timeout: httpx2.Timeout) -> httpx2.AsyncClient:
    global _clients_loop
    loop = asyncio.get_running_loop()
    if _clients_loop is not loop:  # clients belong to the loop that made them
        _clients.clear()
        _clients_loop = loop
    key = (tuple(sorted(server.headers.items())), timeout.read, _policy(settings))
    http = _clients.get(key)
    if http is None or http.is_closed:
        http = _clients[key] = _checked_client(settings, server.headers, timeout)
        while len(_clients) > _MAX_CLIENTS:
            _, oldest = _clients.popitem(last=False)
            _close_later(oldest)
    _clients.move_to_end(key)
    return http


def _close_later(http: httpx2.AsyncClient) -> None:
    task = asyncio.create_task(http.aclose())
    _closing.add(task)
    task.add_done_callback(_closing.discard)


@asynccontextmanager
async def _session(server: Server, settings: Settings) -> AsyncIterator[ClientSession]:
    timeout = httpx2.Timeout(settings.mcp_timeout_seconds)
    if _uses_sse(server.url):
        async with (
            sse_client(
                server.url,
                headers=server.headers,
                timeout=settings.mcp_timeout_seconds,
                sse_read_timeout=settings.mcp_timeout_seconds,
                httpx_client_factory=functools.partial(_checked_client, settings),
            ) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            yield session
        return
    http = _http_for(server, settings, timeout)
    async with (
        streamable_http_client(
            server.url, http_client=http, max_sse_event_size=_event_limit(settings)
        ) as streams,
        ClientSession(streams[0], streams[1]) as session,
    ):
        await session.initialize()
        yield session


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        inner = exc.exceptions[0] if exc.exceptions else exc
        return _describe(inner)
    if isinstance(exc, HostRefused):
        return f"the MCP server's URL is refused: {exc}"
    if isinstance(exc, httpx2.ConnectError):
        return "the MCP server could not be reached (connection failed)"
    if isinstance(exc, httpx2.HTTPStatusError):
        return f"the MCP server answered HTTP {exc.response.status_code}"
    text = str(exc) or type(exc).__name__
    return f"the MCP server failed: {text}"


# HTTP clients being closed (kept from the collector).
_closing: set[asyncio.Task[None]] = set()


async def _bounded(server: Server, settings: Settings, work: Any) -> Any:
    """`work(session)`'s result, within the time limit, on the session kept for the server
    (`sessions`), opened if there is none."""
    try:
        check_name(server.url, settings)  # its addresses are checked as it is connected to
    except HostRefused as exc:
        raise McpError(f"the MCP server's URL is refused: {exc}") from exc
    kept = sessions.pool()
    key = (server.project, server.url, tuple(sorted(server.headers.items())), _policy(settings))
    timeout = settings.mcp_timeout_seconds
    try:
        async with asyncio.timeout(timeout):
            while True:
                lease = await kept.borrow(key, lambda: _session(server, settings), timeout)
                broken = True
                try:
                    result = await work(lease.session)
                    broken = False
                    return result
                except MCPError as exc:
                    # A kept session the server no longer knows (it restarted, or expired
                    # it: an HTTP 404) ran nothing: the exchange goes again, on a new session.
                    if lease.lent == 1 or not _forgotten(exc):
                        raise
                finally:
                    kept.give_back(lease, broken=broken)
    except McpError:
        raise
    except Exception as exc:  # a transport, protocol or server error, or the time limit
        raise _failure(exc, settings) from exc


def _forgotten(exc: MCPError) -> bool:
    """Whether the server answered that it knows no such session: the SDK's words for a 404,
    or the official SDKs' servers' (Python's and TypeScript's)."""
    return exc.message in ("Session terminated", "Session not found")


def _policy(settings: Settings) -> tuple[str | None, str | None]:
    return (settings.mcp_allowed_hosts, settings.mcp_denied_hosts)


def _failure(exc: BaseException, settings: Settings) -> BaseException:
    if isinstance(exc, McpError):
        return exc
    if isinstance(exc, TimeoutError):
        return McpError(
            f"the MCP server did not answer within {settings.mcp_timeout_seconds:g} seconds"
        )
    if isinstance(exc, asyncio.CancelledError):
        return McpError("the call to the MCP server was stopped")
    return McpError(_describe(exc))  # a transport, protocol or server error: the call fails


def _cut(text: str, limit: int) -> str:
    data = text.encode()
    if len(data) <= limit:
        return text
    kept = data[:limit].decode(errors="ignore")
    return f"{kept}\n[output cut off: {len(data)} bytes, the limit is {limit}]"


async def list_tools(server: Server, settings: Settings) -> list[dict[str, Any]]:
    """The server's tools, as an `mcp_list_tools` item lists them."""

    async def work(session: ClientSession) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        cursor: str | None = None
        size = 0
        while True:
            params = None
            if cursor is not None:
                params = types.PaginatedRequestParams(cursor=cursor)
            page = await session.list_tools(params=params)
            for tool in page.tools:
                entry: dict[str, Any] = {
                    "name": tool.name,
                    "input_schema": tool.input_schema or {"type": "object", "properties": {}},
                    "description": tool.description,
                    "annotations": tool.annotations.model_dump(exclude_none=True)
                    if tool.annotations is not None
                    else None,
                }
                size += len(json.dumps(entry))
                if size > settings.mcp_max_output_bytes:
                    raise McpError(
                        "the MCP server's tool list exceeds "
                        f"{settings.mcp_max_output_bytes} bytes (ASSISTANTD_MCP_MAX_OUTPUT_BYTES)"
                    )
                found.append(entry)
            cursor = page.next_cursor
            if not cursor:
                return found

    result: list[dict[str, Any]] = await _bounded(server, settings, work)
    return result


@dataclass
class CallResult:
    output: str | None
    error: dict[str, Any] | None  # the `mcp_call` item's error object

    @property
    def text(self) -> str:
        """What the model reads."""
        if self.error is None:
            return self.output or ""
        if self.error["type"] == "mcp_tool_execution_error":
            parts = self.error["content"]
            return "Error: " + "\n".join(str(p.get("text", "")) for p in parts)
        return f"Error: {self.error['message']}"


def _failed(message: str) -> CallResult:
    return CallResult(
        output=None, error={"type": "mcp_protocol_error", "code": -32000, "message": message}
    )


async def call_tool(
    server: Server, settings: Settings, name: str, arguments: dict[str, Any]
) -> CallResult:
    """Call one tool; a tool that reports an error (`isError`) is a call with `error`."""

    async def work(session: ClientSession) -> CallResult:
        # The tool list is an item already: the SDK is not to list the tools again (it would
        # to check structured output against the tool's schema; the model reads text).
        session._tool_output_schemas.setdefault(name, None)
        result = await session.call_tool(name, arguments)
        pieces: list[str] = []
        for part in result.content:
            kind = getattr(part, "type", "")
            if kind == "text":
                pieces.append(str(getattr(part, "text", "")))
            else:
                pieces.append(json.dumps(part.model_dump(mode="json", exclude_none=True)))
        if not pieces and result.structured_content is not None:
            pieces.append(json.dumps(result.structured_content))
        text = _cut("\n".join(pieces), settings.mcp_max_output_bytes)
        if result.is_error:
            content = [{"type": "text", "text": text or "the tool reported an error"}]
            return CallResult(
                output=None, error={"type": "mcp_tool_execution_error", "content": content}
            )
        return CallResult(output=text, error=None)

    try:
        done: CallResult = await _bounded(server, settings, work)
    except McpError as exc:
        return _failed(str(exc))
    return done
