"""Fair share between projects, through a live server and the official client: a project at its
limit of active runs or open streams gets OpenAI's 429 with `Retry-After` (and nothing is
created) while another project is served; and one project's backlog does not hold back another
project's response by more than one execution slot (one worker slot each, on SQLite; on
PostgreSQL with one and with two worker processes)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest
from openai import OpenAI
from websockets.exceptions import InvalidStatus

from tests.conftest import is_postgres
from tests.responses.conftest import wait_response
from tests.runs.conftest import Tuned, wait_until
from tests.support.scripted_model import Reply, ScriptedModel, ToolCall

KEYS = {"a": "sk-fair-a", "b": "sk-fair-b"}
ONE_SLOT = {
    "ASSISTANTD_API_KEYS": ",".join(f"{project}:{key}" for project, key in KEYS.items()),
    "ASSISTANTD_WORKER_CONCURRENCY": "1",
}
HANG = Reply(text=["waiting"], hang=True)
# Streamed in the background: a stream that can be cancelled.
STREAMED: dict[str, Any] = {"stream": True, "background": True}


@pytest.fixture
def closing() -> Iterator[contextlib.ExitStack]:
    with contextlib.ExitStack() as stack:
        yield stack


def clients(server: Tuned, closing: contextlib.ExitStack) -> tuple[OpenAI, OpenAI]:
    """Project a's client and project b's (closed after the test), which never retry: a 429
    is raised at once."""
    base = f"{server.api.url}/v1"
    a, b = (
        closing.enter_context(OpenAI(api_key=KEYS[project], base_url=base, max_retries=0))
        for project in ("a", "b")
    )
    return a, b


def count(server: Tuned, table: str, project: str) -> int:
    return int(server.sql(f"SELECT count(*) FROM {table} WHERE project = :p", p=project)[0][0])


def arrival(model: ScriptedModel, marker: str, tags: list[str]) -> list[str]:
    """Which of `tags` each model request of this test carried, in the order they arrived."""
    order = []
    for body in model.requests(marker):
        seen = json.dumps(body["messages"])
        order.append(next(tag for tag in tags if f"{tag}." in seen))
    return order


def assert_refused(refused: pytest.ExceptionInfo[openai.RateLimitError]) -> None:
    """OpenAI's 429 for a limit on requests."""
    error = refused.value
    assert error.status_code == 429
    assert error.response.headers["retry-after"] == "1"
    body = error.response.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["type"] == "requests"
    assert body["error"]["code"] == "rate_limit_exceeded"
    assert body["error"]["param"] is None
    assert "Limit" in body["error"]["message"]


def cancel_all(client: OpenAI, ids: list[str]) -> None:
    for response_id in ids:
        if client.responses.retrieve(response_id).status in ("queued", "in_progress"):
            client.responses.cancel(response_id)


@pytest.fixture(scope="module")
def limited(tuned_server: Callable[..., Tuned]) -> Tuned:
    return tuned_server(
        {
            **ONE_SLOT,
            "ASSISTANTD_PROJECT_MAX_ACTIVE_RUNS": "3",
            "ASSISTANTD_PROJECT_MAX_STREAMS": "1",
        }
    )


