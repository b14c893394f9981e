"""The unstored responses a WebSocket connection keeps (`responses.kept`): each turn of an unstored
chain stores only its own items (not the whole history again), the kept responses are invisible
over HTTP while the connection lasts, and are removed once it ends; a stored response that
continues them copies what it needs, and outlives them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest
from openai import OpenAI
from sqlalchemy import Engine, create_engine, func, or_, select

from assistantd.db.engine import sync_url
from assistantd.db.models import Item, Run
from assistantd.settings import Settings
from tests.responses.test_websocket import final, turn
from tests.runs.conftest import wait_until
from tests.support.scripted_model import Reply, ScriptedModel

TURNS = 6


@pytest.fixture
def database(server_env: dict[str, str]) -> Iterator[Engine]:
    """The live server's database, read directly."""
    settings = Settings(database_url=server_env["ASSISTANTD_DATABASE_URL"])
    engine = create_engine(sync_url(settings))
    yield engine
    engine.dispose()


def _rows(database: Engine, response_id: str) -> tuple[int, int, int]:
    """The response's run row, its input items and its output items."""
    with database.connect() as conn:
        runs = conn.scalar(select(func.count()).select_from(Run).where(Run.id == response_id))
        given = conn.scalar(
            select(func.count()).select_from(Item).where(Item.input_of == response_id)
        )
        made = conn.scalar(select(func.count()).select_from(Item).where(Item.run_id == response_id))
    return runs or 0, given or 0, made or 0


def _left(database: Engine, response_ids: list[str]) -> int:
    """Rows (runs and items) of these responses still in the database."""
    with database.connect() as conn:
        runs = conn.scalar(select(func.count()).select_from(Run).where(Run.id.in_(response_ids)))
        items = conn.scalar(
            select(func.count())
            .select_from(Item)
            .where(or_(Item.input_of.in_(response_ids), Item.run_id.in_(response_ids)))
        )
    return (runs or 0) + (items or 0)


def _chain(
    socket: Any, marker: str, turns: int, first: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    responses: list[dict[str, Any]] = []
    previous = first["id"] if first is not None else None
    for index in range(turns):
        request: dict[str, Any] = {"model": "gpt-4o", "input": f"{marker} q{index}", "store": False}
        if previous is not None:
            request["previous_response_id"] = previous
        response = final(turn(socket, request))
        responses.append(response)
        previous = response["id"]
    return responses


def _hidden(client: OpenAI, response_id: str) -> None:
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response_id)
    with pytest.raises(openai.NotFoundError):
        client.responses.input_items.list(response_id)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(response_id)
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(
            model="gpt-4o", input="x", previous_response_id=response_id, store=False
        )
    assert refused.value.code == "previous_response_not_found"


def _unreferable(client: OpenAI, item_id: str) -> None:
    """An item of a kept response cannot be named by an `item_reference` either."""
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="gpt-4o", input=[{"type": "item_reference", "id": item_id}])


def test_each_turn_stores_only_its_own_items(
    client: OpenAI, database: Engine, model: ScriptedModel, marker: str
) -> None:
    model.script(marker, *[Reply(text=f"answer {index}") for index in range(TURNS)])
    with client.responses.connect() as socket:
        responses = _chain(socket, marker, TURNS)
        ids = [response["id"] for response in responses]
        # kept while the connection lasts, each with its own input message and answer: the rows
        # grow by one turn's items a turn, not by the whole history
        assert [_rows(database, response_id) for response_id in ids] == [(1, 1, 1)] * TURNS
        assert [r["previous_response_id"] for r in responses] == [None, *ids[:-1]]
        seen = model.requests(f"{marker} q{TURNS - 1}")[-1]["messages"]
        expected: list[tuple[str, str]] = []
        for index in range(TURNS):
            expected += [("user", f"{marker} q{index}"), ("assistant", f"answer {index}")]
        assert [(m["role"], m["content"]) for m in seen] == expected[:-1]
        # and never shown
        for response_id in ids:
            _hidden(client, response_id)
        for response in responses:
            _unreferable(client, response["output"][0]["id"])
    wait_until(
        lambda: _left(database, ids), lambda left: left == 0, what="the kept responses to go"
    )


def test_stored_continuation_outlives_the_connection(
    client: OpenAI, database: Engine, model: ScriptedModel, marker: str
) -> None:
    model.script(marker, Reply(text="one"), Reply(text="two"), Reply(text="three"))
    with client.responses.connect() as socket:
        unstored = _chain(socket, marker, 2)
        stored = final(
            turn(
                socket,
                {
                    "model": "gpt-4o",
                    "input": f"{marker} q2",
                    "previous_response_id": unstored[-1]["id"],
                },
            )
        )
        assert stored["previous_response_id"] == unstored[-1]["id"]
    ids = [response["id"] for response in unstored]
    wait_until(
        lambda: _left(database, ids), lambda left: left == 0, what="the kept responses to go"
    )
    kept = client.responses.retrieve(stored["id"])
    assert kept.output_text == "three"
    given = client.responses.input_items.list(stored["id"], order="asc").data
    texts = [part.text for item in given if item.type == "message" for part in item.content]
    assert texts == [f"{marker} q0", "one", f"{marker} q1", "two", f"{marker} q2"]


def test_a_failed_turn_drops_what_it_continued(
    client: OpenAI, database: Engine, model: ScriptedModel, marker: str
) -> None:
    model.script(marker, Reply(text="one"), Reply(text="two"), Reply(text="three"))
    with client.responses.connect() as socket:
        first, second = _chain(socket, marker, 2)
        output = {"type": "function_call_output", "call_id": "call_nope", "output": "x"}
        refused = turn(
            socket,
            {
                "model": "gpt-4o",
                "input": [output],
                "previous_response_id": second["id"],
                "store": False,
            },
        )
        assert [e["type"] for e in refused] == ["error"]
        # `second` may not be continued any more: it goes; `first` stays, continued still
        wait_until(
            lambda: _left(database, [second["id"]]), lambda left: left == 0, what="`second` to go"
        )
        assert _rows(database, first["id"]) == (1, 1, 1)
        again = turn(
            socket,
            {"model": "gpt-4o", "input": "x", "previous_response_id": second["id"], "store": False},
        )
        assert again[0]["error"]["code"] == "previous_response_not_found"
        later = final(
            turn(
                socket,
                {
                    "model": "gpt-4o",
                    "input": f"{marker} q1 again",
                    "previous_response_id": first["id"],
                    "store": False,
                },
            )
        )
        assert later["previous_response_id"] == first["id"]
        seen = model.requests(f"{marker} q1 again")[-1]["messages"]
        assert [m["content"] for m in seen] == [f"{marker} q0", "one", f"{marker} q1 again"]
