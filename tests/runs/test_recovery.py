"""Worker crashes and shutdowns (PostgreSQL, where workers are separate processes).

Each test uses its own database with its own standalone workers (short leases, a fast reaper),
so every worker that might hold the run is one the test may kill; the suite's shared worker
never sees these runs. Which worker holds a run is read from the run's `lease_owner`
(`<host>-<pid>-<random>`).
"""

from __future__ import annotations

import signal
from collections.abc import Callable

import pytest
from openai import OpenAI

from tests.conftest import is_postgres
from tests.runs.conftest import Tuned, wait_run, wait_until
from tests.support.scripted_model import Reply, ScriptedModel
from tests.support.server import LiveServer

FAST_RECOVERY = {
    "ASSISTANTD_WORKER_LEASE_SECONDS": "3",
    "ASSISTANTD_REAPER_INTERVAL_SECONDS": "0.2",
    "ASSISTANTD_SHUTDOWN_GRACE_SECONDS": "0.3",
}
SLOW_ANSWER = Reply(text=" ".join(f"w{i}" for i in range(100)), chunk_delay=0.2)  # ~20 s


@pytest.fixture(autouse=True)
def _postgres_only(database_url: str) -> None:
    if not is_postgres(database_url):
        pytest.skip("workers run in separate processes only on PostgreSQL")


@pytest.fixture(scope="module")
def crashy(tuned_server: Callable[..., Tuned], database_url: str) -> Tuned | None:
    if not is_postgres(database_url):
        return None
    return tuned_server(FAST_RECOVERY, workers=2)


def holder(tuned: Tuned, run_id: str) -> LiveServer:
    """The worker process whose lease holds `run_id` (waits for a claim)."""
    [(owner,)] = wait_until(
        lambda: tuned.sql("SELECT lease_owner FROM runs WHERE id = :id", id=run_id),
        lambda rows: rows[0][0] is not None,
        what=f"a worker to claim {run_id}",
    )
    pid = int(owner.rsplit("-", 2)[1])
    [worker] = [w for w in tuned.workers if w.proc is not None and w.proc.pid == pid]
    return worker


def start_mid_answer(
    tuned: Tuned, model: ScriptedModel, marker: str, *replies: Reply
) -> tuple[str, str, LiveServer]:
    """A run whose model is mid-answer (its message exists), and the worker holding it."""
    client = tuned.client
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": marker}])
    model.script(marker, *replies)
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    wait_until(
        lambda: client.beta.threads.messages.list(thread.id, run_id=run.id).data,
        bool,
        timeout=30,
        what="the model to start answering",
    )
    return thread.id, run.id, holder(tuned, run.id)


def assistant_messages(client: OpenAI, thread_id: str, run_id: str) -> list[str]:
    return [
        f"{m.status}:{m.content[0].text.value if m.content else ''}"  # type: ignore[union-attr]
        for m in client.beta.threads.messages.list(thread_id, order="asc")
        if m.role == "assistant" and m.run_id == run_id
    ]


def test_a_killed_workers_run_completes_on_another(
    crashy: Tuned, model: ScriptedModel, marker: str
) -> None:
    client = crashy.client
    live = [w for w in crashy.workers if w.proc is not None and w.proc.poll() is None]
    if len(live) < 2:
        crashy.add_worker()
    thread_id, run_id, worker = start_mid_answer(
        crashy, model, marker, SLOW_ANSWER, Reply(text="Recovered answer.")
    )
    wait_until(  # the text streamed so far is stored every second
        lambda: assistant_messages(client, thread_id, run_id),
        lambda texts: bool(texts) and "w2" in texts[0],
        timeout=30,
        what="a checkpoint of the text",
    )
    worker.kill()  # SIGKILL: no goodbye, the lease just stops being renewed
    run = wait_run(client, thread_id, run_id, {"completed", "failed"}, timeout=20)
    assert run.status == "completed", run.last_error
    # the reaper requeued it, and another worker started it again and finished it
    names = event_names(crashy, run_id)
    assert names.count("thread.run.queued") == 2
    assert names.count("thread.run.in_progress") == 2
    assert names[-1] == "thread.run.completed"
    # what the first attempt had streamed was checkpointed: its message closes with that text
    partial, final = assistant_messages(client, thread_id, run_id)
    assert partial.startswith("incomplete:w0 w1")
    assert SLOW_ANSWER.text.startswith(partial.removeprefix("incomplete:"))  # type: ignore[union-attr]
    assert final == "completed:Recovered answer."
    steps = client.beta.threads.runs.steps.list(run_id, thread_id=thread_id, order="asc").data
    assert [(s.type, s.status) for s in steps] == [
        ("message_creation", "failed"),
        ("message_creation", "completed"),
    ]
    assert steps[0].last_error is not None
    [(attempts,)] = crashy.sql("SELECT attempts FROM runs WHERE id = :id", id=run_id)
    assert attempts == 2
    assert len(model.requests(marker)) == 2
    # the thread is consistent and usable
    client.beta.threads.messages.create(thread_id, role="user", content="thanks")


