"""The Azure OpenAI Assistants quickstart, end to end: a sinewave, its code, a darkmode version.

Driven exactly as the walkthrough does it (AzureOpenAI client, api_version 2024-08-01-preview),
with the scripted model standing in for gpt-4 and real code running in a real container.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from openai import AzureOpenAI
from PIL import Image

from tests.sandbox.conftest import FUNCTION, SandboxServer, code_call
from tests.support.scripted_model import Reply, ScriptedModel

INSTRUCTIONS = (
    "You are a helpful AI assistant who makes interesting visualizations based on data."
    "You have access to a sandboxed environment for writing and testing code."
    "When you are asked to create a visualization you should follow these steps:"
    "1. Write the code."
    "2. Anytime you write new code display a preview of the code to show your work."
    "3. Run the code to confirm that it runs."
    "4. If the code is successful display the visualization."
    "5. If the code is unsuccessful display the error message and try to revise the code and "
    "rerun going through the steps from above again."
)
SINEWAVE = """import numpy as np
import matplotlib.pyplot as plt

x = np.linspace(0, 4 * np.pi, 1000)
y = np.sin(x)

plt.figure(figsize=(10, 5))
plt.plot(x, y, label="sin(x)")
plt.title("Sine Wave")
plt.xlabel("x")
plt.ylabel("sin(x)")
plt.grid(True)
plt.legend()
plt.show()
"""
# Uses x and y from the first run: the session kept them.
DARKMODE = """plt.style.use("dark_background")
plt.figure(figsize=(10, 5))
plt.plot(x, y, color="cyan", label="sin(x)")
plt.title("Sine Wave (dark mode)")
plt.xlabel("x")
plt.ylabel("sin(x)")
plt.grid(True, color="gray")
plt.legend()
plt.show()
"""


def run_and_wait(client: AzureOpenAI, thread_id: str, assistant_id: str) -> str:
    """The quickstart's loop: create a run, poll its status until it is terminal."""
    run = client.beta.threads.runs.create(thread_id=thread_id, assistant_id=assistant_id)
    status = run.status
    deadline = time.monotonic() + 60
    while status not in ["completed", "cancelled", "expired", "failed"]:
        assert time.monotonic() < deadline, f"run stuck in {status}"
        time.sleep(0.05)
        run = client.beta.threads.runs.retrieve(thread_id=thread_id, run_id=run.id)
        status = run.status
    assert status == "completed", run.last_error
    return run.id


def latest_image(client: AzureOpenAI, thread_id: str, path: Path) -> tuple[str, Image.Image]:
    messages = client.beta.threads.messages.list(thread_id=thread_id)
    data = json.loads(messages.model_dump_json(indent=2))
    image_file_id: str = data["data"][0]["content"][0]["image_file"]["file_id"]
    content = client.files.content(image_file_id)
    content.write_to_file(path)
    image = Image.open(path)
    image.load()
    return image_file_id, image


def test_quickstart_walkthrough(
    docker: None, sandbox: SandboxServer, model: ScriptedModel, tmp_path: Path
) -> None:
    client = sandbox.azure
    assistant = client.beta.assistants.create(
        name="Data Visualization",
        instructions=INSTRUCTIONS,
        tools=[{"type": "code_interpreter"}],
        model="gpt-4-1106-preview",
    )
    assert [t.type for t in assistant.tools] == ["code_interpreter"]
    thread = client.beta.threads.create()

    # Turn 1: a sinewave.
    model.script(
        "Create a visualization of a sinewave",
        code_call(SINEWAVE),
        Reply(text="Here is the visualization of a sine wave: the wave from 0 to 4π."),
    )
    client.beta.threads.messages.create(
        thread_id=thread.id, role="user", content="Create a visualization of a sinewave"
    )
    first_run = run_and_wait(client, thread.id, assistant.id)
    first_id, first = latest_image(client, thread.id, tmp_path / "sinewave.png")
    assert first.format == "PNG"
    assert first.size[0] > 300
    assert first.size[1] > 150

    messages = client.beta.threads.messages.list(thread_id=thread.id)
    answer = messages.data[0]
    assert answer.role == "assistant"
    assert answer.run_id == first_run
    assert [part.type for part in answer.content] == ["image_file", "text"]
    assert answer.content[1].text.value.startswith("Here is the visualization of a sine wave")
    assert [m.role for m in messages.data] == ["assistant", "user"]
    assert client.files.retrieve(first_id).purpose == "assistants_output"

    steps = client.beta.threads.runs.steps.list(thread_id=thread.id, run_id=first_run)
    calls = [s for s in steps.data if s.type == "tool_calls"]
    assert len(calls) == 1
    call = calls[0].step_details.tool_calls[0]
    assert call.type == "code_interpreter"
    assert call.code_interpreter.input == SINEWAVE
    assert [o.type for o in call.code_interpreter.outputs] == ["image"]
    assert call.code_interpreter.outputs[0].image.file_id == first_id

    # The model saw a `python` function that describes the sandbox.
    request = model.requests("Create a visualization of a sinewave")[0]
    (tool,) = request["tools"]
    assert tool["function"]["name"] == FUNCTION
    assert "/mnt/data" in tool["function"]["description"]
    assert request["messages"][0]["role"] == "system"

    # Turn 2: the code.
    model.script(
        "Show me the code you used to generate the sinewave",
        Reply(text=f"Here is the code I used:\n\n```python\n{SINEWAVE}```"),
    )
    client.beta.threads.messages.create(
        thread_id=thread.id,
        role="user",
        content="Show me the code you used to generate the sinewave",
    )
    run_and_wait(client, thread.id, assistant.id)
    messages = client.beta.threads.messages.list(thread_id=thread.id)
    assert messages.data[0].content[0].type == "text"
    assert "plt.plot(x, y" in messages.data[0].content[0].text.value

    # Turn 3: darkmode, reusing the session's x and y.
    darkmode_request = (
        "I prefer visualizations in darkmode can you change the colors to make a darkmode "
        "version of this visualization."
    )
    model.script(
        "I prefer visualizations in darkmode",
        code_call(DARKMODE),
        Reply(text="Here is the dark mode version of the sine wave."),
    )
    client.beta.threads.messages.create(thread_id=thread.id, role="user", content=darkmode_request)
    run_and_wait(client, thread.id, assistant.id)
    second_id, second = latest_image(client, thread.id, tmp_path / "dark_sine.png")
    assert second.format == "PNG"
    assert second_id != first_id
    assert (tmp_path / "dark_sine.png").read_bytes() != (tmp_path / "sinewave.png").read_bytes()
    # Dark mode: the corner of the figure is dark, where the first one is white.
    assert sum(first.convert("RGB").getpixel((2, 2))) > 600
    assert sum(second.convert("RGB").getpixel((2, 2))) < 150

    messages = client.beta.threads.messages.list(thread_id=thread.id, order="asc")
    assert [m.role for m in messages.data] == ["user", "assistant"] * 3
    images = [
        p.image_file.file_id for m in messages.data for p in m.content if p.type == "image_file"
    ]
    assert images == [first_id, second_id]
