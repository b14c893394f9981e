"""A stream is a view of the run, not its owner: clients leave and come back (GET .../events)."""

from __future__ import annotations

import asyncio
import time

import httpx
from openai import OpenAI
from openai.types.beta import Assistant

from tests.streaming.conftest import wait_run
from tests.streaming.support import Frame, parse_frames, raw_stream, text_run
from tests.support.scripted_model import Reply, ScriptedModel, ToolCall
from tests.support.server import LiveServer


def _thread(http: httpx.Client, marker: str) -> str:
    response = http.post("/threads", json={"messages": [{"role": "user", "content": marker}]})
    return str(response.json()["id"])


def _text(frames: list[Frame]) -> str:
    return "".join(
        f.json()["delta"]["content"][0]["text"]["value"]
        for f in frames
        if f.event == "thread.message.delta"
    )


def test_disconnected_client_does_not_stop_the_run_and_reattaches(
    http: httpx.Client, client: OpenAI, assistant: Assistant, model: ScriptedModel, marker: str
) -> None:
    chunks = [f"w{i} " for i in range(12)]
    model.script(marker, Reply(text=chunks, chunk_delay=0.05))
    thread_id = _thread(http, marker)
    seen = []
    with http.stream(
        "POST", f"/threads/{thread_id}/runs", json={"assistant_id": assistant.id, "stream": True}
    ) as response:
        for frame in parse_frames(response.iter_lines()):
            seen.append(frame)
            if sum(f.event == "thread.message.delta" for f in seen) == 3:
                break  # leave mid-answer: the connection closes
    run_id = seen[0].json()["id"]
    run = wait_run(client, thread_id, run_id)
    assert run.status == "completed"
    stored = client.beta.threads.messages.list(thread_id, limit=1).data[0].content[0]
    assert stored.type == "text"
    assert stored.text.value == "".join(chunks)

    rest = raw_stream(http, "GET", f"/threads/{thread_id}/runs/{run_id}/events?after={seen[-1].id}")
    whole = seen + rest
    assert [f.event for f in whole] == [*text_run(len(chunks)), "done"]
    assert [f.id for f in whole[:-1]] == list(range(1, len(whole)))
    assert _text(whole) == "".join(chunks)
    replay = raw_stream(http, "GET", f"/threads/{thread_id}/runs/{run_id}/events")
    assert [(f.event, f.data) for f in replay] == [(f.event, f.data) for f in whole]


def test_sdk_stream_left_early_does_not_stop_the_run(
    client: OpenAI, assistant: Assistant, model: ScriptedModel, marker: str
) -> None:
    model.script(marker, Reply(text=["one", " two", " three", " four"], chunk_delay=0.05))
    thread = client.beta.threads.create(messages=[{"role": "user", "content": marker}])
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as s:
        first = next(iter(s.text_deltas))
        run = s.current_run
    assert first == "one"
    assert run is not None
    assert wait_run(client, thread.id, run.id).status == "completed"


def test_reattach_to_a_live_run_and_after_the_end(
    http: httpx.Client, client: OpenAI, assistant: Assistant, model: ScriptedModel, marker: str
) -> None:
    chunks = ["slow", " and", " steady"]
    model.script(marker, Reply(text=chunks, chunk_delay=0.1))
    thread_id = _thread(http, marker)
    run_id = http.post(f"/threads/{thread_id}/runs", json={"assistant_id": assistant.id}).json()[
        "id"
    ]
    # Attached while the run is queued or in progress: everything, live, through `done`.
    live = raw_stream(http, "GET", f"/threads/{thread_id}/runs/{run_id}/events")
    assert [f.event for f in live] == [*text_run(len(chunks)), "done"]
    assert _text(live) == "".join(chunks)
    # Attached after the last event: just `done`.
    end = raw_stream(http, "GET", f"/threads/{thread_id}/runs/{run_id}/events?after={live[-2].id}")
    assert [f.event for f in end] == ["done"]
    # Another project cannot attach.
    response = httpx.get(
        f"{http.base_url}/threads/{thread_id}/runs/{run_id}/events",
        headers={"Authorization": "Bearer sk-test-static"},
    )
    assert response.status_code == 404


