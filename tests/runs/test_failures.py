"""Runs that fail (backend errors, timeouts, an unreachable backend) or expire."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from openai import BadRequestError, OpenAI
from openai.types.beta import Assistant

from assistantd.db.models import Run
from assistantd.runs import state
from assistantd.runs.state import RunStatus
from tests.runs.conftest import Tuned, function_tool, wait_run
from tests.support.scripted_model import Reply, ScriptedModel, ToolCall
from tests.support.server import free_port, wait_for_log_line


def run_to_end(client: OpenAI, assistant: Assistant, marker: str) -> tuple[str, str]:
    thread = client.beta.threads.create(messages=[{"role": "user", "content": marker}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    return thread.id, run.id


class TestBackendErrors:
    def test_server_errors_fail_the_run_after_retries(
        self, client: OpenAI, assistant: Assistant, model: ScriptedModel, marker: str
    ) -> None:
        model.script(marker, Reply(status=500, error_message="the GPU caught fire"))
        thread_id, run_id = run_to_end(client, assistant, marker)
        run = client.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
        assert run.status == "failed"
        assert run.last_error is not None
        assert run.last_error.code == "server_error"
        message = run.last_error.message
        assert "HTTP 500" in message
        assert "the GPU caught fire" in message
        assert model.base_url in message  # which backend
        assert "4 attempts" in message
        assert len(model.requests(marker)) == 4  # 1 + ASSISTANTD_MODEL_MAX_RETRIES
        assert run.failed_at is not None
        assert run.completed_at is None
        assert run.expires_at is None
        assert run.usage is not None
        assert [m.role for m in client.beta.threads.messages.list(thread_id)] == ["user"]
        assert client.beta.threads.runs.steps.list(run_id, thread_id=thread_id).data == []
        # the thread is usable again
        client.beta.threads.messages.create(thread_id, role="user", content="again")

    def test_a_transient_error_is_retried(
        self, client: OpenAI, assistant: Assistant, model: ScriptedModel, marker: str
    ) -> None:
        model.script(marker, Reply(status=503), Reply(status=502), Reply(text="Recovered."))
        thread_id, run_id = run_to_end(client, assistant, marker)
        run = client.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
        assert run.status == "completed", run.last_error
        assert len(model.requests(marker)) == 3
        assert client.beta.threads.messages.list(thread_id).data[0].content[0].text.value == (  # type: ignore[union-attr]
            "Recovered."
        )

    def test_rate_limits(
        self, client: OpenAI, assistant: Assistant, model: ScriptedModel, marker: str
    ) -> None:
        model.script(marker, Reply(status=429, error_message="slow down", retry_after=0))
        thread_id, run_id = run_to_end(client, assistant, marker)
        run = client.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
        assert run.status == "failed"
        assert run.last_error is not None
        assert run.last_error.code == "rate_limit_exceeded"
        assert "HTTP 429" in run.last_error.message
        assert "slow down" in run.last_error.message
        assert len(model.requests(marker)) == 4

    def test_a_rejected_prompt_is_not_retried(
        self, client: OpenAI, assistant: Assistant, model: ScriptedModel, marker: str
    ) -> None:
        model.script(marker, Reply(status=400, error_message="bad messages"))
        thread_id, run_id = run_to_end(client, assistant, marker)
        run = client.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
        assert run.status == "failed"
        assert run.last_error is not None
        assert run.last_error.code == "invalid_prompt"
        assert "bad messages" in run.last_error.message
        assert len(model.requests(marker)) == 1

    def test_failure_after_a_tool_round(
        self, client: OpenAI, assistant: Assistant, model: ScriptedModel, marker: str
    ) -> None:
        model.script(marker, Reply(tool_calls=[ToolCall("lookup", "{}")]), Reply(status=500))
        thread_id, run_id = run_to_end(client, assistant, marker)
        run = client.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
        assert run.status == "requires_action"
        call = run.required_action.submit_tool_outputs.tool_calls[0]  # type: ignore[union-attr]
        run = client.beta.threads.runs.submit_tool_outputs_and_poll(
            run_id=run_id,
            thread_id=thread_id,
            tool_outputs=[{"tool_call_id": call.id, "output": "x"}],
        )
        assert run.status == "failed"
        assert run.last_error is not None
        assert run.last_error.code == "server_error"
        assert run.usage is not None
        assert run.usage.completion_tokens > 0  # the first turn counts
        [step] = client.beta.threads.runs.steps.list(run_id, thread_id=thread_id).data
        assert step.status == "completed"  # its outputs were submitted


class TestRunEndsAreLogged:
    """The process that ends a run failed or incomplete logs one line saying which and why."""

    def test_a_failed_run(
        self,
        client: OpenAI,
        assistant: Assistant,
        model: ScriptedModel,
        marker: str,
        work_dir: Path,
    ) -> None:
        model.script(marker, Reply(status=400, error_message=f"bad messages {marker}"))
        _, run_id = run_to_end(client, assistant, marker)
        line = wait_for_log_line(work_dir, f"run {run_id} failed")
        assert "WARNING" in line
        assert f"run {run_id} failed: invalid_prompt: " in line
        assert f"bad messages {marker}" in line

    def test_an_incomplete_run(
        self,
        client: OpenAI,
        assistant: Assistant,
        model: ScriptedModel,
        marker: str,
        work_dir: Path,
    ) -> None:
        thread = client.beta.threads.create(messages=[{"role": "user", "content": marker}])
        model.script(marker, Reply(text="cut", finish_reason="length"))
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id, max_completion_tokens=256
        )
        assert run.status == "incomplete"
        line = wait_for_log_line(work_dir, f"run {run.id} incomplete")
        assert f"run {run.id} incomplete: max_completion_tokens" in line

    def test_a_completed_run_is_not(
        self,
        client: OpenAI,
        assistant: Assistant,
        model: ScriptedModel,
        marker: str,
        work_dir: Path,
    ) -> None:
        model.script(marker, Reply(text="fine"))
        _, run_id = run_to_end(client, assistant, marker)
        logs = "".join(p.read_text(errors="replace") for p in work_dir.glob("*.log"))
        assert f"run {run_id} failed" not in logs
        assert f"run {run_id} incomplete" not in logs

    def test_a_server_error_carries_its_traceback(self, caplog: pytest.LogCaptureFixture) -> None:
        run = Run(
            id="run_x",
            last_error={"code": "server_error", "message": "The server had an error."},
        )
        try:
            raise KeyError("the bug")
        except KeyError as exc:
            cause = exc
        with caplog.at_level(logging.INFO, logger="assistantd.runs.state"):
            state.log_run_end(run, RunStatus.FAILED, cause)
            state.log_run_end(run, RunStatus.COMPLETED)
        [record] = caplog.records
        assert record.levelno == logging.ERROR
        assert record.getMessage() == "run run_x failed: server_error: The server had an error."
        assert record.exc_info is not None
        assert "KeyError: 'the bug'" in caplog.text


@pytest.fixture(scope="module")
def impatient(tuned_server: Callable[..., Tuned], model: ScriptedModel, work_dir: Path) -> OpenAI:
    """Read timeout 2 s (a loaded machine may take a while to send a first token), one retry;
    model `dead` is routed to a port nobody listens on."""
    models_file = work_dir / "models-failures.yaml"
    models_file.write_text(
        f"backends:\n  scripted:\n    base_url: {model.base_url}\n"
        f"  dead:\n    base_url: http://127.0.0.1:{free_port()}/v1\n"
        "models:\n  dead:\n    backend: dead\n"
        "default:\n  backend: scripted\n"
    )
    tuned = tuned_server(
        {
            "ASSISTANTD_MODELS_FILE": str(models_file),
            "ASSISTANTD_MODEL_READ_TIMEOUT_SECONDS": "2",
            "ASSISTANTD_MODEL_CONNECT_TIMEOUT_SECONDS": "1",
            "ASSISTANTD_MODEL_MAX_RETRIES": "1",
        }
    )
    return tuned.client


class TestTimeouts:
    def test_a_backend_that_does_not_answer(
        self, impatient: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        assistant = impatient.beta.assistants.create(model="gpt-4o")
        model.script(marker, Reply(text="too late", delay=6))
        thread_id, run_id = run_to_end(impatient, assistant, marker)
        run = impatient.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
        assert run.status == "failed"
        assert run.last_error is not None
        assert run.last_error.code == "server_error"
        assert "did not answer within 2s" in run.last_error.message
        assert len(model.requests(marker)) == 2  # retried once

    def test_a_backend_that_stalls_mid_answer(
        self, impatient: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        assistant = impatient.beta.assistants.create(model="gpt-4o")
        model.script(marker, Reply(text=["Half an ans"], hang=True))
        thread_id, run_id = run_to_end(impatient, assistant, marker)
        run = impatient.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
        assert run.status == "failed"
        assert run.last_error is not None
        assert "stalled mid-response" in run.last_error.message
        assert len(model.requests(marker)) == 1  # tokens were out: no retry
        [message] = impatient.beta.threads.messages.list(thread_id, run_id=run_id).data
        assert message.status == "incomplete"
        assert message.incomplete_details.reason == "run_failed"  # type: ignore[union-attr]
        assert message.content[0].text.value == "Half an ans"  # type: ignore[union-attr]
        [step] = impatient.beta.threads.runs.steps.list(run_id, thread_id=thread_id).data
        assert step.status == "failed"
        assert step.failed_at is not None
        assert step.last_error is not None
        assert step.last_error.code == "server_error"

    def test_an_unreachable_backend(self, impatient: OpenAI) -> None:
        assistant = impatient.beta.assistants.create(model="dead")
        thread_id, run_id = run_to_end(impatient, assistant, "anyone there?")
        run = impatient.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
        assert run.status == "failed"
        assert run.last_error is not None
        assert run.last_error.code == "server_error"
        assert "Could not connect" in run.last_error.message


@pytest.fixture(scope="module")
def hasty(tuned_server: Callable[..., Tuned]) -> OpenAI:
    """Runs expire 3 s after they start waiting; the reaper looks every 0.2 s."""
    tuned = tuned_server(
        {"ASSISTANTD_RUN_EXPIRY_SECONDS": "3", "ASSISTANTD_REAPER_INTERVAL_SECONDS": "0.2"}
    )
    return tuned.client


class TestExpiry:
    def test_unanswered_tool_calls_expire(
        self, hasty: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        assistant = hasty.beta.assistants.create(model="gpt-4o", tools=[function_tool("lookup")])
        model.script(marker, Reply(tool_calls=[ToolCall("lookup", "{}")]))
        thread_id, run_id = run_to_end(hasty, assistant, marker)
        run = hasty.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
        assert run.status == "requires_action"
        assert run.expires_at is not None
        run = wait_run(hasty, thread_id, run_id, {"expired"}, timeout=10)
        assert run.required_action is None
        assert run.expires_at is None
        assert run.failed_at is None
        assert run.cancelled_at is None
        [step] = hasty.beta.threads.runs.steps.list(run_id, thread_id=thread_id).data
        assert step.status == "expired"
        assert step.expired_at is not None
        call = step.step_details.tool_calls[0]  # type: ignore[union-attr]
        with pytest.raises(BadRequestError) as caught:
            hasty.beta.threads.runs.submit_tool_outputs(
                run_id=run_id,
                thread_id=thread_id,
                tool_outputs=[{"tool_call_id": call.id, "output": "late"}],
            )
        assert "expired" in caught.value.message
        hasty.beta.threads.messages.create(thread_id, role="user", content="unlocked")

    def test_a_run_executing_past_the_deadline_is_not_expired(
        self, hasty: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        assistant = hasty.beta.assistants.create(model="gpt-4o", tools=[function_tool("lookup")])
        model.script(
            marker,
            Reply(tool_calls=[ToolCall("lookup", "{}")]),
            Reply(text="Slow but fine.", delay=4),
        )
        thread_id, run_id = run_to_end(hasty, assistant, marker)
        run = hasty.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
        assert run.status == "requires_action"
        call = run.required_action.submit_tool_outputs.tool_calls[0]  # type: ignore[union-attr]
        run = hasty.beta.threads.runs.submit_tool_outputs_and_poll(
            run_id=run_id,
            thread_id=thread_id,
            tool_outputs=[{"tool_call_id": call.id, "output": "x"}],
        )
        assert run.status == "completed", run.last_error
