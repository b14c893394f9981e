"""Log probabilities: `top_logprobs` and `include: ["message.output_text.logprobs"]` ask the
backend for them; they come back on the `output_text` part (OpenAI's `LogProb`: token, logprob,
bytes, top_logprobs) and in `response.output_text.delta` / `.done`."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from openai import OpenAI

from tests.responses.conftest import raw_events
from tests.support import strict_types
from tests.support.scripted_model import Reply, ScriptedModel

LOGPROBS = "message.output_text.logprobs"
CHUNKS = ["One", " two", " three."]


def created(client: OpenAI, body: dict[str, Any]) -> dict[str, Any]:
    answer = httpx.post(
        f"{client.base_url}responses",
        headers={"Authorization": f"Bearer {client.api_key}"},
        json=body,
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()
    strict_types.response(data)
    return data


def expected(values: list[float], top: int) -> list[dict[str, Any]]:
    """The scripted model's tokens (one per chunk) as OpenAI's `LogProb`s."""
    out = []
    for token, value in zip(CHUNKS, values, strict=True):
        alternatives = []
        for k in range(top):
            text = token if k == 0 else f"{token}~{k}"
            alternatives.append(
                {
                    "token": text,
                    "logprob": value if k == 0 else value - k,
                    "bytes": [*text.encode()],
                }
            )
        out.append(
            {
                "token": token,
                "logprob": value,
                "bytes": [*token.encode()],
                "top_logprobs": alternatives,
            }
        )
    return out


def without_bytes(logprobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`LogProb`s in the stream events' `ResponseLogProb` shape."""
    return [
        {
            "token": lp["token"],
            "logprob": lp["logprob"],
            "top_logprobs": [
                {"token": t["token"], "logprob": t["logprob"]} for t in lp["top_logprobs"]
            ],
        }
        for lp in logprobs
    ]


class TestCreate:
    def test_top_logprobs(self, client: OpenAI, model: ScriptedModel, marker: str) -> None:
        values = [-0.25, -1.5, -0.125]
        model.script(marker, Reply(text=CHUNKS, logprobs=values))
        data = created(client, {"model": "gpt-4o", "input": marker, "top_logprobs": 2})
        assert data["top_logprobs"] == 2
        part = data["output"][0]["content"][0]
        assert part["text"] == "One two three."
        assert part["logprobs"] == expected(values, 2)
        (request,) = model.requests(marker)
        assert request["logprobs"] is True
        assert request["top_logprobs"] == 2

    def test_include_alone(self, client: OpenAI, model: ScriptedModel, marker: str) -> None:
        model.script(marker, Reply(text=CHUNKS))
        data = created(client, {"model": "gpt-4o", "input": marker, "include": [LOGPROBS]})
        assert data["top_logprobs"] == 0
        logprobs = data["output"][0]["content"][0]["logprobs"]
        assert logprobs == expected([-0.1, -0.2, -0.30000000000000004], 0)
        assert all(lp["top_logprobs"] == [] for lp in logprobs)
        (request,) = model.requests(marker)
        assert request["logprobs"] is True
        assert "top_logprobs" not in request

    def test_not_asked(self, client: OpenAI, model: ScriptedModel, marker: str) -> None:
        model.script(marker, Reply(text=CHUNKS))
        data = created(client, {"model": "gpt-4o", "input": marker})
        assert data["output"][0]["content"][0]["logprobs"] == []
        (request,) = model.requests(marker)
        assert "logprobs" not in request
        assert "top_logprobs" not in request

    def test_with_the_sdk(self, client: OpenAI, model: ScriptedModel, marker: str) -> None:
        model.script(marker, Reply(text=CHUNKS, logprobs=[-1.0, -2.0, -3.0]))
        response = client.responses.create(
            model="gpt-4o", input=marker, top_logprobs=1, include=[LOGPROBS]
        )
        message = response.output[0]
        assert message.type == "message"
        part = message.content[0]
        assert part.type == "output_text"
        assert part.logprobs is not None
        assert [(lp.token, lp.logprob) for lp in part.logprobs] == list(
            zip(CHUNKS, [-1.0, -2.0, -3.0], strict=True)
        )
        assert [len(lp.top_logprobs) for lp in part.logprobs] == [1, 1, 1]

    @pytest.mark.parametrize("store", [True, False])
    def test_stored_or_not(
        self, client: OpenAI, model: ScriptedModel, marker: str, store: bool
    ) -> None:
        model.script(marker, Reply(text=CHUNKS, logprobs=[-1.0, -2.0, -3.0]))
        data = created(
            client, {"model": "gpt-4o", "input": marker, "top_logprobs": 3, "store": store}
        )
        assert data["output"][0]["content"][0]["logprobs"] == expected([-1.0, -2.0, -3.0], 3)


