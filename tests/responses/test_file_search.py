"""The `file_search` tool in a response: the vector stores it names, filters, ranking, the
`file_search_call` item (results with `include`), citations, and its stream events."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai import BadRequestError, OpenAI

from tests.responses.conftest import raw_events
from tests.support.scripted_model import Reply, ScriptedModel, ToolCall

GUIDE = (
    "Lighthouse keeper's guide. The lamp must be lit thirty minutes before sunset.\n\n"
    "The fog horn sounds two long blasts every minute while visibility is under one mile."
)
HARBOUR = "Harbour rules. Boats moor at the north pier. The fog horn is tested on Mondays."


def store_with(
    client: OpenAI, files: list[tuple[str, str, dict[str, Any]]]
) -> tuple[str, dict[str, str]]:
    store = client.vector_stores.create(name="kb")
    ids: dict[str, str] = {}
    for name, text, attributes in files:
        uploaded = client.files.create(file=(name, text.encode()), purpose="assistants")
        done = client.vector_stores.files.create_and_poll(
            vector_store_id=store.id,
            file_id=uploaded.id,
            attributes=attributes,
            poll_interval_ms=50,
        )
        assert done.status == "completed", done.last_error
        ids[name] = uploaded.id
    return store.id, ids


def search_then_answer(model: ScriptedModel, marker: str, answer: str) -> None:
    model.script(
        marker,
        Reply(tool_calls=[ToolCall("file_search", json.dumps({"queries": ["fog horn"]}))]),
        Reply(text=answer),
    )


def test_search_results_and_citations(client: OpenAI, model: ScriptedModel, marker: str) -> None:
    store_id, ids = store_with(client, [("guide.txt", GUIDE, {"kind": "guide"})])
    answer = "Two long blasts every minute 【0†guide.txt】 in fog."
    search_then_answer(model, marker, answer)
    tool = {"type": "file_search", "vector_store_ids": [store_id], "max_num_results": 3}
    response = client.responses.create(
        model="gpt-4o", input=marker, tools=[tool], include=["file_search_call.results"]
    )
    assert response.status == "completed", response.error
    call, message = response.output
    assert call.type == "file_search_call"
    assert call.id.startswith("fs_")
    assert call.status == "completed"
    assert call.queries == ["fog horn"]
    assert call.results
    top = call.results[0]
    assert (top.file_id, top.filename) == (ids["guide.txt"], "guide.txt")
    assert "two long blasts" in (top.text or "")
    assert top.attributes == {"kind": "guide"}
    assert 0 < (top.score or 0) <= 1
    assert message.type == "message"
    assert response.output_text == answer
    [citation] = message.content[0].annotations  # type: ignore[union-attr]
    assert citation.type == "file_citation"
    assert (citation.file_id, citation.filename) == (ids["guide.txt"], "guide.txt")
    assert citation.index == answer.index("】") + 1
    # without include, the call shows no results
    fetched = client.responses.retrieve(response.id)
    assert fetched.output[0].results is None  # type: ignore[union-attr]
    assert (
        client.responses.retrieve(response.id, include=["file_search_call.results"])
        .output[0]
        .results
    )  # type: ignore[union-attr]
    first, second = model.requests(marker)
    assert first["tools"][0]["function"]["name"] == "file_search"
    tool_output = next(m for m in second["messages"] if m["role"] == "tool")["content"]
    assert "fog horn sounds two long blasts" in tool_output


def test_filters(client: OpenAI, model: ScriptedModel, marker: str) -> None:
    store_id, ids = store_with(
        client,
        [
            ("guide.txt", GUIDE, {"kind": "guide", "year": 2024}),
            ("harbour.txt", HARBOUR, {"kind": "rules", "year": 2025}),
        ],
    )
    for filters, expected in (
        ({"type": "eq", "key": "kind", "value": "rules"}, {"harbour.txt"}),
        ({"type": "lt", "key": "year", "value": 2025}, {"guide.txt"}),
        (
            {
                "type": "or",
                "filters": [
                    {"type": "eq", "key": "kind", "value": "rules"},
                    {"type": "eq", "key": "year", "value": 2024},
                ],
            },
            {"guide.txt", "harbour.txt"},
        ),
    ):
        search_then_answer(model, marker, "ok")
        tool = {"type": "file_search", "vector_store_ids": [store_id], "filters": filters}
        response = client.responses.create(
            model="gpt-4o", input=marker, tools=[tool], include=["file_search_call.results"]
        )
        results = response.output[0].results  # type: ignore[union-attr]
        assert {r.filename for r in results or []} == expected, filters
        assert {r.file_id for r in results or []} == {ids[name] for name in expected}


KEYWORDS = "Quarterly report: the lamp lamp lamp line of the retail bank grew by four percent."
MEANING = "The beacon on the coastal tower is switched on every evening before dusk."
QUESTION = "when is the lighthouse lamp lit"


def test_hybrid_weights_and_threshold(client: OpenAI, model: ScriptedModel, marker: str) -> None:
    """The keyword search finds only the file with the query's words; the vector search ranks
    the one with its meaning first; the weights choose between them."""
    store_id, _ = store_with(client, [("k.txt", KEYWORDS, {}), ("v.txt", MEANING, {})])

    def ranked(ranking: dict[str, Any]) -> list[Any]:
        model.script(
            marker,
            Reply(tool_calls=[ToolCall("file_search", json.dumps({"queries": [QUESTION]}))]),
            Reply(text="ok"),
        )
        tool = {"type": "file_search", "vector_store_ids": [store_id], "ranking_options": ranking}
        response = client.responses.create(
            model="gpt-4o", input=marker, tools=[tool], include=["file_search_call.results"]
        )
        raw = client.responses.with_raw_response.retrieve(response.id).http_response.json()
        assert raw["tools"][0]["ranking_options"]["hybrid_search"] == ranking.get("hybrid_search")
        return list(response.output[0].results or [])  # type: ignore[union-attr]

    keyword = ranked({"hybrid_search": {"embedding_weight": 0, "text_weight": 1}})
    assert [r.filename for r in keyword] == ["k.txt"]
    vector = ranked({"hybrid_search": {"embedding_weight": 1, "text_weight": 0}})
    assert vector[0].filename == "v.txt"
    leaning_on_meaning = ranked({"hybrid_search": {"embedding_weight": 4, "text_weight": 1}})
    assert [r.filename for r in leaning_on_meaning][0] == "v.txt"
    leaning_on_words = ranked({"hybrid_search": {"embedding_weight": 1, "text_weight": 4}})
    assert [r.filename for r in leaning_on_words][0] == "k.txt"
    strict = ranked({"score_threshold": 0.99})
    assert len(strict) == 1
    assert (strict[0].score or 0) >= 0.99


def test_stream_events(client: OpenAI, model: ScriptedModel, marker: str) -> None:
    store_id, _ = store_with(client, [("guide.txt", GUIDE, {})])
    answer = "Two blasts 【0†guide.txt】."
    search_then_answer(model, marker, answer)
    body = {
        "model": "gpt-4o",
        "input": marker,
        "stream": True,
        "tools": [{"type": "file_search", "vector_store_ids": [store_id]}],
    }
    events = raw_events(client, "responses", body=body)
    kinds = [e["type"] for e in events]
    call = kinds.index("response.file_search_call.in_progress")
    assert kinds[call - 1] == "response.output_item.added"
    assert kinds[call : call + 3] == [
        "response.file_search_call.in_progress",
        "response.file_search_call.searching",
        "response.file_search_call.completed",
    ]
    assert kinds[call + 3] == "response.output_item.done"
    done = events[call + 3]["item"]
    assert done["type"] == "file_search_call"
    assert done["queries"] == ["fog horn"]
    assert done["results"] is None
    [added] = [e for e in events if e["type"] == "response.output_text.annotation.added"]
    assert added["annotation"]["type"] == "file_citation"
    assert added["annotation"]["filename"] == "guide.txt"
    assert added["output_index"] == 1
    assert kinds.index("response.output_text.annotation.added") < kinds.index(
        "response.output_text.done"
    )
    final = events[-1]["response"]["output"][1]["content"][0]["annotations"]
    assert final == [added["annotation"]]


def test_unknown_vector_store(client: OpenAI, other_client: OpenAI) -> None:
    theirs = other_client.vector_stores.create(name="theirs")
    for store_id in ("vs_nope", theirs.id):
        with pytest.raises(BadRequestError) as err:
            client.responses.create(
                model="gpt-4o",
                input="hi",
                tools=[{"type": "file_search", "vector_store_ids": [store_id]}],
            )
        assert err.value.body["param"] == "tools[0].vector_store_ids[0]"  # type: ignore[index]
