"""The OpenAI Agents SDK (`openai-agents`) running an agent with its hosted tools,
`CodeInterpreterTool` and `FileSearchTool`, against assistantd's Responses API: the tools run
here (a real sandbox, our vector search), and the SDK sees OpenAI's items."""

from __future__ import annotations

import json

import pytest
from agents import (
    Agent,
    CodeInterpreterTool,
    FileSearchTool,
    OpenAIResponsesModel,
    Runner,
    set_tracing_disabled,
)
from openai import AsyncOpenAI

from tests.sandbox.conftest import SANDBOX_KEY, SandboxServer, code_call
from tests.sandbox.test_quickstart import SINEWAVE
from tests.support.scripted_model import Reply, ScriptedModel, ToolCall

set_tracing_disabled(True)  # no trace export (it would go to api.openai.com)

NOTES = "Tide table. High tide at the north pier is at 06:12 and 18:40 today."


def harbour_agent(client: AsyncOpenAI, store_id: str) -> Agent:
    return Agent(
        name="harbour",
        instructions="Search the notes, then plot.",
        model=OpenAIResponsesModel(model="gpt-4o", openai_client=client),
        tools=[
            FileSearchTool(vector_store_ids=[store_id], include_search_results=True),
            CodeInterpreterTool(
                tool_config={"type": "code_interpreter", "container": {"type": "auto"}}
            ),
        ],
    )


@pytest.mark.asyncio
async def test_an_agent_with_the_code_interpreter_and_file_search(
    sandbox: SandboxServer, model: ScriptedModel, marker: str
) -> None:
    client = sandbox.client
    store = client.vector_stores.create(name="harbour")
    notes = client.files.create(file=("tides.txt", NOTES.encode()), purpose="assistants")
    done = client.vector_stores.files.create_and_poll(
        vector_store_id=store.id, file_id=notes.id, poll_interval_ms=50
    )
    assert done.status == "completed", done.last_error
    answer = "High tide is at 06:12 【0†tides.txt】; the sine wave is drawn."
    model.script(
        marker,
        Reply(tool_calls=[ToolCall("file_search", json.dumps({"queries": ["high tide"]}))]),
        code_call(SINEWAVE),
        Reply(text=answer),
    )
    async with AsyncOpenAI(
        api_key=SANDBOX_KEY, base_url=f"{sandbox.api.url}/v1", max_retries=0
    ) as async_client:
        result = await Runner.run(
            harbour_agent(async_client, store.id), f"When is high tide? Plot a sine. {marker}"
        )

    assert result.final_output == answer
    raws = [item.raw_item for item in result.new_items]
    kinds = [getattr(raw, "type", None) for raw in raws]
    assert kinds == ["file_search_call", "code_interpreter_call", "message"]
    search, code, message = raws
    assert search.status == "completed"  # type: ignore[union-attr]
    assert search.queries == ["high tide"]  # type: ignore[union-attr]
    [hit] = search.results  # type: ignore[union-attr]
    assert (hit.file_id, hit.filename) == (notes.id, "tides.txt")
    assert "06:12" in (hit.text or "")
    assert code.status == "completed"  # type: ignore[union-attr]
    assert code.code == SINEWAVE  # type: ignore[union-attr]
    assert code.container_id.startswith("cntr_")  # type: ignore[union-attr]
    # the passage found, and the figure the code drew (a file of the container the SDK was
    # told about) are cited
    figure, citation = message.content[0].annotations  # type: ignore[union-attr]
    assert (citation.type, citation.file_id) == ("file_citation", notes.id)
    files = client.containers.files.list(code.container_id).data  # type: ignore[union-attr]
    assert [f.path.endswith(".png") for f in files] == [True]
    assert (figure.type, figure.file_id) == ("container_file_citation", files[0].id)
    # the model read the search results, then the code's outcome, before answering
    last = model.requests(marker)[-1]["messages"]
    tool_replies = [m["content"] for m in last if m["role"] == "tool"]
    assert len(tool_replies) == 2
    assert "06:12" in tool_replies[0]
