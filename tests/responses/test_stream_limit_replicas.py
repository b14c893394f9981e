"""PostgreSQL: a project's limit of open streams holds across API replicas. Two `assistantd serve`
processes on one database, two streams allowed per project: the streams a project opened through
one replica count on the other (one more is OpenAI's 429 there, and creates nothing); a stream
that ends frees its slot for either replica; and the slots of a replica killed with SIGKILL
come free once it has missed a few heartbeats."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest
from openai import OpenAI, Stream
from openai.types.responses import ResponseStreamEvent
from websockets.exceptions import InvalidStatus

from tests.conftest import is_postgres
from tests.responses.test_fair_share import HANG, KEYS, STREAMED, assert_refused, count
from tests.runs.conftest import Tuned, wait_until
from tests.support.scripted_model import ScriptedModel
from tests.support.server import LiveServer

HEARTBEAT = 0.3  # seconds; a replica's slots expire three missed beats after its last


@pytest.fixture(scope="module")
def replicas(
    tuned_server: Callable[..., Tuned], server_env: dict[str, str]
) -> Iterator[tuple[Tuned, LiveServer]]:
    """Two API replicas on one fresh database (and one worker)."""
    if not is_postgres(server_env["ASSISTANTD_DATABASE_URL"]):
        pytest.skip("on SQLite one API process serves the database: it counts its own streams")
    first = tuned_server(
        {
            "ASSISTANTD_API_KEYS": ",".join(f"{project}:{key}" for project, key in KEYS.items()),
            "ASSISTANTD_PROJECT_MAX_STREAMS": "2",
            "ASSISTANTD_STREAM_HEARTBEAT_SECONDS": str(HEARTBEAT),
        }
    )
    second = LiveServer(first.env, first.work_dir / f"{first.api.log_path.stem}-replica.log")
    try:
        yield first, second.start()
    finally:
        second.stop()


def client(server: LiveServer, project: str, stack: contextlib.ExitStack) -> OpenAI:
    """A client of `project` on one replica that never retries: a 429 is raised at once."""
    return stack.enter_context(
        OpenAI(api_key=KEYS[project], base_url=f"{server.url}/v1", max_retries=0)
    )


def open_stream(
    client: OpenAI, text: str, stack: contextlib.ExitStack, ids: list[str]
) -> Stream[ResponseStreamEvent]:
    """A background response streamed (and kept open by `stack`) until its first event."""
    stream: Stream[ResponseStreamEvent] = stack.enter_context(
        client.responses.create(model="gpt-4o", input=text, **STREAMED)
    )
    ids.append(next(iter(stream)).response.id)  # type: ignore[union-attr]
    return stream


def try_stream(client: OpenAI, text: str, stack: contextlib.ExitStack, ids: list[str]) -> bool:
    try:
        open_stream(client, text, stack, ids)
    except openai.RateLimitError:
        return False
    return True


def refused_everywhere(client: OpenAI, tuned: Tuned, text: str) -> None:
    """One more stream of project a on this replica is the 429, over SSE and WebSocket, and
    creates nothing."""
    runs = count(tuned, "runs", "a")
    with pytest.raises(openai.RateLimitError) as refused:
        client.responses.create(model="gpt-4o", input=text, **STREAMED)
    assert_refused(refused)
    with pytest.raises(InvalidStatus) as denied:
        client.responses.connect().enter()
    assert denied.value.response.status_code == 429
    assert denied.value.response.headers["retry-after"] == "1"
    assert count(tuned, "runs", "a") == runs


def test_open_streams_are_counted_across_replicas(
    replicas: tuple[Tuned, LiveServer], model: ScriptedModel, marker: str
) -> None:
    tuned, second = replicas
    first = tuned.api
    model.script(marker, HANG)
    ids: dict[str, list[str]] = {"a": [], "b": []}
    with contextlib.ExitStack() as stack:
        a1, a2 = client(first, "a", stack), client(second, "a", stack)
        b2 = client(second, "b", stack)
        try:
            # a's two streams on replica 1 are all of a's, on replica 2 too
            held = [open_stream(a1, f"{marker} a{i}.", stack, ids["a"]) for i in range(2)]
            refused_everywhere(a2, tuned, f"{marker} a2.")
            refused_everywhere(a1, tuned, f"{marker} a3.")
            # ... for as long as they are open: their replica renews them
            outlive = time.monotonic() + 6 * HEARTBEAT
            while time.monotonic() < outlive:
                refused_everywhere(a2, tuned, f"{marker} a3.")
            # another project's are its own
            open_stream(b2, f"{marker} b0.", stack, ids["b"])

            # one of a's ends on replica 1: replica 2 may open one (once replica 1 has seen
            # the client leave, a moment later), and then a is full again
            held[0].close()
            wait_until(
                lambda: try_stream(a2, f"{marker} a4.", stack, ids["a"]),
                bool,
                what="a's stream on replica 2 once one on replica 1 ended",
            )
            refused_everywhere(a2, tuned, f"{marker} a5.")

            # replica 1 dies holding one of a's streams: its slot frees when its heartbeats
            # stop counting, and the rows it left are swept
            first.kill()
            wait_until(
                lambda: try_stream(a2, f"{marker} a6.", stack, ids["a"]),
                bool,
                timeout=20 * HEARTBEAT + 10,
                what="the killed replica's stream slot to expire",
            )
            refused_everywhere(a2, tuned, f"{marker} a7.")
            wait_until(
                lambda: live_rows(tuned),
                lambda rows: rows == {"a": 2, "b": 1},
                what="the killed replica's rows to be swept",
            )
        finally:
            for project, mine in ids.items():
                cancel_all(client(second, project, stack), mine)


def live_rows(tuned: Tuned) -> dict[str, Any]:
    rows = tuned.sql("SELECT project, count(*) FROM open_streams GROUP BY project")
    return dict(rows)


def cancel_all(client: OpenAI, ids: list[str]) -> None:
    for response_id in ids:
        with contextlib.suppress(openai.APIError):
            if client.responses.retrieve(response_id).status in ("queued", "in_progress"):
                client.responses.cancel(response_id)
