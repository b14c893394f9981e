"""Graceful shutdown of `assistantd serve` (with its embedded worker) on SIGTERM: in-flight runs
finish within the grace period, or are handed back to the queue and finished after a restart.
(`assistantd worker`'s SIGTERM is covered in tests/runs/test_recovery.py.)"""

from __future__ import annotations

import secrets
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from openai import OpenAI

from tests.conftest import STATIC_KEY, STATIC_PROJECT
from tests.runs.conftest import fresh_database, wait_run
from tests.support.scripted_model import Reply, ScriptedModel
from tests.support.server import LiveServer


@pytest.fixture
def env(database_url: str, work_dir: Path, model: ScriptedModel) -> dict[str, str]:
    return {
        "ASSISTANTD_DATA_DIR": str(work_dir / f"shutdown-{secrets.token_hex(3)}"),
        "ASSISTANTD_DATABASE_URL": fresh_database(database_url, work_dir),
        "ASSISTANTD_API_KEYS": f"{STATIC_PROJECT}:{STATIC_KEY}",
        "ASSISTANTD_MODEL_BASE_URL": model.base_url,
        "ASSISTANTD_EMBEDDED_WORKER": "true",  # on PostgreSQL too: this is serve's shutdown
        "ASSISTANTD_SANDBOX_POOL_SIZE": "0",
        "ASSISTANTD_POLL_AFTER_MS": "25",
    }


def serve(env: dict[str, str], log: Path) -> Iterator[tuple[LiveServer, OpenAI]]:
    server = LiveServer(env, log).start()
    with OpenAI(api_key=STATIC_KEY, base_url=f"{server.url}/v1", max_retries=0) as client:
        try:
            yield server, client
        finally:
            server.stop()


def start_slow_run(client: OpenAI, model: ScriptedModel, *replies: Reply) -> tuple[str, str]:
    marker = f"slow-{secrets.token_hex(4)}"
    model.script(marker, *replies)
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": marker}])
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    wait_run(client, thread.id, run.id, {"in_progress"})
    return thread.id, run.id


def test_sigterm_lets_a_run_finish(
    env: dict[str, str], work_dir: Path, model: ScriptedModel
) -> None:
    env = {**env, "ASSISTANTD_SHUTDOWN_GRACE_SECONDS": "30"}
    first = serve(env, work_dir / "shutdown-finish.log")
    server, client = next(first)
    words = [f"w{i} " for i in range(10)]
    thread_id, run_id = start_slow_run(client, model, Reply(text=words, chunk_delay=0.2))
    server.stop()  # SIGTERM, then wait
    assert server.proc is not None
    # uvicorn re-raises SIGTERM once it has shut down cleanly
    assert server.proc.returncode in (0, -signal.SIGTERM)
    assert "stopped" in server.log_tail()  # the worker's "worker ... stopped", after its grace
    first.close()
    again = serve(env, work_dir / "shutdown-finish-2.log")
    _, client = next(again)
    run = wait_run(client, thread_id, run_id, {"completed", "failed", "queued"}, timeout=30)
    assert run.status == "completed"  # before the server stopped: nothing left to do
    [reply] = client.beta.threads.messages.list(thread_id, run_id=run_id).data
    assert reply.content[0].text.value == "".join(words)  # type: ignore[union-attr]
    again.close()


def test_sigterm_hands_back_what_does_not_finish_in_time(
    env: dict[str, str], work_dir: Path, model: ScriptedModel
) -> None:
    env = {**env, "ASSISTANTD_SHUTDOWN_GRACE_SECONDS": "0.5"}
    first = serve(env, work_dir / "shutdown-handback.log")
    server, client = next(first)
    slow = Reply(text=[f"w{i} " for i in range(100)], chunk_delay=0.5)
    thread_id, run_id = start_slow_run(client, model, slow, Reply(text="After the restart."))
    server.stop()
    assert server.proc is not None
    # uvicorn re-raises SIGTERM once it has shut down cleanly
    assert server.proc.returncode in (0, -signal.SIGTERM)
    assert "stopped" in server.log_tail()  # the worker's "worker ... stopped", after its grace
    first.close()
    again = serve(env, work_dir / "shutdown-handback-2.log")
    _, client = next(again)
    run = wait_run(client, thread_id, run_id, {"completed", "failed"}, timeout=30)
    assert run.status == "completed", run.last_error
    messages = client.beta.threads.messages.list(thread_id, run_id=run_id).data
    texts = [m.content[0].text.value for m in messages]  # type: ignore[union-attr]
    assert texts[0] == "After the restart."
    assert messages[0].status == "completed"
    # the message the first server was streaming is closed with the text checkpointed so far
    for partial, text in zip(messages[1:], texts[1:], strict=True):
        assert partial.status == "incomplete"
        assert "".join(f"w{i} " for i in range(100)).startswith(text)
    assert len(texts) <= 2
    again.close()
