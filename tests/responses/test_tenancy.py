"""Tenancy of the Responses and Conversations routes (another project's key sees nothing), and
the same flows through Azure's paths: `/openai/v1` (plain `OpenAI` client, bearer or `api-key`,
any `api-version` ignored) and `/openai?api-version=` (`AzureOpenAI`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from openai import AzureOpenAI, BadRequestError, DefaultHttpxClient, NotFoundError, OpenAI

from tests.responses.conftest import wait_response
from tests.support.scripted_model import Reply, ScriptedModel, ToolCall
from tests.support.server import LiveServer

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def not_found_body(message: str) -> dict[str, Any]:
    return {"message": message, "type": "invalid_request_error", "param": None, "code": None}


@dataclass
class Owned:
    """What one project made: a conversation with items, and responses."""

    conversation_id: str
    item_id: str
    response_id: str  # completed, on the conversation
    call_id: str  # a function call of `response_id`
    background_id: str  # a finished background response
    plain_id: str  # a stored response without a conversation


@pytest.fixture
def owned(client: OpenAI, model: ScriptedModel, marker: str) -> Owned:
    conversation = client.conversations.create(
        metadata={"secret": "yes"}, items=[{"role": "user", "content": f"{marker} secret"}]
    )
    [item] = client.conversations.items.list(conversation.id).data
    model.script(
        marker,
        Reply(tool_calls=[ToolCall("get_weather", '{"city": "Oslo"}')]),
        Reply(text="owner answer"),
    )
    response = client.responses.create(
        model="gpt-4o", conversation=conversation.id, input=marker, tools=[WEATHER]
    )
    assert response.status == "completed"
    [call] = response.output
    assert call.type == "function_call"
    background = client.responses.create(model="gpt-4o", input=f"{marker} bg", background=True)
    assert wait_response(client, background.id).status == "completed"
    plain = client.responses.create(model="gpt-4o", input=f"{marker} plain")
    return Owned(
        conversation_id=conversation.id,
        item_id=item.id,
        response_id=response.id,
        call_id=call.call_id,
        background_id=background.id,
        plain_id=plain.id,
    )


def _routes(o: Owned) -> list[tuple[str, Callable[[OpenAI], Any], str]]:
    resp = f"Response with id '{o.response_id}' not found."
    conv = f"Conversation with id '{o.conversation_id}' not found."
    item = f"Item with id '{o.item_id}' not found."
    return [
        ("retrieve response", lambda c: c.responses.retrieve(o.response_id), resp),
        (
            "retrieve response, stream",
            lambda c: list(c.responses.retrieve(o.background_id, stream=True)),
            f"Response with id '{o.background_id}' not found.",
        ),
        ("input items", lambda c: c.responses.input_items.list(o.response_id), resp),
        (
            "cancel",
            lambda c: c.responses.cancel(o.background_id),
            f"Response with id '{o.background_id}' not found.",
        ),
        ("delete response", lambda c: c.responses.delete(o.response_id), resp),
        ("retrieve conversation", lambda c: c.conversations.retrieve(o.conversation_id), conv),
        (
            "update conversation",
            lambda c: c.conversations.update(o.conversation_id, metadata={"x": "y"}),
            conv,
        ),
        ("delete conversation", lambda c: c.conversations.delete(o.conversation_id), conv),
        ("list items", lambda c: c.conversations.items.list(o.conversation_id), conv),
        (
            "add items",
            lambda c: c.conversations.items.create(
                o.conversation_id, items=[{"role": "user", "content": "intruder"}]
            ),
            conv,
        ),
        (
            "retrieve item",
            lambda c: c.conversations.items.retrieve(o.item_id, conversation_id=o.conversation_id),
            conv,
        ),
        (
            "delete item",
            lambda c: c.conversations.items.delete(o.item_id, conversation_id=o.conversation_id),
            conv,
        ),
        (
            "response on the conversation",
            lambda c: c.responses.create(model="gpt-4o", conversation=o.conversation_id, input="x"),
            conv,
        ),
        (
            "response on the conversation, object form",
            lambda c: c.responses.create(
                model="gpt-4o", conversation={"id": o.conversation_id}, input="x"
            ),
            conv,
        ),
        (
            "response on the conversation, streamed",
            lambda c: c.responses.create(
                model="gpt-4o", conversation=o.conversation_id, input="x", stream=True
            ),
            conv,
        ),
        (
            "reference to an item",
            lambda c: c.responses.create(
                model="gpt-4o", input=[{"type": "item_reference", "id": o.item_id}]
            ),
            item,
        ),
        (
            "count tokens on the conversation",
            lambda c: c.responses.input_tokens.count(
                model="gpt-4o", conversation=o.conversation_id, input="x"
            ),
            conv,
        ),
        (
            "the conversation as a thread",
            lambda c: c.beta.threads.retrieve(o.conversation_id),
            "",  # the Assistants API's own wording
        ),
    ]


CALLS = [name for name, _, _ in _routes(Owned("", "", "", "", "", ""))]


class TestAnotherProject:
    @pytest.mark.parametrize("name", CALLS)
    def test_every_route_is_404(
        self, client: OpenAI, other_client: OpenAI, owned: Owned, name: str
    ) -> None:
        [(_, call, message)] = [c for c in _routes(owned) if c[0] == name]
        with pytest.raises(NotFoundError) as exc:
            call(other_client)
        if message:
            assert exc.value.body == not_found_body(message)
        # and the owner still has everything
        assert client.conversations.retrieve(owned.conversation_id).metadata == {"secret": "yes"}
        items = client.conversations.items.list(owned.conversation_id, order="asc").data
        assert [item.type for item in items] == ["message", "message", "function_call"]
        assert items[0].id == owned.item_id
        assert client.responses.retrieve(owned.response_id).status == "completed"
        assert client.responses.retrieve(owned.background_id).status == "completed"

    def test_previous_response_of_another_project(self, other_client: OpenAI, owned: Owned) -> None:
        for call in (
            lambda: other_client.responses.create(
                model="gpt-4o", previous_response_id=owned.plain_id, input="x"
            ),
            lambda: other_client.responses.input_tokens.count(
                model="gpt-4o", previous_response_id=owned.plain_id, input="x"
            ),
        ):
            with pytest.raises(BadRequestError) as exc:
                call()
            assert exc.value.body == {
                "message": f"Previous response with id '{owned.plain_id}' not found.",
                "type": "invalid_request_error",
                "param": "previous_response_id",
                "code": "previous_response_not_found",
            }

    def test_a_call_of_another_project_cannot_be_answered(
        self, other_client: OpenAI, owned: Owned
    ) -> None:
        mine = other_client.conversations.create()
        with pytest.raises(BadRequestError) as exc:
            other_client.responses.create(
                model="gpt-4o",
                conversation=mine.id,
                input=[{"type": "function_call_output", "call_id": owned.call_id, "output": "x"}],
            )
        assert exc.value.body["param"] == "input"  # type: ignore[index]
        assert exc.value.body["message"] == (  # type: ignore[index]
            f"No tool call found for function call output with call_id {owned.call_id}."
        )

    def test_lists_never_leak(
        self, other_client: OpenAI, owned: Owned, model: ScriptedModel, marker: str
    ) -> None:
        probe = f"probe-{marker[3:]}"  # not matched by the owner's rule for `marker`
        mine = other_client.conversations.create(items=[{"role": "user", "content": "mine"}])
        # cursors naming the other project's items page nothing of theirs
        for order in ("asc", "desc"):
            page = other_client.conversations.items.list(mine.id, order=order, after=owned.item_id)  # type: ignore[arg-type]
            assert all(item.id != owned.item_id for item in page.data)
        everything = list(other_client.conversations.items.list(mine.id, order="asc"))
        assert len(everything) == 1
        response = other_client.responses.create(model="gpt-4o", conversation=mine.id, input=probe)
        assert response.output_text == f"Echo: {probe}"
        [seen] = model.requests(probe)
        assert marker not in str(seen["messages"])
        inputs = list(other_client.responses.input_items.list(response.id))
        assert owned.item_id not in {item.id for item in inputs}
        assert len(list(other_client.conversations.items.list(mine.id))) == 3


# --- Azure ---------------------------------------------------------------------------------


def _drop_bearer(request: Any) -> None:
    del request.headers["Authorization"]


def api_key_only(base_url: str, key: str, **options: Any) -> OpenAI:
    """The `OpenAI` client with `default_headers={"api-key": key}` and no bearer: the SDK
    always sends one, so an event hook takes it off (it carries a wrong key, which would win
    over `api-key` if it were left)."""
    return OpenAI(
        base_url=base_url,
        api_key="sk-not-this-one",
        default_headers={"api-key": key},
        http_client=DefaultHttpxClient(event_hooks={"request": [_drop_bearer]}),
        max_retries=0,
        **options,
    )


@pytest.fixture
def v1_clients(server: LiveServer, api_key: str) -> Iterator[dict[str, OpenAI]]:
    """Clients of `client`'s project on Azure's `/openai/v1` path, each way Azure users
    authenticate and configure them."""
    base = f"{server.url}/openai/v1"
    clients = {
        "bearer": OpenAI(base_url=base, api_key=api_key, max_retries=0),
        "api-key header": api_key_only(base, api_key),
        "api-version query": OpenAI(
            base_url=base,
            api_key=api_key,
            default_query={"api-version": "preview"},
            max_retries=0,
        ),
        "AzureOpenAI preview": AzureOpenAI(
            base_url=f"{base}/", api_key=api_key, api_version="preview", max_retries=0
        ),
    }
    yield clients
    for c in clients.values():
        c.close()


V1_WAYS = ["bearer", "api-key header", "api-version query", "AzureOpenAI preview"]


class TestAzureV1:
    @pytest.mark.parametrize("way", V1_WAYS)
    def test_responses(
        self,
        v1_clients: dict[str, OpenAI],
        client: OpenAI,
        model: ScriptedModel,
        marker: str,
        way: str,
    ) -> None:
        azure = v1_clients[way]
        model.script(marker, Reply(text="from azure"))
        response = azure.responses.create(model="gpt-4o", input=marker)
        assert response.status == "completed"
        assert response.output_text == "from azure"
        assert azure.responses.retrieve(response.id).output_text == "from azure"
        # the same project as the OpenAI path
        assert client.responses.retrieve(response.id).id == response.id
        [given] = azure.responses.input_items.list(response.id).data
        assert given.type == "message"
        chained = azure.responses.create(
            model="gpt-4o", previous_response_id=response.id, input="and then?"
        )
        assert chained.previous_response_id == response.id
        with azure.responses.stream(model="gpt-4o", input=f"{marker} streamed") as stream:
            final = stream.get_final_response()
        assert final.output_text == "from azure"
        deleted = azure.responses.delete(response.id)
        assert deleted is None
        with pytest.raises(NotFoundError):
            azure.responses.retrieve(response.id)

    @pytest.mark.parametrize("way", V1_WAYS)
    def test_conversations(
        self,
        v1_clients: dict[str, OpenAI],
        client: OpenAI,
        model: ScriptedModel,
        marker: str,
        way: str,
    ) -> None:
        azure = v1_clients[way]
        conversation = azure.conversations.create(
            metadata={"via": way}, items=[{"role": "user", "content": f"{marker} first"}]
        )
        assert azure.conversations.retrieve(conversation.id).metadata == {"via": way}
        assert client.conversations.retrieve(conversation.id).id == conversation.id
        azure.conversations.update(conversation.id, metadata={"via": "updated"})
        added = azure.conversations.items.create(
            conversation.id, items=[{"role": "user", "content": "second"}]
        )
        model.script(marker, Reply(text="conversation answer"))
        response = azure.responses.create(
            model="gpt-4o", conversation=conversation.id, input="third"
        )
        assert response.output_text == "conversation answer"
        items = list(azure.conversations.items.list(conversation.id, order="asc"))
        assert len(items) == 4
        assert items[1].id == added.data[0].id
        assert items[3].id == response.output[0].id
        got = azure.conversations.items.retrieve(items[0].id, conversation_id=conversation.id)
        assert got.id == items[0].id
        azure.conversations.items.delete(items[0].id, conversation_id=conversation.id)
        assert len(azure.conversations.items.list(conversation.id).data) == 3
        assert azure.conversations.delete(conversation.id).deleted is True
        with pytest.raises(NotFoundError):
            azure.conversations.retrieve(conversation.id)

    def test_another_projects_key_is_404(
        self, server: LiveServer, owned: Owned, new_key: Callable[[], str]
    ) -> None:
        key = new_key()
        with api_key_only(
            f"{server.url}/openai/v1", key, default_query={"api-version": "preview"}
        ) as other:
            for call in (
                lambda: other.responses.retrieve(owned.response_id),
                lambda: other.conversations.retrieve(owned.conversation_id),
                lambda: other.conversations.items.list(owned.conversation_id),
            ):
                with pytest.raises(NotFoundError):
                    call()

    def test_raw_api_key_header_and_api_version(
        self, server: LiveServer, api_key: str, model: ScriptedModel, marker: str
    ) -> None:
        """Without any SDK: `api-key` alone, any `api-version`, or none."""
        model.script(marker, Reply(text="raw"))
        headers = {"api-key": api_key}
        for query in ({}, {"api-version": "preview"}, {"api-version": "2099-01-01-bogus"}):
            created = httpx.post(
                f"{server.url}/openai/v1/responses",
                params=query,
                headers=headers,
                json={"model": "gpt-4o", "input": marker},
                timeout=30,
            )
            assert created.status_code == 200, created.text
            assert created.json()["output"][0]["content"][0]["text"] == "raw"
            conversation = httpx.post(
                f"{server.url}/openai/v1/conversations", params=query, headers=headers, json={}
            )
            assert conversation.status_code == 200, conversation.text
            assert conversation.json()["object"] == "conversation"

    def test_azure_openai_path(
        self, azure_client: AzureOpenAI, model: ScriptedModel, marker: str
    ) -> None:
        """`AzureOpenAI(azure_endpoint=..., api_version=...)`: `/openai/...?api-version=`."""
        model.script(marker, Reply(text="classic azure"))
        conversation = azure_client.conversations.create()
        response = azure_client.responses.create(
            model="gpt-4o", conversation=conversation.id, input=marker
        )
        assert response.output_text == "classic azure"
        assert azure_client.responses.retrieve(response.id).id == response.id
        items = azure_client.conversations.items.list(conversation.id, order="asc").data
        assert [item.type for item in items] == ["message", "message"]
