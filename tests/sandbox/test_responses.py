"""The code interpreter in the Responses API: the Azure quickstart's sinewave and dark-mode turns
through `responses.create` with an auto container, explicit containers, container files in and
out, expiry, and the code streamed as the model writes it. Real code, real Docker."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from openai import BadRequestError, NotFoundError
from PIL import Image

from tests.sandbox.conftest import SandboxServer, code_call
from tests.sandbox.test_quickstart import DARKMODE, INSTRUCTIONS, SINEWAVE
from tests.support.scripted_model import Reply, ScriptedModel

AUTO = {"type": "code_interpreter", "container": {"type": "auto"}}
OUTPUTS = ["code_interpreter_call.outputs"]


def png_of(url: str) -> Image.Image:
    assert url.startswith("data:image/png;base64,")
    image = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    image.load()
    return image


def test_the_quickstart_through_responses(
    sandbox: SandboxServer, model: ScriptedModel, marker: str, tmp_path: Path
) -> None:
    client = sandbox.client
    model.script(
        f"sinewave {marker}",
        code_call(SINEWAVE),
        Reply(text="Here is the sine wave."),
    )
    first = client.responses.create(
        model="gpt-4o",
        instructions=INSTRUCTIONS,
        input=f"Create a visualization of a sinewave {marker}",
        tools=[AUTO],  # type: ignore[list-item]
        include=OUTPUTS,  # type: ignore[list-item]
    )
    assert first.status == "completed", first.error
    call, message = first.output
    assert call.type == "code_interpreter_call"
    assert call.id.startswith("ci_")
    assert call.status == "completed"
    assert call.code == SINEWAVE
    container_id = call.container_id
    assert container_id.startswith("cntr_")
    [figure] = [o for o in call.outputs or [] if o.type == "image"]
    width, height = png_of(figure.url).size  # type: ignore[union-attr]
    assert width > height > 100  # the 10 x 5 inch figure
    assert message.type == "message"
    assert first.output_text == "Here is the sine wave."
    # the figure is one of the container's files, downloadable, and PIL opens it
    files = client.containers.files.list(container_id).data
    [png] = [f for f in files if f.path.endswith(".png")]
    assert png.source == "assistant"
    content = client.containers.files.content.retrieve(png.id, container_id=container_id)
    (tmp_path / "sine.png").write_bytes(content.read())
    image = Image.open(tmp_path / "sine.png")
    image.load()
    assert image.size == (width, height)
    # the message cites the figure's container file, as OpenAI does (at index 0: no link shows
    # an image), also in the stream's annotation event
    [citation] = message.content[0].annotations  # type: ignore[union-attr]
    assert citation.type == "container_file_citation"
    assert (citation.file_id, citation.container_id) == (png.id, container_id)
    assert citation.filename == png.path.rsplit("/", 1)[-1]
    assert (citation.start_index, citation.end_index) == (0, 0)

    # the dark-mode turn continues the chain in the same container: x and y are still there
    model.script(f"dark mode {marker}", code_call(DARKMODE), Reply(text="Dark mode it is."))
    second = client.responses.create(
        model="gpt-4o",
        previous_response_id=first.id,
        input=f"Show me the code you used, then redo it in dark mode {marker}",
        tools=[AUTO],  # type: ignore[list-item]
        include=OUTPUTS,  # type: ignore[list-item]
    )
    assert second.status == "completed", second.error
    dark_call = second.output[0]
    assert dark_call.type == "code_interpreter_call"
    assert dark_call.container_id == container_id
    logs = [o for o in dark_call.outputs or [] if o.type == "logs"]
    assert not any("NameError" in o.logs for o in logs)  # type: ignore[union-attr]
    [dark] = [o for o in dark_call.outputs or [] if o.type == "image"]
    assert png_of(dark.url).getpixel((5, 5))[:3] == (0, 0, 0)  # type: ignore[union-attr]
    # without include, outputs are not shown
    assert client.responses.retrieve(second.id).output[0].outputs is None  # type: ignore[union-attr]


def test_an_explicit_container_keeps_state_and_files(
    sandbox: SandboxServer, model: ScriptedModel, marker: str
) -> None:
    client = sandbox.client
    uploaded = client.files.create(file=("numbers.csv", b"n\n1\n2\n3\n"), purpose="user_data")
    container = client.containers.create(name="work", file_ids=[uploaded.id])
    tool = {"type": "code_interpreter", "container": container.id}
    code = (
        "import pandas as pd\n"
        "total = pd.read_csv('/mnt/data/numbers.csv')['n'].sum()\n"
        "open('/mnt/data/total.txt', 'w').write(str(total))\n"
        "print(total)"
    )
    model.script(f"sum {marker}", code_call(code), Reply(text="Saved sandbox:/mnt/data/total.txt"))
    first = client.responses.create(model="gpt-4o", input=f"sum {marker}", tools=[tool])  # type: ignore[list-item]
    assert first.status == "completed", first.error
    call, message = first.output
    assert call.container_id == container.id  # type: ignore[union-attr]
    # the written file is a container file, cited in the answer
    [citation] = message.content[0].annotations  # type: ignore[union-attr]
    assert citation.type == "container_file_citation"
    assert citation.container_id == container.id
    assert citation.filename == "total.txt"
    text = first.output_text
    assert text[citation.start_index : citation.end_index] == "sandbox:/mnt/data/total.txt"
    cited = client.containers.files.retrieve(citation.file_id, container_id=container.id)
    assert cited.path == "/mnt/data/total.txt"
    assert cited.source == "assistant"
    saved = client.containers.files.content.retrieve(cited.id, container_id=container.id)
    assert saved.read() == b"6"
    # a later response in the same container sees the variable
    model.script(f"again {marker}", code_call("print(total * 2)"), Reply(text="12"))
    second = client.responses.create(model="gpt-4o", input=f"again {marker}", tools=[tool])  # type: ignore[list-item]
    sent = model.requests(f"again {marker}")[-1]
    output = next(m for m in sent["messages"] if m["role"] == "tool")["content"]
    assert "12" in output
    assert second.output[0].container_id == container.id  # type: ignore[union-attr]


def test_an_uploaded_container_file_is_in_the_sandbox(
    sandbox: SandboxServer, model: ScriptedModel, marker: str
) -> None:
    client = sandbox.client
    container = client.containers.create(name="uploads")
    client.containers.files.create(container.id, file=("hello.txt", b"hello " + marker.encode()))
    model.script(marker, code_call("print(open('/mnt/data/hello.txt').read())"), Reply(text="ok"))
    response = client.responses.create(
        model="gpt-4o",
        input=marker,
        tools=[{"type": "code_interpreter", "container": container.id}],  # type: ignore[list-item]
        include=OUTPUTS,  # type: ignore[list-item]
    )
    [logs] = [o for o in response.output[0].outputs or [] if o.type == "logs"]  # type: ignore[union-attr]
    assert f"hello {marker}" in logs.logs  # type: ignore[union-attr]


def test_an_expired_or_foreign_container(sandbox: SandboxServer, marker: str) -> None:
    client = sandbox.client
    with pytest.raises(NotFoundError) as err:
        client.responses.create(
            model="gpt-4o",
            input=marker,
            tools=[{"type": "code_interpreter", "container": "cntr_nope"}],  # type: ignore[list-item]
        )
    assert err.value.body["message"] == "Container with id 'cntr_nope' not found."  # type: ignore[index]
    container = client.containers.create(
        name="short", expires_after={"anchor": "last_active_at", "minutes": 1}
    )
    sandbox_sql(sandbox, "UPDATE containers SET expires_at = 1 WHERE id = :id", id=container.id)
    with pytest.raises(BadRequestError) as err:
        client.responses.create(
            model="gpt-4o",
            input=marker,
            tools=[{"type": "code_interpreter", "container": container.id}],  # type: ignore[list-item]
        )
    assert err.value.body["message"] == "Container is expired."  # type: ignore[index]


def test_the_code_streams_as_the_model_writes_it(
    sandbox: SandboxServer, model: ScriptedModel, marker: str
) -> None:
    client = sandbox.client
    code = "print('streamed ' + 'code')\n" * 3
    model.script(marker, code_call(code), Reply(text="done"))
    with client.responses.stream(model="gpt-4o", input=marker, tools=[AUTO]) as stream:  # type: ignore[list-item]
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    deltas = [e.delta for e in events if e.type == "response.code_interpreter_call_code.delta"]  # type: ignore[union-attr]
    assert len(deltas) > 1
    assert "".join(deltas) == code
    order = [
        "response.code_interpreter_call.in_progress",
        "response.code_interpreter_call_code.delta",
        "response.code_interpreter_call_code.done",
        "response.code_interpreter_call.interpreting",
        "response.code_interpreter_call.completed",
    ]
    firsts = [kinds.index(kind) for kind in order]
    assert firsts == sorted(firsts)
    assert final.output[0].code == code  # type: ignore[union-attr]


def sandbox_sql(sandbox: SandboxServer, query: str, **params: object) -> None:
    from sqlalchemy import create_engine, text

    url = sandbox.env["ASSISTANTD_DATABASE_URL"].replace("sqlite+aiosqlite", "sqlite")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(query), params)
    finally:
        engine.dispose()


def test_assistants_steps_stream_the_code_too(
    sandbox: SandboxServer, model: ScriptedModel, marker: str
) -> None:
    """The same streaming on the Assistants side: the step's `code_interpreter.input` grows in
    deltas while the model writes, and is not sent twice."""
    client = sandbox.client
    code = "x = 1\n" * 20
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[{"type": "code_interpreter"}])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": marker}])
    model.script(marker, code_call(code), Reply(text="done"))
    inputs: list[str] = []
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
        for event in stream:
            if event.event == "thread.run.step.delta":
                details = event.data.delta.step_details
                for call in getattr(details, "tool_calls", None) or []:
                    if call.type == "code_interpreter" and call.code_interpreter:
                        if call.code_interpreter.input:
                            inputs.append(call.code_interpreter.input)
        stream.until_done()
    assert len(inputs) > 1
    assert "".join(inputs) == code


def test_a_figure_cited_in_a_conversation_stays_out_of_the_assistants_view(
    sandbox: SandboxServer, model: ScriptedModel, marker: str
) -> None:
    client = sandbox.client
    conversation = client.conversations.create()
    model.script(f"plot {marker}", code_call(SINEWAVE), Reply(text="Plotted."))
    response = client.responses.create(
        model="gpt-4o",
        conversation=conversation.id,
        input=f"plot {marker}",
        tools=[AUTO],  # type: ignore[list-item]
    )
    assert response.status == "completed", response.error
    kinds = [a.type for a in response.output[-1].content[0].annotations]  # type: ignore[union-attr]
    assert kinds == ["container_file_citation"]
    # the same message read as a thread's: its image part, and no annotation the Assistants API
    # has no type for
    [answer] = [
        m for m in client.beta.threads.messages.list(conversation.id).data if m.role == "assistant"
    ]
    text = next(part for part in answer.content if part.type == "text")
    assert text.text.value == "Plotted."
    assert text.text.annotations == []
