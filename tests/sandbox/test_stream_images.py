"""The quickstart's streamed sine wave through both SDKs' event handlers: the image a tool made
is announced once (in the message's first delta), so each handler's "image file done" gets its
file id exactly once, and the id names a real file."""

from __future__ import annotations

import secrets

import pytest
from openai import AssistantEventHandler, OpenAI
from openai.types.beta import Assistant
from openai.types.beta.threads import ImageFile, Message
from typing_extensions import override

from tests.sandbox.conftest import SANDBOX_KEY, SandboxServer, code_call
from tests.sandbox.test_quickstart import SINEWAVE
from tests.support.node import node_with_openai, run_node
from tests.support.scripted_model import Reply, ScriptedModel

ANSWER = "Here is the visualization of a sine wave."


class ImageRecorder(AssistantEventHandler):
    def __init__(self) -> None:
        super().__init__()
        self.images_done: list[str] = []
        self.created: list[Message] = []

    @override
    def on_message_created(self, message: Message) -> None:
        self.created.append(message.model_copy(deep=True))  # the SDK fills it in later

    @override
    def on_image_file_done(self, image_file: ImageFile) -> None:
        self.images_done.append(image_file.file_id)


def sine_wave_thread(client: OpenAI, model: ScriptedModel) -> str:
    tag = f"sw-{secrets.token_hex(6)}"
    model.script(tag, code_call(SINEWAVE), Reply(text=ANSWER))
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": f"Create a visualization of a sinewave [{tag}]"}]
    )
    return thread.id


def test_python_handler_gets_each_image_once(
    client: OpenAI, model: ScriptedModel, assistant: Assistant
) -> None:
    thread_id = sine_wave_thread(client, model)
    handler = ImageRecorder()
    with client.beta.threads.runs.stream(
        thread_id=thread_id, assistant_id=assistant.id, event_handler=handler
    ) as stream:
        stream.until_done()
        final_run = stream.get_final_run()
        final_messages = stream.get_final_messages()
    assert final_run.status == "completed", final_run.last_error
    (message,) = final_messages
    assert [part.type for part in message.content] == ["image_file", "text"]
    image_id = message.content[0].image_file.file_id  # type: ignore[union-attr]
    assert image_id.startswith("file-")
    assert handler.images_done == [image_id]
    assert message.content[1].text.value == ANSWER  # type: ignore[union-attr]
    # `created` announces the message empty; its parts come once, in the deltas.
    assert [m.content for m in handler.created] == [[]]
    assert client.files.content(image_id).read().startswith(b"\x89PNG\r\n\x1a\n")
    (stored,) = client.beta.threads.messages.list(thread_id, run_id=final_run.id).data
    assert stored.content == message.content


@pytest.fixture(scope="module")
def node() -> str:
    return node_with_openai()


def test_node_handler_gets_each_image_once(
    node: str, sandbox: SandboxServer, model: ScriptedModel, assistant: Assistant
) -> None:
    client = sandbox.client
    thread_id = sine_wave_thread(client, model)
    seen = run_node(
        node, "images.mjs", f"{sandbox.api.url}/v1", SANDBOX_KEY, assistant.id, thread_id
    )
    assert seen["status"] == "completed"
    ((image_id, kind),) = seen["parts"]
    assert kind == "text"
    assert seen["done"] == [image_id]
    assert client.files.content(image_id).read().startswith(b"\x89PNG\r\n\x1a\n")