class TestActiveLimit:
    def test_a_project_at_its_limit_is_refused_while_another_is_served(
        self, limited: Tuned, model: ScriptedModel, marker: str, closing: contextlib.ExitStack
    ) -> None:
        a, b = clients(limited, closing)
        model.script(f"{marker} a", HANG)
        held = [
            a.responses.create(model="gpt-4o", input=f"{marker} a{i}.", background=True).id
            for i in range(3)
        ]
        try:
            model.wait_requests(1, marker)  # a's first holds the one slot; two wait
            runs, threads = count(limited, "runs", "a"), count(limited, "threads", "a")
            with pytest.raises(openai.RateLimitError) as refused:
                a.responses.create(model="gpt-4o", input=f"{marker} a3.", background=True)
            assert_refused(refused)
            # the Assistants API counts against the same limit
            assistant = a.beta.assistants.create(model="gpt-4o")
            with pytest.raises(openai.RateLimitError) as refused:
                a.beta.threads.create_and_run(
                    assistant_id=assistant.id,
                    thread={"messages": [{"role": "user", "content": f"{marker} a4."}]},
                )
            assert_refused(refused)
            assert (count(limited, "runs", "a"), count(limited, "threads", "a")) == (runs, threads)

            # b is served: its response is the next to run, ahead of a's queue
            mine = b.responses.create(model="gpt-4o", input=f"{marker} b.", background=True)
            a.responses.cancel(held[0])
            assert wait_response(b, mine.id).status == "completed"
            assert arrival(model, marker, ["a0", "a1", "a2", "b"])[:2] == ["a0", "b"]

            # a slot of a's came free: it may create again
            held.append(
                a.responses.create(model="gpt-4o", input=f"{marker} a5.", background=True).id
            )
        finally:
            cancel_all(a, held)

    def test_tool_outputs_that_would_requeue_a_run_past_the_limit_are_refused(
        self, limited: Tuned, model: ScriptedModel, marker: str, closing: contextlib.ExitStack
    ) -> None:
        """A run waiting for tool outputs holds no slot; submitting them queues it again, which
        a project at its limit may not do (the run keeps waiting; the client retries)."""
        a, _ = clients(limited, closing)
        model.script(f"{marker} t", Reply(tool_calls=[ToolCall("lookup", "{}")]), Reply(text="ok"))
        model.script(f"{marker} a", HANG)
        assistant = a.beta.assistants.create(
            model="gpt-4o",
            tools=[{"type": "function", "function": {"name": "lookup", "parameters": {}}}],
        )
        thread = a.beta.threads.create(messages=[{"role": "user", "content": f"{marker} t."}])
        run = a.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=20
        )
        assert run.status == "requires_action"
        assert run.required_action is not None
        call = run.required_action.submit_tool_outputs.tool_calls[0]
        held = [
            a.responses.create(model="gpt-4o", input=f"{marker} a{i}.", background=True).id
            for i in range(3)
        ]
        try:
            with pytest.raises(openai.RateLimitError) as refused:
                a.beta.threads.runs.submit_tool_outputs(
                    run_id=run.id,
                    thread_id=thread.id,
                    tool_outputs=[{"tool_call_id": call.id, "output": "42"}],
                )
            assert_refused(refused)
            waiting = a.beta.threads.runs.retrieve(run_id=run.id, thread_id=thread.id)
            assert waiting.status == "requires_action"  # nothing changed

            a.responses.cancel(held.pop(0))  # a slot comes free
            a.beta.threads.runs.submit_tool_outputs(
                run_id=run.id,
                thread_id=thread.id,
                tool_outputs=[{"tool_call_id": call.id, "output": "42"}],
            )
            for response_id in held:
                a.responses.cancel(response_id)
            done = wait_until(
                lambda: a.beta.threads.runs.retrieve(run_id=run.id, thread_id=thread.id),
                lambda r: r.status in ("completed", "failed", "cancelled", "expired"),
                what="the run to finish",
            )
            assert done.status == "completed", done.last_error
        finally:
            cancel_all(a, held)


