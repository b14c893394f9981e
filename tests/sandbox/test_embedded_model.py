"""The offline demo: the embedded SmolLM2 (no backend configured) on the Azure quickstart's
sinewave prompt, with the code interpreter forced, really runs code in the sandbox and answers
with an image. The assertions are about what happened (a call, its code, an image file), never
about the quality of the code a 135M model writes.

The server has the settings `make run` has, so this is the prompt a new user's first run sends,
decoded greedily (temperature 0). What the model writes depends on every token of that prompt: if
a change to the code interpreter's description or the bundled template turns the code it writes
into code that draws nothing, adjust the example call in `backends/data/chatml-tools.jinja`.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PIL import Image

from assistantd.settings import Settings
from tests.backends.test_local import needs_model
from tests.sandbox.conftest import SANDBOX_ENV, SandboxServer
from tests.sandbox.test_quickstart import INSTRUCTIONS

pytestmark = needs_model


@pytest.fixture(scope="module")
def offline(docker: None, sandbox_servers: object) -> SandboxServer:
    assert callable(sandbox_servers)
    defaults = {
        key: str(Settings.model_fields[key.removeprefix("ASSISTANTD_").lower()].default)
        for key in SANDBOX_ENV
    }
    server: SandboxServer = sandbox_servers(
        {
            **defaults,  # the sandbox limits a user has, which the model reads in the tool
            "ASSISTANTD_MODEL_BASE_URL": "",  # no backend: the embedded model serves every name
            "ASSISTANTD_LOCAL_MODEL_PARALLEL": "1",
            "ASSISTANTD_SANDBOX_POOL_SIZE": "0",
        }
    )
    return server


def test_forced_code_interpreter_draws_the_sinewave(offline: SandboxServer, tmp_path: Path) -> None:
    client = offline.azure
    assistant = client.beta.assistants.create(
        name="Data Visualization",
        instructions=INSTRUCTIONS,
        tools=[{"type": "code_interpreter"}],
        model="gpt-4-1106-preview",
    )
    thread = client.beta.threads.create()
    client.beta.threads.messages.create(
        thread_id=thread.id, role="user", content="Create a visualization of a sinewave"
    )
    run = client.beta.threads.runs.create(
        thread_id=thread.id,
        assistant_id=assistant.id,
        tool_choice={"type": "code_interpreter"},
        temperature=0,
    )
    # The quickstart's own loop: it stops only on these statuses.
    status = run.status
    deadline = time.monotonic() + 240
    while status not in ["completed", "cancelled", "expired", "failed"]:
        assert time.monotonic() < deadline, f"run stuck in {status}"
        time.sleep(0.2)
        run = client.beta.threads.runs.retrieve(thread_id=thread.id, run_id=run.id)
        status = run.status
    assert status == "completed", (run.last_error, run.incomplete_details)

    steps = client.beta.threads.runs.steps.list(thread_id=thread.id, run_id=run.id, order="asc")
    assert steps.data[0].type == "tool_calls"  # the first thing the model did was the call
    call = steps.data[0].step_details.tool_calls[0]  # type: ignore[union-attr]
    assert call.type == "code_interpreter"
    assert "matplotlib" in call.code_interpreter.input
    outputs = call.code_interpreter.outputs
    assert [o.type for o in outputs] == ["image"], outputs

    # As the quickstart reads it: the newest message leads with the image.
    messages = client.beta.threads.messages.list(thread_id=thread.id)
    answer = messages.data[0]
    assert answer.role == "assistant"
    assert answer.content[0].type == "image_file"
    file_id = answer.content[0].image_file.file_id
    assert file_id == outputs[0].image.file_id  # type: ignore[union-attr]
    path = tmp_path / "sinewave.png"
    client.files.content(file_id).write_to_file(path)
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size[0] > 300
