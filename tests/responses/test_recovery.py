"""A response whose worker dies mid-answer (PostgreSQL, where workers are separate processes)
is taken over by another worker and completes once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from tests.conftest import is_postgres
from tests.responses.conftest import raw_events
from tests.runs.conftest import Tuned, wait_until
from tests.runs.test_recovery import FAST_RECOVERY, SLOW_ANSWER, event_names, holder
from tests.support.scripted_model import Reply, ScriptedModel


@pytest.fixture(autouse=True)
def _postgres_only(database_url: str) -> None:
    if not is_postgres(database_url):
        pytest.skip("workers run in separate processes only on PostgreSQL")


@pytest.fixture(scope="module")
def crashy(tuned_server: Callable[..., Tuned], database_url: str) -> Tuned | None:
    if not is_postgres(database_url):
        return None
    return tuned_server(FAST_RECOVERY, workers=2)


@pytest.mark.parametrize("background", [True, False])
def test_a_killed_workers_response_completes_once(
    crashy: Tuned, model: ScriptedModel, marker: str, background: bool
) -> None:
    client = crashy.client
    if len([w for w in crashy.workers if w.proc is not None and w.proc.poll() is None]) < 2:
        crashy.add_worker()
    model.script(marker, SLOW_ANSWER, Reply(text="Recovered answer."))
    if background:
        response_id = client.responses.create(model="gpt-4o", input=marker, background=True).id
    else:
        # a foreground streaming client: the events it reads are the response's log
        body = {"model": "gpt-4o", "input": marker, "stream": True}
        streamed: list[list[dict[str, object]]] = []
        reader = threading.Thread(
            target=lambda: streamed.append(raw_events(client, "responses", body=body))
        )
        reader.start()
        [(response_id,)] = wait_until(
            lambda: crashy.sql(
                "SELECT id FROM runs WHERE id LIKE 'resp%' AND options->>'stream' = 'true'"
                " AND id NOT IN (SELECT run_id FROM run_events WHERE event = 'response.completed')"
                " ORDER BY id DESC LIMIT 1"
            ),
            bool,
            what="the response to be created",
        )
    wait_until(
        lambda: crashy.sql(
            "SELECT count(*) FROM items WHERE run_id = :id AND type = 'message'", id=response_id
        ),
        lambda rows: rows[0][0] > 0,
        timeout=30,
        what="the model to start answering",
    )
    holder(crashy, response_id).kill()
    final = wait_until(
        lambda: client.responses.retrieve(response_id),
        lambda r: r.status not in ("queued", "in_progress"),
        timeout=30,
        what="the response to finish on another worker",
    )
    assert final.status == "completed", final.error
    assert final.output_text == "Recovered answer."
    messages = [item for item in final.output if item.type == "message"]
    assert [m.status for m in messages] == ["incomplete", "completed"]
    names = event_names(crashy, response_id)
    assert names.count("response.completed") == 1
    assert names.count("response.in_progress") == 2
    [(attempts,)] = crashy.sql("SELECT attempts FROM runs WHERE id = :id", id=response_id)
    assert attempts == 2
    if not background:
        reader.join(30)
        [events] = streamed
        assert [e["sequence_number"] for e in events] == list(range(len(events)))
        assert events[-1]["type"] == "response.completed"
        added = [e["output_index"] for e in events if e["type"] == "response.output_item.added"]
        assert added == [0, 1]


@pytest.fixture(scope="module")
def sleepy(tuned_server: Callable[..., Tuned], database_url: str) -> Tuned | None:
    """Workers that look for queued runs on their own only every minute: what they start
    sooner, a notification woke them for."""
    if not is_postgres(database_url):
        return None
    return tuned_server({"ASSISTANTD_WORKER_POLL_SECONDS": "60"}, workers=1)


@pytest.mark.parametrize("background", [True, False])
def test_a_worker_process_starts_a_new_response_at_once(
    sleepy: Tuned, model: ScriptedModel, marker: str, background: bool
) -> None:
    client = sleepy.client
    model.script(marker, Reply(text="Woken."))
    started = time.monotonic()
    if background:
        created = client.responses.create(model="gpt-4o", input=marker, background=True)
        final = wait_until(
            lambda: client.responses.retrieve(created.id),
            lambda r: r.status not in ("queued", "in_progress"),
            timeout=30,
            what="the background response to finish",
        )
    else:
        final = client.responses.create(model="gpt-4o", input=marker)
    assert final.status == "completed", final.error
    assert final.output_text == "Woken."
    assert time.monotonic() - started < 10  # not the worker's minute