class TestStreamLimit:
    def test_streams_past_the_limit_are_refused_while_another_project_streams(
        self, limited: Tuned, model: ScriptedModel, marker: str, closing: contextlib.ExitStack
    ) -> None:
        a, b = clients(limited, closing)
        model.script(marker, HANG)  # background, so that they can be cancelled
        mine: list[str] = []  # a's responses
        theirs: list[str] = []  # b's
        try:
            with a.responses.create(model="gpt-4o", input=f"{marker} a0.", **STREAMED) as first:
                mine.append(next(iter(first)).response.id)  # type: ignore[union-attr]
                runs = count(limited, "runs", "a")
                with pytest.raises(openai.RateLimitError) as refused:
                    a.responses.create(model="gpt-4o", input=f"{marker} a1.", **STREAMED)
                assert_refused(refused)
                assistant = a.beta.assistants.create(model="gpt-4o")
                with pytest.raises(openai.RateLimitError) as refused:
                    a.beta.threads.create_and_run(
                        assistant_id=assistant.id,
                        thread={"messages": [{"role": "user", "content": f"{marker} a2."}]},
                        stream=True,
                    )
                assert_refused(refused)
                with pytest.raises(openai.RateLimitError) as refused:
                    a.responses.retrieve(mine[0], stream=True)  # re-attaching is a stream too
                assert_refused(refused)
                with pytest.raises(InvalidStatus) as denied:
                    a.responses.connect().enter()
                assert denied.value.response.status_code == 429
                assert denied.value.response.headers["retry-after"] == "1"
                assert count(limited, "runs", "a") == runs  # nothing was created

                # b streams, over SSE and WebSocket; a's requests that open no stream are served
                with b.responses.create(model="gpt-4o", input=f"{marker} b.", **STREAMED) as s:
                    theirs.append(next(iter(s)).response.id)  # type: ignore[union-attr]

                def connect() -> bool:
                    """b's WebSocket, once the server has seen b's stream above close (its
                    slot comes back a moment after the client leaves)."""
                    try:
                        with b.responses.connect():
                            return True
                    except InvalidStatus as exc:
                        if exc.response.status_code != 429:
                            raise
                        return False

                wait_until(connect, bool, what="b's WebSocket to be accepted")
                created = a.responses.create(model="gpt-4o", input=f"{marker} a3.", background=True)
                mine.append(created.id)

            # a's stream is closed: once the server has seen it go, a may stream again
            def stream_again() -> str | None:
                try:
                    with a.responses.create(
                        model="gpt-4o", input=f"{marker} a4.", **STREAMED
                    ) as again:
                        return next(iter(again)).response.id  # type: ignore[union-attr]
                except openai.RateLimitError:
                    return None

            mine.append(wait_until(stream_again, bool, what="a's stream slot to come back"))
        finally:
            cancel_all(a, mine)
            cancel_all(b, theirs)


# --- round robin ------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=[1, 2], ids=["one worker", "two workers"])
def fair(
    request: pytest.FixtureRequest, tuned_server: Callable[..., Tuned], server_env: dict[str, str]
) -> Tuned:
    if request.param == 2 and not is_postgres(server_env["ASSISTANTD_DATABASE_URL"]):
        pytest.skip("on SQLite the server is the only worker")
    return tuned_server(ONE_SLOT, workers=request.param)


def test_a_backlog_delays_another_projects_first_token_by_one_slot_at_most(
    fair: Tuned, model: ScriptedModel, marker: str, closing: contextlib.ExitStack
) -> None:
    """Every slot (one per worker) runs one of a's slow responses, and more wait; b's streamed
    response runs as soon as one slot frees, before a's next."""
    a, b = clients(fair, closing)
    slots = max(len(fair.workers), 1)
    model.script(f"{marker} a", Reply(text=["slow"], delay=2.0))
    backlog = [
        a.responses.create(model="gpt-4o", input=f"{marker} a{i}.", background=True).id
        for i in range(slots + 4)
    ]
    try:
        model.wait_requests(slots, marker)  # every slot is a's
        events: list[Any] = []
        with b.responses.create(model="gpt-4o", input=f"{marker} b.", stream=True) as stream:
            for event in stream:
                events.append(event)
        assert events[-1].type == "response.completed"
        assert any(event.type == "response.output_text.delta" for event in events)
        done = events[-1].response
        # b's response ended while a's backlog still waited ...
        waiting = [a.responses.retrieve(i) for i in backlog]
        assert sum(r.status == "queued" for r in waiting) >= 2
        assert all(r.created_at <= done.created_at for r in waiting)
        # ... and the model was asked for it right after the slots' first responses of a
        tags = [f"a{i}" for i in range(len(backlog))] + ["b"]
        order = arrival(model, marker, tags)
        # one worker: right after a's first; two: among the claims as the first two end (the
        # second worker's claim may reach the model first)
        assert order.index("b") <= 2 * slots - 1, order
    finally:
        cancel_all(a, backlog)