class TestRetrieve:
    def test_when_included(self, client: OpenAI, model: ScriptedModel, marker: str) -> None:
        values = [-0.5, -0.25, -0.75]
        model.script(marker, Reply(text=CHUNKS, logprobs=values))
        data = created(client, {"model": "gpt-4o", "input": marker, "top_logprobs": 1})
        shown = client.responses.retrieve(data["id"], include=[LOGPROBS])
        strict_types.response(shown.model_dump(mode="json", exclude_unset=True))
        part = shown.output[0].content[0]  # type: ignore[union-attr]
        assert part.model_dump()["logprobs"] == expected(values, 1)
        plain = client.responses.retrieve(data["id"])
        assert plain.output[0].content[0].logprobs == []  # type: ignore[union-attr]


class TestStream:
    def test_events(self, client: OpenAI, model: ScriptedModel, marker: str) -> None:
        values = [-0.5, -0.25, -0.75]
        model.script(marker, Reply(text=CHUNKS, logprobs=values))
        body = {"model": "gpt-4o", "input": marker, "stream": True, "top_logprobs": 2}
        events = raw_events(client, "responses", body=body)
        for data in events:
            strict_types.event(data)
        whole = expected(values, 2)
        deltas = [e for e in events if e["type"] == "response.output_text.delta"]
        assert [e["logprobs"] for e in deltas] == [without_bytes([lp]) for lp in whole]
        (done,) = [e for e in events if e["type"] == "response.output_text.done"]
        assert done["logprobs"] == without_bytes(whole)
        (part_done,) = [e for e in events if e["type"] == "response.content_part.done"]
        assert part_done["part"]["logprobs"] == whole
        final = events[-1]["response"]
        assert final["output"][0]["content"][0]["logprobs"] == whole

    def test_include_alone(self, client: OpenAI, model: ScriptedModel, marker: str) -> None:
        model.script(marker, Reply(text=CHUNKS))
        body = {"model": "gpt-4o", "input": marker, "stream": True, "include": [LOGPROBS]}
        events = raw_events(client, "responses", body=body)
        deltas = [e for e in events if e["type"] == "response.output_text.delta"]
        assert [[lp["token"] for lp in e["logprobs"]] for e in deltas] == [[c] for c in CHUNKS]
        assert all(lp["top_logprobs"] == [] for e in deltas for lp in e["logprobs"])

    def test_the_sdk_stream_helper(self, client: OpenAI, model: ScriptedModel, marker: str) -> None:
        model.script(marker, Reply(text=CHUNKS))
        with client.responses.stream(model="gpt-4o", input=marker, top_logprobs=2) as stream:
            tokens = [
                lp.token
                for event in stream
                if event.type == "response.output_text.delta"
                for lp in event.logprobs
            ]
            final = stream.get_final_response()
        assert tokens == CHUNKS
        assert final.output_text == "One two three."


class TestAssistantsRuns:
    def test_unaffected(self, client: OpenAI, model: ScriptedModel, marker: str) -> None:
        model.script(marker, Reply(text=CHUNKS))
        assistant = client.beta.assistants.create(model="gpt-4o")
        run = client.beta.threads.create_and_run_poll(
            assistant_id=assistant.id,
            thread={"messages": [{"role": "user", "content": marker}]},
        )
        assert run.status == "completed"
        (request,) = model.requests(marker)
        assert "logprobs" not in request
        message = client.beta.threads.messages.list(run.thread_id).data[0]
        text = message.content[0]
        assert text.type == "text"
        assert "logprobs" not in text.text.model_dump()
