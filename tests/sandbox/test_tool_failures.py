"""Hostile code that breaks its kernel fails its own call, not the run: descriptors exhausted,
the kernel killed by a signal, /mnt/data full. The model reads the real reason (a kill is not
called running out of memory), the run or response goes on, and the next call gets a fresh
kernel. Real code, real Docker, through the API."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from openai import OpenAI
from openai.types.beta import Assistant

from assistantd.sandbox.containers import death_reason
from tests.sandbox.conftest import (
    SandboxServer,
    code_call,
    logs_of,
    run_code,
    tool_output,
)
from tests.sandbox.test_responses import AUTO
from tests.support.scripted_model import Reply, ScriptedModel

FRESH = "print('x' in globals())"  # False in a fresh kernel


@pytest.fixture(scope="module")
def sandbox(docker: None, sandbox_servers: Callable[..., SandboxServer]) -> SandboxServer:
    return sandbox_servers()


def gets_a_fresh_kernel(
    client: OpenAI, model: ScriptedModel, assistant: Assistant, thread_id: str
) -> None:
    run, call = run_code(client, model, assistant, thread_id, FRESH)
    assert run.status == "completed", run.last_error
    assert logs_of(call) == "False"


def test_exhausting_file_descriptors_fails_the_call(
    client: OpenAI, model: ScriptedModel, assistant: Assistant
) -> None:
    thread = client.beta.threads.create()
    run_code(client, model, assistant, thread.id, "x = 1")
    code = (
        "import os\n"
        "held = []\n"
        "try:\n"
        "    while True:\n"
        "        held.append(os.open('/dev/null', os.O_RDONLY))\n"
        "except OSError as exc:\n"
        "    print('stopped:', exc.strerror)"
    )
    run, call = run_code(client, model, assistant, thread.id, code)
    assert run.status == "completed", run.last_error
    told = tool_output(model, call["id"])
    assert "Too many open files" in told, told
    assert "The session was restarted" in told
    assert "out of memory" not in told
    gets_a_fresh_kernel(client, model, assistant, thread.id)


def test_a_kernel_killed_by_a_signal_is_not_out_of_memory(
    client: OpenAI, model: ScriptedModel, assistant: Assistant
) -> None:
    thread = client.beta.threads.create()
    run_code(client, model, assistant, thread.id, "x = 1")
    run, call = run_code(
        client, model, assistant, thread.id, "import os, signal\nos.kill(os.getpid(), 9)"
    )
    assert run.status == "completed", run.last_error
    told = tool_output(model, call["id"])
    assert "killed by SIGKILL (signal 9)" in told, told
    assert "ran out of memory" not in told
    gets_a_fresh_kernel(client, model, assistant, thread.id)


def test_a_killed_kernel_fails_the_response_call(
    sandbox: SandboxServer, model: ScriptedModel, marker: str
) -> None:
    """Through the Responses API: the call item is `failed`, the response completes, and the
    chain's next call runs in a fresh kernel of the same container."""
    client = sandbox.client
    model.script(
        marker,
        code_call("x = 1\nimport os\nos.kill(os.getpid(), 15)"),
        Reply(text="It died."),
    )
    first = client.responses.create(
        model="gpt-4o",
        input=f"run it {marker}",
        tools=[AUTO],  # type: ignore[list-item]
    )
    assert first.status == "completed", first.error
    call = first.output[0]
    assert call.type == "code_interpreter_call"
    assert call.status == "failed"
    assert first.output_text == "It died."
    told = [
        m["content"]
        for body in model.requests()
        for m in body["messages"]
        if m.get("role") == "tool" and marker in str(body["messages"])
    ]
    assert any("killed by SIGTERM (signal 15)" in t for t in told), told
    model.script(f"{marker} again", code_call(FRESH), Reply(text="ok"))
    second = client.responses.create(
        model="gpt-4o",
        input=f"again {marker} again",
        tools=[AUTO],  # type: ignore[list-item]
        previous_response_id=first.id,
        include=["code_interpreter_call.outputs"],
    )
    assert second.status == "completed", second.error
    again = second.output[0]
    assert again.type == "code_interpreter_call"
    assert again.status == "completed"
    assert again.container_id == call.container_id
    assert [o.logs for o in again.outputs or [] if o.type == "logs"] == ["False"]


def test_a_full_mnt_data_fails_the_call_that_needs_room(
    client: OpenAI, model: ScriptedModel, assistant: Assistant
) -> None:
    thread = client.beta.threads.create()
    fill = (
        "x = 1\n"
        "try:\n"
        "    with open('/mnt/data/fill.bin', 'wb') as f:\n"
        "        while True:\n"
        "            f.write(b'\\0' * (1024 * 1024))\n"
        "except OSError as exc:\n"
        "    print(exc.strerror)"
    )
    run, call = run_code(client, model, assistant, thread.id, fill)
    assert run.status == "completed", run.last_error
    assert logs_of(call) == "No space left on device"
    # A file attached now has no room in /mnt/data.
    upload = client.files.create(file=("data.csv", b"a,b\n1,2\n" * 1000), purpose="assistants")
    attach = [{"file_id": upload.id, "tools": [{"type": "code_interpreter"}]}]
    run, call = run_code(client, model, assistant, thread.id, "print('ran')", attachments=attach)
    assert run.status == "completed", run.last_error
    told = tool_output(model, call["id"])
    assert "No space left on device" in told, told
    assert "the code did not run" in told
    # The next call's kernel is fresh, with room, and has the file.
    run, call = run_code(
        client, model, assistant, thread.id, "import os\nprint('x' in globals(), os.listdir())"
    )
    assert run.status == "completed", run.last_error
    assert logs_of(call) == "False ['data.csv']"


def test_death_reasons() -> None:
    """Out of memory only on Docker's word; exit code 137 alone is a SIGKILL by any hand."""
    oom = {"OOMKilled": True, "ExitCode": 137}
    assert death_reason(oom, 512) == "it ran out of memory (the limit is 512 MiB)"
    killed = death_reason({"OOMKilled": False, "ExitCode": 137}, 512)
    assert killed == "it was killed by SIGKILL (signal 9), not by running out of memory"
    assert death_reason({"ExitCode": 3}, 512) == "the Python process exited with status 3"
