"""The Azure OpenAI Assistants quickstart's first calls, as written there, against this server.

Only `azure_endpoint` and the key differ from the quickstart. The model name is an Azure
deployment name. The code interpreter's own output (the sine-wave image) needs the sandbox and is
covered with the run tests; here the image is uploaded, then downloaded the quickstart's way.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from openai import AzureOpenAI
from openai.types.beta.threads import Run

from tests.support.server import LiveServer

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

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6300010000050001a5f645400000000049454e44ae426082"
)


@pytest.fixture
def quickstart_client(server: LiveServer, api_key: str) -> Iterator[AzureOpenAI]:
    client = AzureOpenAI(
        api_key=api_key,
        api_version="2024-08-01-preview",
        azure_endpoint=server.url,
    )
    with client:
        yield client


def test_first_calls(quickstart_client: AzureOpenAI, tmp_path: Path) -> None:
    client = quickstart_client

    # Create an assistant
    assistant = client.beta.assistants.create(
        name="Data Visualization",
        instructions=INSTRUCTIONS,
        tools=[{"type": "code_interpreter"}],
        model="gpt-4-1106-preview",  # the deployment name
    )
    shown = json.loads(assistant.model_dump_json(indent=2))
    assert shown["id"].startswith("asst_")
    assert shown["object"] == "assistant"
    assert shown["name"] == "Data Visualization"
    assert shown["instructions"] == INSTRUCTIONS
    assert shown["model"] == "gpt-4-1106-preview"
    assert shown["tools"] == [{"type": "code_interpreter"}]
    assert shown["metadata"] == {}
    assert shown["description"] is None
    assert isinstance(shown["created_at"], int)
    for key in ("tool_resources", "temperature", "top_p", "response_format"):
        assert key in shown

    # Create a thread
    thread = client.beta.threads.create()
    assert repr(thread).startswith(f"Thread(id='{thread.id}', created_at=")
    assert thread.metadata == {}
    assert thread.object == "thread"

    # Add a user question to the thread
    message = client.beta.threads.messages.create(
        thread_id=thread.id, role="user", content="Create a visualization of a sinewave"
    )

    # List thread messages
    thread_messages = client.beta.threads.messages.list(thread.id)
    listed = json.loads(thread_messages.model_dump_json(indent=2))
    assert listed["object"] == "list"
    assert listed["first_id"] == listed["last_id"] == message.id
    assert listed["has_more"] is False
    [item] = listed["data"]
    assert item == {
        "id": message.id,
        "assistant_id": None,
        "attachments": [],
        "completed_at": item["completed_at"],
        "content": [
            {
                "text": {"annotations": [], "value": "Create a visualization of a sinewave"},
                "type": "text",
            }
        ],
        "created_at": message.created_at,
        "incomplete_at": None,
        "incomplete_details": None,
        "metadata": {},
        "object": "thread.message",
        "role": "user",
        "run_id": None,
        "status": "completed",
        "thread_id": thread.id,
    }

    # Run the thread, then retrieve the run's status
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    run = client.beta.threads.runs.retrieve(thread_id=thread.id, run_id=run.id)
    assert isinstance(run, Run)
    assert run.assistant_id == assistant.id
    assert run.instructions == INSTRUCTIONS
    assert run.status in {
        "queued",
        "in_progress",
        "requires_action",
        "cancelling",
        "cancelled",
        "failed",
        "completed",
        "incomplete",
        "expired",
    }
    json.loads(run.model_dump_json(indent=2))

    # Download a file
    image_file_id = client.files.create(file=("sinewave.png", PNG), purpose="assistants").id
    content = client.files.content(image_file_id)
    content.write_to_file(tmp_path / "sinewave.png")
    assert (tmp_path / "sinewave.png").read_bytes() == PNG


def test_annotation_snippet(server: LiveServer, api_key: str) -> None:
    """The quickstart's annotation loop, on a message without annotations (2024-05-01-preview)."""
    with AzureOpenAI(
        api_key=api_key, api_version="2024-05-01-preview", azure_endpoint=server.url
    ) as client:
        thread = client.beta.threads.create()
        created = client.beta.threads.messages.create(
            thread_id=thread.id, role="user", content="Plain text."
        )
        message = client.beta.threads.messages.retrieve(thread_id=thread.id, message_id=created.id)
        part = message.content[0]
        assert part.type == "text"
        message_content = part.text
        citations: list[str] = []
        for index, annotation in enumerate(message_content.annotations):
            message_content.value = message_content.value.replace(annotation.text, f" [{index}]")
            citations.append(str(index))
        message_content.value += "\n" + "\n".join(citations)
        assert message_content.value == "Plain text.\n"
