"""The `web_search` tool in a response, served by a SearxNG JSON API (a stand-in on loopback,
`tests/support/searxng.py`): search, open_page and find_in_page calls, sources, allowed domains,
the user's location, the context size, citations, stream events, the outbound rules, and a
server with no search engine (the tool accepted, not offered)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from agents import Agent, OpenAIResponsesModel, Runner, WebSearchTool, set_tracing_disabled
from openai import AsyncOpenAI, OpenAI

from tests.responses.conftest import raw_events, wait_response
from tests.runs.conftest import TUNED_KEY, Tuned
from tests.support import strict_types
from tests.support.scripted_model import Reply, ScriptedModel, ToolCall
from tests.support.searxng import FakeSearx, web_search_server
from tests.support.server import LiveServer, wait_for_log_line

set_tracing_disabled(True)


@pytest.fixture(scope="module")
def searx() -> Iterator[FakeSearx]:
    fake = FakeSearx().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def web(server_env: dict[str, str], work_dir: Path, searx: FakeSearx) -> Iterator[Tuned]:
    tuned = web_search_server(server_env, work_dir, searx)
    yield tuned
    tuned.stop()


@pytest.fixture
def wclient(web: Tuned) -> OpenAI:
    return web.client


def search(queries: list[str]) -> ToolCall:
    return ToolCall("web_search", json.dumps({"action": "search", "queries": queries}))


def open_page(url: str) -> ToolCall:
    return ToolCall("web_search", json.dumps({"action": "open_page", "url": url}))


def find(url: str, pattern: str) -> ToolCall:
    return ToolCall(
        "web_search", json.dumps({"action": "find_in_page", "url": url, "pattern": pattern})
    )


def tool_outputs(body: dict[str, Any]) -> list[str]:
    return [m["content"] for m in body["messages"] if m["role"] == "tool"]


def test_search_open_find_and_cite(
    wclient: OpenAI, model: ScriptedModel, marker: str, searx: FakeSearx
) -> None:
    page = searx.page_url("lighthouse")
    harbour = searx.page_url("harbour")
    answer = (
        f"The lamp is lit before sunset ([Lighthouse facts]({page})); boats moor at the "
        f"north pier, see {harbour}. Not a result: https://nowhere.example.net/x."
    )
    model.script(
        marker,
        Reply(tool_calls=[search(["lighthouse lamp"])]),
        Reply(tool_calls=[open_page(page)]),
        Reply(tool_calls=[find(page, "fog horn")]),
        Reply(text=answer),
    )
    response = wclient.responses.create(
        model="gpt-4o", input=marker, tools=[{"type": "web_search"}]
    )
    assert response.status == "completed", response.error
    strict_types.response(response.model_dump(mode="json"))
    searched, opened, found, message = response.output
    assert searched.type == opened.type == found.type == "web_search_call"
    assert searched.id.startswith("ws_")
    assert searched.status == opened.status == found.status == "completed"
    assert searched.action.type == "search"
    assert searched.action.query == "lighthouse lamp"
    assert searched.action.queries == ["lighthouse lamp"]
    assert searched.action.sources is None  # without the include
    assert opened.action.type == "open_page"
    assert opened.action.url == page
    assert found.action.type == "find_in_page"
    assert (found.action.url, found.action.pattern) == (page, "fog horn")
    assert response.output_text == answer

    # citations: the markdown link and the bare URL of results, not the other URL
    first, second = message.content[0].annotations  # type: ignore[union-attr]
    link = f"[Lighthouse facts]({page})"
    assert (first.type, first.url, first.title) == ("url_citation", page, "Lighthouse facts")
    at = answer.index(link)
    assert (first.start_index, first.end_index) == (at, at + len(link))
    assert (second.url, second.title) == (harbour, "Harbour rules")
    assert answer[second.start_index : second.end_index] == harbour

    # what the model read
    requests = model.requests(marker)
    assert len(requests) == 4
    [function] = requests[0]["tools"]
    assert function["function"]["name"] == "web_search"
    assert function["function"]["parameters"]["properties"]["action"]["enum"] == [
        "search",
        "open_page",
        "find_in_page",
    ]
    listing, text, matches = tool_outputs(requests[3])
    assert "[0] Lighthouse facts" in listing
    assert f"URL: {page}" in listing
    assert "When the lamp is lit" in listing
    assert "The lamp is lit thirty minutes before sunset." in text
    assert "script text" not in text
    assert "color: red" not in text
    assert "two long blasts" in matches
    assert "fog horn" in matches
    assert searx.queries[-1]["q"] == "lighthouse lamp"
    assert searx.queries[-1]["format"] == "json"

    # the sources with the include, on retrieval too
    fetched = wclient.responses.retrieve(response.id, include=["web_search_call.action.sources"])
    sources = fetched.output[0].action.sources  # type: ignore[union-attr]
    assert sources is not None
    assert [s.url for s in sources][:2] == [page, harbour]
    assert all(s.type == "url" for s in sources)
    assert wclient.responses.retrieve(response.id).output[0].action.sources is None  # type: ignore[union-attr]


def test_include_sources_on_create(wclient: OpenAI, model: ScriptedModel, marker: str) -> None:
    model.script(marker, Reply(tool_calls=[search(["harbour"])]), Reply(text="ok"))
    response = wclient.responses.create(
        model="gpt-4o",
        input=marker,
        tools=[{"type": "web_search_preview"}],
        include=["web_search_call.action.sources"],
    )
    raw = response.model_dump(mode="json")
    strict_types.response(raw)
    assert raw["tools"] == [
        {
            "type": "web_search_preview",
            "search_content_types": None,
            "search_context_size": "medium",
            "user_location": None,
        }
    ]
    sources = raw["output"][0]["action"]["sources"]
    assert len(sources) == 6  # medium
    assert sources[0] == {"type": "url", "url": sources[0]["url"]}


def test_allowed_domains(
    wclient: OpenAI, model: ScriptedModel, marker: str, searx: FakeSearx
) -> None:
    elsewhere = "https://site1.example.org/page1"
    model.script(
        marker,
        Reply(tool_calls=[search(["fog"])]),
        Reply(tool_calls=[open_page(elsewhere)]),
        Reply(text="done"),
    )
    tool = {"type": "web_search", "filters": {"allowed_domains": ["127.0.0.1"]}}
    response = wclient.responses.create(
        model="gpt-4o",
        input=marker,
        tools=[tool],
        include=["web_search_call.action.sources"],
    )
    assert response.status == "completed", response.error
    searched, opened, _ = response.output
    urls = [s.url for s in searched.action.sources or []]  # type: ignore[union-attr]
    assert urls == [searx.page_url("lighthouse"), searx.page_url("harbour")]
    assert searx.queries[-1]["q"] == "fog site:127.0.0.1"
    assert opened.status == "failed"
    assert opened.action.url == elsewhere  # type: ignore[union-attr]
    assert response.tools[0].filters.allowed_domains == ["127.0.0.1"]  # type: ignore[union-attr]
    listing, refusal = tool_outputs(model.requests(marker)[-1])
    assert "example.org" not in listing
    assert "not one of the request's allowed domains" in refusal
    assert "Only these domains" in model.requests(marker)[0]["tools"][0]["function"]["description"]


def test_context_size_and_location(
    wclient: OpenAI, model: ScriptedModel, marker: str, searx: FakeSearx
) -> None:
    big = searx.page_url("big")
    read: dict[str, tuple[str, str]] = {}
    for size in ("low", "high"):
        model.script(
            f"{marker}-{size}",
            Reply(tool_calls=[search(["anything"])]),
            Reply(tool_calls=[open_page(big)]),
            Reply(text="ok"),
        )
        tool = {
            "type": "web_search_2025_08_26",
            "search_context_size": size,
            "user_location": {"type": "approximate", "country": "CH", "city": "Zurich"},
        }
        response = wclient.responses.create(model="gpt-4o", input=f"{marker}-{size}", tools=[tool])
        assert response.status == "completed", response.error
        assert searx.queries[-1]["language"] == "de-CH"
        listing, page = tool_outputs(model.requests(f"{marker}-{size}")[-1])
        read[size] = (listing, page)
        description = model.requests(f"{marker}-{size}")[0]["tools"][0]["function"]["description"]
        assert "The user is near Zurich, CH." in description
    low, high = read["low"], read["high"]
    assert low[0].count("\nURL: ") == 3
    assert high[0].count("\nURL: ") == 10
    assert len(low[1]) < len(high[1]) <= 32_000
    assert "find_in_page looks through all of it" in low[1]


def test_refused_addresses(
    wclient: OpenAI, model: ScriptedModel, marker: str, searx: FakeSearx
) -> None:
    """Link-local and metadata addresses are refused even after a redirect; the calls fail,
    the model reads why, the response completes."""
    model.script(
        marker,
        Reply(tool_calls=[open_page("http://169.254.169.254/latest/meta-data/")]),
        Reply(tool_calls=[open_page(searx.page_url("to-metadata"))]),
        Reply(tool_calls=[find("http://10.255.255.1/", "x")]),
        Reply(text="could not"),
    )
    response = wclient.responses.create(
        model="gpt-4o", input=marker, tools=[{"type": "web_search"}]
    )
    assert response.status == "completed", response.error
    assert [item.status for item in response.output[:3]] == ["failed", "failed", "failed"]
    direct, redirected, private = tool_outputs(model.requests(marker)[-1])
    assert "link-local or cloud metadata" in direct
    assert "link-local or cloud metadata" in redirected
    assert "not one of the hosts this server may fetch from" in private


def test_search_engine_failing(wclient: OpenAI, model: ScriptedModel, marker: str) -> None:
    model.script(marker, Reply(tool_calls=[search(["explode"])]), Reply(text="it failed"))
    response = wclient.responses.create(
        model="gpt-4o",
        input=marker,
        tools=[{"type": "web_search"}],
        include=["web_search_call.action.sources"],
    )
    assert response.status == "completed", response.error
    call, message = response.output
    assert call.status == "failed"
    assert call.action.queries == ["explode"]  # type: ignore[union-attr]
    assert message.content[0].annotations == []  # type: ignore[union-attr]
    [error] = tool_outputs(model.requests(marker)[-1])
    assert "The search engine did not answer (HTTP 500)" in error
    assert "127.0.0.1" not in error


def test_stream_events(
    wclient: OpenAI, model: ScriptedModel, marker: str, searx: FakeSearx
) -> None:
    page = searx.page_url("lighthouse")
    model.script(
        marker,
        Reply(tool_calls=[search(["lamp"])]),
        Reply(text=f"Lit before sunset: [Lighthouse facts]({page})."),
    )
    body = {
        "model": "gpt-4o",
        "input": marker,
        "stream": True,
        "tools": [{"type": "web_search", "search_context_size": "low"}],
        "include": ["web_search_call.action.sources"],
    }
    events = raw_events(wclient, "responses", body=body)
    for data in events:
        strict_types.event(data)
    kinds = [e["type"] for e in events]
    call = kinds.index("response.web_search_call.in_progress")
    assert kinds[call - 1] == "response.output_item.added"
    added = events[call - 1]["item"]
    assert added["type"] == "web_search_call"
    assert added["status"] == "in_progress"
    assert kinds[call : call + 4] == [
        "response.web_search_call.in_progress",
        "response.web_search_call.searching",
        "response.web_search_call.completed",
        "response.output_item.done",
    ]
    done = events[call + 3]["item"]
    assert done["action"]["queries"] == ["lamp"]
    assert len(done["action"]["sources"]) == 3
    [annotation] = [e for e in events if e["type"] == "response.output_text.annotation.added"]
    assert annotation["annotation"]["type"] == "url_citation"
    assert annotation["annotation"]["url"] == page
    final = strict_types.response(events[-1]["response"])
    assert final.status == "completed"


def test_replayed_history(
    wclient: OpenAI, model: ScriptedModel, marker: str, searx: FakeSearx
) -> None:
    """A store:false client carries the web_search_call items back as input (with their
    sources); the model sees the calls and their sources."""
    model.script(marker, Reply(tool_calls=[search(["harbour rules"])]), Reply(text="first"))
    first = wclient.responses.create(
        model="gpt-4o",
        input=marker,
        tools=[{"type": "web_search"}],
        store=False,
        include=["web_search_call.action.sources"],
    )
    history = [item.model_dump(mode="json", exclude_none=True) for item in first.output]
    follow = f"{marker} again"
    model.script(follow, Reply(text="second"))
    second = wclient.responses.create(
        model="gpt-4o",
        input=[{"role": "user", "content": marker}, *history, {"role": "user", "content": follow}],
        tools=[{"type": "web_search"}],
        store=False,
    )
    assert second.output_text == "second"
    [sent] = model.requests(follow)
    calls = [m for m in sent["messages"] if m.get("tool_calls")]
    assert calls[0]["tool_calls"][0]["function"]["name"] == "web_search"
    [output] = tool_outputs(sent)
    assert searx.page_url("harbour") in output
    assert json.loads(calls[0]["tool_calls"][0]["function"]["arguments"]) == {
        "action": "search",
        "queries": ["harbour rules"],
    }


def test_external_web_access_false_is_not_offered(
    wclient: OpenAI, model: ScriptedModel, marker: str
) -> None:
    model.script(marker, Reply(text="offline"))
    tool = {"type": "web_search", "external_web_access": False}
    response = wclient.responses.create(model="gpt-4o", input=marker, tools=[tool])
    assert response.output_text == "offline"
    assert "tools" not in model.requests(marker)[0]
    assert response.tools[0].external_web_access is False  # type: ignore[union-attr]


CODEX_WEB_SEARCH = {
    "type": "web_search",
    "external_web_access": False,
    "search_content_types": ["text", "image"],
}


def test_no_engine_configured(
    client: OpenAI, server: LiveServer, work_dir: Path, model: ScriptedModel, marker: str
) -> None:
    """The suite's server has no ASSISTANTD_WEB_SEARCH_URL: a web_search tool (Codex's exact
    one, or any other) is accepted and not offered; /readyz and the log say so."""
    for tool in (CODEX_WEB_SEARCH, {"type": "web_search"}, {"type": "web_search_preview"}):
        model.script(marker, Reply(text="no search here"))
        raw = client.responses.with_raw_response.create(
            model="gpt-4o",
            input=marker,
            tools=[tool, {"type": "function", "name": "noop", "parameters": {}}],
            tool_choice="auto",
        ).http_response.json()
        response = strict_types.response(raw)
        assert response.status == "completed"
        assert response.output_text == "no search here"
        sent = model.requests(marker)[-1]
        assert [t["function"]["name"] for t in sent["tools"]] == ["noop"]
        assert raw["tools"][0]["type"] == tool["type"]
    readiness = httpx.get(f"{server.url}/readyz").json()["web_search"]
    assert readiness["status"] == "off"
    wait_for_log_line(work_dir, "web search is off")


def test_readyz_on(web: Tuned) -> None:
    assert httpx.get(f"{web.api.url}/readyz").json()["web_search"] == {
        "status": "ok",
        "engine": "searxng",
    }


@pytest.mark.parametrize(
    ("tool", "param"),
    [
        ({"type": "web_search", "search_context_size": "huge"}, "search_context_size"),
        ({"type": "web_search", "filters": {"blocked_domains": ["x"]}}, "filters"),
        ({"type": "web_search_preview", "filters": {}}, "filters"),
    ],
)
def test_bad_tools(client: OpenAI, tool: dict[str, Any], param: str) -> None:
    answer = httpx.post(
        f"{client.base_url}responses",
        json={"model": "gpt-4o", "input": "hi", "tools": [tool]},
        headers={"Authorization": f"Bearer {client.api_key}"},
    )
    assert answer.status_code == 400, answer.text
    assert param in answer.json()["error"]["param"]


# --- the Agents SDK's WebSearchTool -----------------------------------------------------------


@pytest.fixture
async def aweb(web: Tuned) -> AsyncIterator[AsyncOpenAI]:
    async with AsyncOpenAI(
        api_key=TUNED_KEY, base_url=f"{web.api.url}/v1", max_retries=0
    ) as client:
        yield client


@pytest.mark.asyncio(loop_scope="session")
async def test_agents_sdk_web_search_tool(
    aweb: AsyncOpenAI, model: ScriptedModel, marker: str, searx: FakeSearx
) -> None:
    page = searx.page_url("lighthouse")
    answer = f"At sunset, says [Lighthouse facts]({page})."
    model.script(marker, Reply(tool_calls=[search(["lighthouse"])]), Reply(text=answer))
    agent = Agent(
        name="searcher",
        instructions="Search the web.",
        tools=[
            WebSearchTool(
                search_context_size="low",
                user_location={"type": "approximate", "country": "FR", "city": "Brest"},
            )
        ],
        model=OpenAIResponsesModel(model="gpt-4o", openai_client=aweb),
    )
    result = await Runner.run(agent, f"{marker} When is the lamp lit?")
    assert result.final_output == answer
    [raw] = result.raw_responses
    call, message = raw.output
    assert call.type == "web_search_call"
    assert call.action.type == "search"  # type: ignore[union-attr]
    assert message.content[0].annotations[0].url == page  # type: ignore[union-attr]
    assert searx.queries[-1]["language"] == "fr-FR"
    # the next turn replays the web_search_call item as input
    follow = f"{marker} and in fog?"
    model.script(follow, Reply(text="Two blasts."))
    again = await Runner.run(agent, [*result.to_input_list(), {"role": "user", "content": follow}])
    assert again.final_output == "Two blasts."
    [sent] = model.requests(follow)
    assert any(m.get("tool_calls") for m in sent["messages"])


def test_tool_choice_and_a_client_function_of_the_same_name(
    wclient: OpenAI, model: ScriptedModel, marker: str
) -> None:
    """`tool_choice` may force web search; a function of the client's named `web_search` is
    the client's (the hosted tool then is not offered)."""
    model.script(marker, Reply(tool_calls=[search(["x"])]), Reply(text="ok"))
    response = wclient.responses.create(
        model="gpt-4o",
        input=marker,
        tools=[{"type": "web_search_preview"}],
        tool_choice={"type": "web_search_preview"},
    )
    assert response.status == "completed", response.error
    assert response.output[0].type == "web_search_call"
    first, second = model.requests(marker)
    assert first["tool_choice"] == {"type": "function", "function": {"name": "web_search"}}
    assert second["tool_choice"] == "auto"

    mine = f"{marker}-mine"
    model.script(mine, Reply(tool_calls=[search(["y"])]))
    own = {"type": "function", "name": "web_search", "parameters": {"type": "object"}}
    response = wclient.responses.create(
        model="gpt-4o", input=mine, tools=[{"type": "web_search"}, own]
    )
    [call] = response.output
    assert call.type == "function_call"
    assert call.name == "web_search"  # type: ignore[union-attr]
    [sent] = model.requests(mine)
    assert [t["function"].get("description") for t in sent["tools"]] == [None]


def test_background_in_a_conversation(wclient: OpenAI, model: ScriptedModel, marker: str) -> None:
    conversation = wclient.conversations.create()
    model.script(marker, Reply(tool_calls=[search(["lamp"])]), Reply(text="lit at dusk"))
    started = wclient.responses.create(
        model="gpt-4o",
        input=marker,
        tools=[{"type": "web_search"}],
        conversation=conversation.id,
        background=True,
    )
    done = wait_response(wclient, started.id)
    assert done.status == "completed", done.error
    listed = wclient.conversations.items.list(
        conversation.id, order="asc", include=["web_search_call.action.sources"]
    )
    kinds = [item.type for item in listed.data]
    assert kinds == ["message", "web_search_call", "message"]
    call = listed.data[1]
    assert call.action.sources  # type: ignore[union-attr]
    # the next turn of the conversation reads what the search found
    follow = f"{marker} next"
    model.script(follow, Reply(text="again"))
    wclient.responses.create(model="gpt-4o", input=follow, conversation=conversation.id)
    [sent] = model.requests(follow)
    assert "Lighthouse facts" in tool_outputs(sent)[0]