def event_names(tuned: Tuned, run_id: str) -> list[str]:
    rows = tuned.sql("SELECT event FROM run_events WHERE run_id = :id ORDER BY seq", id=run_id)
    return [name for (name,) in rows]


def test_a_stopped_worker_hands_its_run_back(
    crashy: Tuned, model: ScriptedModel, marker: str
) -> None:
    """SIGTERM: the worker lets in-flight runs finish for a grace period, then hands them back."""
    client = crashy.client
    live = [w for w in crashy.workers if w.proc is not None and w.proc.poll() is None]
    if len(live) < 2:
        crashy.add_worker()
    thread_id, run_id, worker = start_mid_answer(
        crashy, model, marker, SLOW_ANSWER, Reply(text="Handed over.")
    )
    worker.stop()
    run = wait_run(client, thread_id, run_id, {"completed", "failed"}, timeout=20)
    assert run.status == "completed", run.last_error
    # handed back as queued (which wakes the other workers at once), then run again
    names = event_names(crashy, run_id)
    assert names.count("thread.run.queued") == 2
    assert names.count("thread.run.in_progress") == 2
    # the worker stored the text it had streamed as it let go
    partial, final = assistant_messages(client, thread_id, run_id)
    assert partial.startswith("incomplete:w0")
    assert final == "completed:Handed over."


@pytest.fixture(scope="module")
def fragile(tuned_server: Callable[..., Tuned], database_url: str) -> Tuned | None:
    if not is_postgres(database_url):
        return None
    return tuned_server({**FAST_RECOVERY, "ASSISTANTD_RUN_MAX_ATTEMPTS": "1"}, workers=2)


def test_a_run_out_of_attempts_fails(fragile: Tuned, model: ScriptedModel, marker: str) -> None:
    client = fragile.client
    thread_id, run_id, worker = start_mid_answer(fragile, model, marker, SLOW_ANSWER)
    worker.kill()
    run = wait_run(client, thread_id, run_id, {"completed", "failed"}, timeout=20)
    assert run.status == "failed"
    assert run.last_error is not None
    assert run.last_error.code == "server_error"
    assert "stopped responding" in run.last_error.message
    assert run.failed_at is not None
    [message] = [
        m
        for m in client.beta.threads.messages.list(thread_id)
        if m.role == "assistant" and m.run_id == run_id
    ]
    assert message.status == "incomplete"
    assert message.incomplete_details.reason == "run_failed"  # type: ignore[union-attr]
    [step] = client.beta.threads.runs.steps.list(run_id, thread_id=thread_id).data
    assert step.status == "failed"
    assert len(model.requests(marker)) == 1
    client.beta.threads.messages.create(thread_id, role="user", content="still usable")


def test_a_stalled_worker_stops_when_it_finds_its_run_taken(
    crashy: Tuned, model: ScriptedModel, marker: str
) -> None:
    """A worker frozen past its lease (SIGSTOP) comes back to find the run given to another
    worker: it stops its stale executor at once, so the run completes once, by the new owner,
    with one answer."""
    client = crashy.client
    if len([w for w in crashy.workers if w.proc is not None and w.proc.poll() is None]) < 2:
        crashy.add_worker()
    thread_id, run_id, worker = start_mid_answer(
        crashy, model, marker, SLOW_ANSWER, Reply(text="Taken over.")
    )
    assert worker.proc is not None
    worker.proc.send_signal(signal.SIGSTOP)
    try:
        wait_until(  # the reaper gives the run to the other worker once the lease lapses
            lambda: event_names(crashy, run_id).count("thread.run.in_progress"),
            lambda count: count == 2,
            timeout=30,
            what="another worker to take the run",
        )
    finally:
        worker.proc.send_signal(signal.SIGCONT)
    run = wait_run(client, thread_id, run_id, {"completed", "failed"}, timeout=30)
    assert run.status == "completed", run.last_error
    wait_until(  # the stale worker, running again, finds the run gone and stops its executor
        lambda: worker.log_path.read_text(errors="replace"),
        lambda log: f"run {run_id}: lease lost to another worker; stopping" in log,
        timeout=30,
        what="the stale worker to stop its executor",
    )
    names = event_names(crashy, run_id)
    assert names.count("thread.run.completed") == 1
    assert names[-1] == "thread.run.completed"
    finals = [m for m in assistant_messages(client, thread_id, run_id) if m.startswith("completed")]
    assert finals == ["completed:Taken over."]