def test_reattach_to_a_run_waiting_for_tool_outputs_ends(
    http: httpx.Client, assistant: Assistant, model: ScriptedModel, marker: str
) -> None:
    model.script(marker, Reply(tool_calls=[ToolCall("get_weather", "{}")]))
    thread_id = _thread(http, marker)
    frames = raw_stream(
        http, "POST", f"/threads/{thread_id}/runs", {"assistant_id": assistant.id, "stream": True}
    )
    run_id = frames[0].json()["id"]
    again = raw_stream(
        http, "GET", f"/threads/{thread_id}/runs/{run_id}/events?after={frames[-2].id}"
    )
    assert [f.event for f in again] == ["done"]


def test_many_streams_of_one_run(
    server: LiveServer,
    api_key: str,
    http: httpx.Client,
    client: OpenAI,
    assistant: Assistant,
    model: ScriptedModel,
    marker: str,
) -> None:
    """100 clients watch one run: each gets every event once, in order, while the server
    keeps answering other requests."""
    model.script(marker, Reply(text=["wait", "ing"], hang=True))
    thread_id = _thread(http, marker)
    run_id = http.post(f"/threads/{thread_id}/runs", json={"assistant_id": assistant.id}).json()[
        "id"
    ]
    headers = {"Authorization": f"Bearer {api_key}"}

    async def watch(http_async: httpx.AsyncClient, ready: asyncio.Queue[None]) -> list[str]:
        names = []
        async with http_async.stream("GET", f"/threads/{thread_id}/runs/{run_id}/events") as r:
            event = ""
            async for line in r.aiter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                    names.append(event)
                    if event == "thread.message.delta":
                        await ready.put(None)
        return names

    async def main() -> list[list[str]]:
        limits = httpx.Limits(max_connections=None)
        async with httpx.AsyncClient(
            base_url=f"{server.url}/v1", headers=headers, timeout=30, limits=limits
        ) as http_async:
            ready: asyncio.Queue[None] = asyncio.Queue()
            watchers = [asyncio.create_task(watch(http_async, ready)) for _ in range(100)]
            for _ in range(100):
                await asyncio.wait_for(ready.get(), 30)
            # All 100 are open and idle; the server still serves.
            health = await http_async.get(f"{server.url}/healthz")
            assert health.status_code == 200
            run = await http_async.get(f"/threads/{thread_id}/runs/{run_id}")
            assert run.json()["status"] == "in_progress"
            cancel = await http_async.post(f"/threads/{thread_id}/runs/{run_id}/cancel")
            assert cancel.status_code == 200
            return await asyncio.wait_for(asyncio.gather(*watchers), 30)

    results = asyncio.run(main())
    expected = [
        "thread.run.created",
        "thread.run.queued",
        "thread.run.in_progress",
        "thread.run.step.created",
        "thread.run.step.in_progress",
        "thread.message.created",
        "thread.message.in_progress",
        "thread.message.delta",  # nobody streamed the run: its text is gathered (turn.py)
        "thread.run.cancelling",
        "thread.message.incomplete",
        "thread.run.step.cancelled",
        "thread.run.cancelled",
        "done",
    ]
    assert all(names == expected for names in results), results[0]


def _events_streams_answered(server: LiveServer) -> float:
    """How many `GET .../events` streams the server has finished (any status)."""
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    route = 'route="/v1/threads/{thread_id}/runs/{run_id}/events"'
    return sum(
        float(line.rpartition(" ")[2])
        for line in text.splitlines()
        if line.startswith("assistantd_http_requests_total{") and route in line
    )


def test_a_stream_the_client_left_ends_on_the_server_at_once(
    http: httpx.Client,
    client: OpenAI,
    server: LiveServer,
    assistant: Assistant,
    model: ScriptedModel,
    marker: str,
) -> None:
    model.script(marker, Reply(text=[f"w{i} " for i in range(40)], chunk_delay=0.1))  # ~4 s
    thread_id = _thread(http, marker)
    run = client.beta.threads.runs.create(thread_id=thread_id, assistant_id=assistant.id)
    before = _events_streams_answered(server)
    deltas = 0
    with http.stream("GET", f"/threads/{thread_id}/runs/{run.id}/events") as response:
        for frame in parse_frames(response.iter_lines()):
            deltas += frame.event == "thread.message.delta"
            if deltas == 2:
                break  # leave: the connection closes
    # The server stops streaming to nobody (the request is answered) while the run goes on.
    deadline = time.monotonic() + 2.0
    while _events_streams_answered(server) == before:
        assert time.monotonic() < deadline, "the stream went on after its client left"
        time.sleep(0.05)
    assert client.beta.threads.runs.retrieve(run.id, thread_id=thread_id).status == "in_progress"
    assert wait_run(client, thread_id, run.id).status == "completed"
