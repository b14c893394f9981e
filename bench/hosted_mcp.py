#!/usr/bin/env python3
"""`mcp` tool benchmark: what an MCP tool call adds to a response, against the MCP server's own
round trip, and how often a chain lists the server's tools.

    python3 bench/hosted_mcp.py [--samples 20] [--turns 10]

One `assistantd serve` (SQLite, embedded worker), the scripted model and a fastmcp server
(streamable HTTP, `tests/support/mcp_server.py`) in this process, all on loopback. It prints:

- the MCP server's own round trip: the official `mcp` SDK's client calling the `add` tool
  on a session it holds open, until its result is in, as assistantd does (it keeps a session
  per server and project between calls and responses, `assistantd.mcp.sessions`);
- a response whose model calls `add` through the `mcp` tool (its tools listed in an earlier
  response of the chain, so no listing is timed), against the same two model turns with `add`
  as a function tool the client runs locally (two requests: the call, then its output);
  the overhead is the difference of the medians, and its ratio to the round trip (target
  <= 1.2x: assistantd adds at most a fifth of the MCP exchange);
- the `tools/list` requests the MCP server saw over a `--turns`-response chain (target: 1).

This is a benchmark that prints figures, not a test; take them on a quiet machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mcp.client.session import ClientSession  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402
from tests.support.mcp_server import McpServer  # noqa: E402
from tests.support.scripted_model import Reply, ScriptedModel, ToolCall  # noqa: E402
from tests.support.server import LiveServer  # noqa: E402

KEY = "sk-bench"
MS = 1000.0
TARGET_RATIO = 1.2
ADD = json.dumps({"a": 2, "b": 3})


def _post(http: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    answer = http.post("/v1/responses", json=body)
    answer.raise_for_status()
    data: dict[str, Any] = answer.json()
    assert data["status"] == "completed", data
    return data


def round_trip(server: McpServer, samples: int) -> list[float]:
    """The `mcp` SDK's client, straight: on one open session, each call of `add` timed until
    its result is in."""

    async def run() -> list[float]:
        times = []
        async with (
            streamable_http_client(server.url) as streams,
            ClientSession(streams[0], streams[1]) as session,
        ):
            await session.initialize()
            session._tool_output_schemas["add"] = None  # as assistantd: no listing to validate
            for _ in range(samples):
                start = time.perf_counter()
                result = await session.call_tool("add", {"a": 2, "b": 3})
                times.append(time.perf_counter() - start)
                assert not result.is_error, result
        return times

    return asyncio.run(run())


def mcp_response(http: httpx.Client, model: ScriptedModel, tool: dict[str, Any], n: int) -> float:
    marker = f"bench-mcp-{n}"
    model.script(marker, Reply(text="listed"))
    first = _post(http, {"model": "scripted", "input": marker, "tools": [tool]})
    model.script(
        f"{marker} call",
        Reply(tool_calls=[ToolCall("mcp__calc__add", ADD)]),
        Reply(text="5"),
    )
    start = time.perf_counter()
    done = _post(
        http,
        {
            "model": "scripted",
            "input": f"{marker} call",
            "tools": [tool],
            "previous_response_id": first["id"],
        },
    )
    elapsed = time.perf_counter() - start
    assert [item["type"] for item in done["output"]] == ["mcp_call", "message"], done["output"]
    return elapsed


def function_response(http: httpx.Client, model: ScriptedModel, n: int) -> float:
    marker = f"bench-fn-{n}"
    function = {
        "type": "function",
        "name": "add",
        "parameters": {
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        },
    }
    model.script(marker, Reply(tool_calls=[ToolCall("add", ADD)]), Reply(text="5"))
    start = time.perf_counter()
    first = _post(http, {"model": "scripted", "input": marker, "tools": [function]})
    call = first["output"][-1]
    arguments = json.loads(call["arguments"])
    output = f"sum={arguments['a'] + arguments['b']}"
    _post(
        http,
        {
            "model": "scripted",
            "previous_response_id": first["id"],
            "tools": [function],
            "input": [
                {"type": "function_call_output", "call_id": call["call_id"], "output": output}
            ],
        },
    )
    return time.perf_counter() - start


def list_count(http: httpx.Client, model: ScriptedModel, server: McpServer, turns: int) -> int:
    before = server.list_requests
    previous = None
    for turn in range(turns):
        marker = f"bench-chain-{turn}"
        model.script(marker, Reply(tool_calls=[ToolCall("mcp__calc__add", ADD)]), Reply(text="ok"))
        body: dict[str, Any] = {
            "model": "scripted",
            "input": marker,
            "tools": [_tool(server)],
        }
        if previous is not None:
            body["previous_response_id"] = previous
        previous = _post(http, body)["id"]
    return server.list_requests - before


def _tool(server: McpServer) -> dict[str, Any]:
    return {
        "type": "mcp",
        "server_label": "calc",
        "server_url": server.url,
        "require_approval": "never",
    }


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values) * MS:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--turns", type=int, default=10)
    args = parser.parse_args()
    mcp_server = McpServer().start()
    model = ScriptedModel().start()
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            "ASSISTANTD_DATA_DIR": tmp,
            "ASSISTANTD_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/b.db",
            "ASSISTANTD_API_KEYS": f"bench:{KEY}",
            "ASSISTANTD_MODEL_BASE_URL": model.base_url,
            "ASSISTANTD_MODEL_API_KEY": "sk-scripted",
        }
        server = LiveServer(env, Path(tmp) / "serve.log").start()
        try:
            headers = {"Authorization": f"Bearer {KEY}"}
            with httpx.Client(base_url=server.url, headers=headers, timeout=60) as http:
                tool = _tool(mcp_server)
                for n in range(3):  # warm up both paths
                    mcp_response(http, model, tool, -1 - n)
                    function_response(http, model, -1 - n)
                trips = round_trip(mcp_server, args.samples)
                with_mcp, with_function = [], []
                for n in range(args.samples):
                    with_mcp.append(mcp_response(http, model, tool, n))
                    with_function.append(function_response(http, model, n))
                lists = list_count(http, model, mcp_server, args.turns)
        finally:
            server.stop()
            model.stop()
            mcp_server.stop()
    trip = statistics.median(trips)
    overhead = statistics.median(with_mcp) - statistics.median(with_function)
    ratio = overhead / trip
    rows = [
        ("MCP server round trip (call on an open session), p50 ms", _ms(trips)),
        ("response with an mcp_call, p50 ms", _ms(with_mcp)),
        ("same turns with a local function (2 requests), p50 ms", _ms(with_function)),
        ("MCP call overhead, ms", f"{overhead * MS:.2f}"),
        (f"overhead / round trip (target <= {TARGET_RATIO}x)", f"{ratio:.2f}x"),
        (f"tools/list over a {args.turns}-response chain (target 1)", str(lists)),
    ]
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")


if __name__ == "__main__":
    main()
