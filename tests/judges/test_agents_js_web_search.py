"""The Agents SDK for JavaScript's `webSearchTool` against assistantd with web search on (a
stand-in SearxNG JSON API, `tests/support/searxng.py`): an agent that searches and answers with
a citation, plainly and streamed."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.judges.test_agents_js import node
from tests.runs.conftest import TUNED_KEY, Tuned
from tests.support.scripted_model import Reply, ScriptedModel, ToolCall
from tests.support.searxng import FakeSearx, web_search_server

SCRIPT = Path(__file__).resolve().parent / "agents_js" / "web_search.mjs"


@pytest.fixture(scope="module")
def script(npm_tools: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("agents-js-web-search")
    shutil.copy(SCRIPT, folder / SCRIPT.name)
    (folder / "node_modules").symlink_to(npm_tools / "agents" / "node_modules")
    return folder / SCRIPT.name


@pytest.fixture(scope="module")
def searx() -> Iterator[FakeSearx]:
    fake = FakeSearx().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def web(server_env: dict[str, str], work_dir: Path, searx: FakeSearx) -> Iterator[Tuned]:
    tuned = web_search_server(server_env, work_dir, searx, name="web-search-js")
    yield tuned
    tuned.stop()


def test_web_search_tool(
    script: Path, web: Tuned, model: ScriptedModel, marker: str, searx: FakeSearx
) -> None:
    page = searx.page_url("lighthouse")
    answer = f"Before sunset, says [Lighthouse facts]({page})."
    search = ToolCall("web_search", json.dumps({"action": "search", "queries": ["lamp"]}))
    for mode in ("plain", "stream"):
        model.script(f"{marker} {mode}:", Reply(tool_calls=[search]), Reply(text=answer))
    out = node(script, f"{web.api.url}/v1", TUNED_KEY, marker)

    plain = out["plain"]
    assert plain["final"] == answer
    [call] = plain["calls"]
    assert call["name"] == "web_search_call"
    assert call["status"] == "completed"
    assert call["action"]["queries"] == ["lamp"]
    [annotation] = plain["annotations"]
    assert annotation["type"] == "url_citation"
    assert annotation["url"] == page
    assert searx.queries[-1]["q"] == "lamp site:127.0.0.1"
    assert searx.queries[-1]["language"] == "de-DE"

    stream = out["stream"]
    assert stream["final"] == answer
    assert [c["name"] for c in stream["calls"]] == ["web_search_call"]
    searching = stream["types"].index("response.web_search_call.searching")
    assert stream["types"][searching - 1] == "response.web_search_call.in_progress"
    assert stream["types"][searching + 1] == "response.web_search_call.completed"
    [first] = model.requests(f"{marker} plain:")[:1]
    assert [t["function"]["name"] for t in first["tools"]] == ["web_search"]
