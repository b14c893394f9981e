"""Without Docker, or without the sandbox image, a code interpreter call fails (the model reads
why, the step shows it) and the run goes on; a run that never calls it does not notice, and
everything else keeps working."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.sandbox.conftest import SandboxServer, code_call, docker_problem
from tests.support.scripted_model import Reply, ScriptedModel
from tests.support.server import wait_for_log_line


def check(server: SandboxServer, model: ScriptedModel, marker: str, expected: str) -> str:
    """The failed call's message (what the model read), checked to contain `expected`."""
    client = server.client
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[{"type": "code_interpreter"}])

    # A run that lists the code interpreter but never calls it completes.
    thread = client.beta.threads.create(messages=[{"role": "user", "content": f"{marker} chat"}])
    model.script(f"{marker} chat", Reply(text="no code needed"))
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=20
    )
    assert run.status == "completed", run.last_error

    # A run that calls it: the call fails, the model reads why and answers, the run completes.
    thread = client.beta.threads.create(messages=[{"role": "user", "content": marker}])
    model.script(marker, code_call("print(1)"), Reply(text="could not run code"))
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=20
    )
    assert run.status == "completed", run.last_error
    reply = client.beta.threads.messages.list(thread.id, run_id=run.id).data[0]
    assert reply.content[0].text.value == "could not run code"  # type: ignore[union-attr]
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc").data
    [call] = steps[0].step_details.tool_calls  # type: ignore[union-attr]
    assert call.type == "code_interpreter"
    [logs] = call.code_interpreter.outputs
    assert logs.type == "logs"
    assert logs.logs.startswith("Error: The code interpreter is unavailable: ")
    assert expected in logs.logs
    # ... and that is what the model read as the call's result
    read = [m for r in model.requests(marker) for m in r["messages"] if m["role"] == "tool"]
    assert [m["content"] for m in read] == [logs.logs]

    # The same server still answers runs that do not need it.
    plain = client.beta.assistants.create(model="gpt-4o")
    client.beta.threads.messages.create(thread.id, role="user", content=f"{marker} plain")
    model.script(f"{marker} plain", Reply(text="fine without code"))
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=plain.id, poll_interval_ms=20
    )
    assert run.status == "completed", run.last_error
    assert client.beta.threads.messages.list(thread.id).data[0].content[0].text.value == (
        "fine without code"
    )
    return logs.logs


def test_docker_unreachable(
    sandbox_servers: Callable[..., SandboxServer], model: ScriptedModel
) -> None:
    server = sandbox_servers(
        {"ASSISTANTD_SANDBOX_DOCKER_HOST": "unix:///nonexistent/assistantd/docker.sock"}
    )
    failure = check(
        server,
        model,
        "ci-no-docker",
        "cannot reach the Docker engine at unix:///nonexistent/assistantd/docker.sock",
    )
    assert "install and start a Docker engine" in failure  # and what to do

    # In the Responses API the code_interpreter_call fails, and the response completes.
    model.script("ci-no-docker responses", code_call("print(2)"), Reply(text="no sandbox"))
    response = server.client.responses.create(
        model="gpt-4o",
        input="ci-no-docker responses",
        tools=[{"type": "code_interpreter", "container": {"type": "auto"}}],
        include=["code_interpreter_call.outputs"],
    )
    assert response.status == "completed", response.error
    call = response.output[0]
    assert call.type == "code_interpreter_call"
    assert call.status == "failed"
    assert call.code == "print(2)"
    assert call.outputs is not None
    assert call.outputs[0].type == "logs"
    assert call.outputs[0].logs == failure
    assert response.output_text == "no sandbox"

    # The process that runs code said so when it started, and its /readyz says so.
    line = wait_for_log_line(server.work_dir, "code interpreter not ready: cannot reach")
    assert "/nonexistent/assistantd/docker.sock" in line
    sandbox = httpx.get(f"{server.api.url}/readyz").json()["code_interpreter"]
    if server.worker is None:
        assert sandbox["status"] == "unavailable"
        assert "install and start a Docker engine" in sandbox["detail"]
    else:
        assert sandbox["status"] == "not_checked"


def test_image_missing(sandbox_servers: Callable[..., SandboxServer], model: ScriptedModel) -> None:
    problem = docker_problem()
    if problem is not None and "no sandbox image" not in problem:
        pytest.skip(problem)
    server = sandbox_servers({"ASSISTANTD_SANDBOX_IMAGE": "assistantd-sandbox:no-such-tag"})
    check(
        server,
        model,
        "ci-no-image",
        "the sandbox image 'assistantd-sandbox:no-such-tag' is not on the Docker engine at "
        "unix:///var/run/docker.sock: build it with `make sandbox-image` or "
        "`assistantd sandbox build`",
    )
