"""A real MCP server (fastmcp, streamable HTTP) on a free loopback port, in a thread."""

from __future__ import annotations

import asyncio
import gc
import socket
import threading
import time
import warnings
from typing import Any

import uvicorn
from fastmcp import FastMCP
from fastmcp.server.dependencies import get_http_headers
from fastmcp.server.middleware import Middleware


class _Counter(Middleware):
    def __init__(self, server: McpServer) -> None:
        self.server = server

    async def on_request(self, context: Any, call_next: Any) -> Any:
        if context.method == "tools/list":  # a client's request, not the server's own lookups
            self.server.list_requests += 1
        self.server.headers_seen.append(get_http_headers(include_all=True))
        return await call_next(context)


class McpServer:
    """`transport` "http" (streamable HTTP, at /mcp) or "sse" (the older transport, at /sse);
    `port`: a given one (a server restarted where the last one was), else a free one."""

    def __init__(self, transport: str = "http", port: int | None = None) -> None:
        self.transport = transport
        self.list_requests = 0
        self.headers_seen: list[dict[str, str]] = []
        self.calls: list[str] = []
        app = FastMCP("test-server")
        app.add_middleware(_Counter(self))
        calls = self.calls

        @app.tool(description="Add two integers.")
        def add(a: int, b: int) -> str:
            calls.append("add")
            return f"sum={a + b}"

        @app.tool(description="Always fails.")
        def boom() -> str:
            calls.append("boom")
            raise ValueError("the boom tool exploded")

        @app.tool(description="Never answers in time.")
        async def slow() -> str:
            calls.append("slow")
            await asyncio.sleep(30)
            return "late"

        @app.tool(description="Twenty kilobytes of output.")
        def medium() -> str:
            calls.append("medium")
            return "y" * 20_000

        @app.tool(description="A flood of output.")
        def big() -> str:
            calls.append("big")
            return "x" * 3_000_000

        if port is None:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
        self.port = port
        config = uvicorn.Config(
            app.http_app(path=self.path, transport=transport),  # type: ignore[arg-type]
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            # a client may keep its session (and its event stream) open: do not wait for it
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def path(self) -> str:
        return "/sse" if self.transport == "sse" else "/mcp"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def start(self) -> McpServer:
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            assert time.monotonic() < deadline, "the MCP server did not start"
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        # Sessions a client still held were cut at shutdown: their streams go to the
        # collector unclosed, which is no fault of the client under test.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()
