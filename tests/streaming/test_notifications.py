"""PostgreSQL: stored events announce themselves to every process (the run_events trigger of
migration 0002), which is how an API process hears of events a standalone worker wrote."""

from __future__ import annotations

import httpx
import psycopg
import pytest
from openai import OpenAI
from openai.types.beta import Assistant
from sqlalchemy.engine import make_url

from assistantd.runs.signals import RUN_EVENTS_CHANNEL, RUNS_QUEUED_CHANNEL
from tests.conftest import is_postgres
from tests.streaming.support import raw_stream
from tests.support.scripted_model import Reply, ScriptedModel


def test_stored_events_notify_listeners(
    database_url: str,
    http: httpx.Client,
    client: OpenAI,
    assistant: Assistant,
    model: ScriptedModel,
    marker: str,
) -> None:
    if not is_postgres(database_url):
        pytest.skip("notifications between processes are PostgreSQL's (SQLite is one process)")
    conninfo = make_url(database_url).set(drivername="postgresql")
    with psycopg.connect(conninfo.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f"LISTEN {RUN_EVENTS_CHANNEL}")
        conn.execute(f"LISTEN {RUNS_QUEUED_CHANNEL}")
        model.script(marker, Reply(text=["one ", "two"]))
        thread = client.beta.threads.create(messages=[{"role": "user", "content": marker}])
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=20
        )
        assert run.status == "completed"
        stored = raw_stream(http, "GET", f"/threads/{thread.id}/runs/{run.id}/events")
        last = max(frame.id for frame in stored if frame.id is not None)
        notes = []
        for note in conn.notifies(timeout=2.0):
            notes.append((note.channel, note.payload))
            if note.payload == f"{run.id} {last}":
                break
    seqs = [
        int(payload.split()[1])
        for channel, payload in notes
        if channel == RUN_EVENTS_CHANNEL and payload.startswith(f"{run.id} ")
    ]
    # One note per transaction that stored events (create, claim, first token, end), each
    # naming the last event it stored.
    assert len(seqs) >= 3
    assert seqs == sorted(seqs)
    assert seqs[-1] == last
    # Creating the run stored its `thread.run.queued`: the workers were woken.
    assert (RUNS_QUEUED_CHANNEL, "") in notes
