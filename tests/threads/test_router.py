"""Threads through the official clients: create (with messages), retrieve, modify, delete."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from openai import AzureOpenAI, BadRequestError, NotFoundError, OpenAI

from tests.messages.seed import Seed
from tests.support.server import LiveServer

THREAD_KEYS = {"id", "object", "created_at", "tool_resources", "metadata"}
MESSAGE_KEYS = {
    "id",
    "object",
    "created_at",
    "thread_id",
    "status",
    "incomplete_details",
    "completed_at",
    "incomplete_at",
    "role",
    "content",
    "assistant_id",
    "run_id",
    "attachments",
    "metadata",
}


def sent_keys(obj: Any) -> set[str]:
    """The keys the server actually put in the JSON (nulls included)."""
    return set(obj.model_dump(exclude_unset=True))


class TestCreate:
    def test_empty(self, client: OpenAI) -> None:
        thread = client.beta.threads.create()
        assert thread.id.startswith("thread_")
        assert thread.object == "thread"
        assert sent_keys(thread) == THREAD_KEYS
        assert thread.metadata == {}
        assert thread.tool_resources is not None
        assert thread.tool_resources.model_dump(exclude_unset=True) == {}
        assert client.beta.threads.messages.list(thread.id).data == []

    @pytest.mark.parametrize("body", [None, b"", b"{}"])
    def test_body_is_optional(self, server: LiveServer, api_key: str, body: bytes | None) -> None:
        headers = {"Authorization": f"Bearer {api_key}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        response = httpx.post(f"{server.url}/v1/threads", headers=headers, content=body)
        assert response.status_code == 200, response.text
        assert set(response.json()) == THREAD_KEYS

    def test_with_messages_in_order(self, client: OpenAI, seed: Seed) -> None:
        image, doc = seed.file("plot.png"), seed.file("data.csv")
        thread = client.beta.threads.create(
            messages=[
                {"role": "user", "content": "first"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "text", "text": "second"},
                        {"type": "image_file", "image_file": {"file_id": image, "detail": "low"}},
                    ],
                },
                {
                    "role": "user",
                    "content": "third",
                    "attachments": [{"file_id": doc, "tools": [{"type": "code_interpreter"}]}],
                    "metadata": {"n": "3"},
                },
            ],
            metadata={"topic": "plots"},
        )
        assert thread.metadata == {"topic": "plots"}
        listed = client.beta.threads.messages.list(thread.id, order="asc").data
        assert [m.role for m in listed] == ["user", "assistant", "user"]
        assert all(sent_keys(m) == MESSAGE_KEYS for m in listed)
        assert all(m.thread_id == thread.id and m.run_id is None for m in listed)
        first, second, third = listed
        assert first.content[0].type == "text"
        assert first.content[0].text.value == "first"
        assert first.content[0].text.annotations == []
        assert second.content[1].type == "image_file"
        assert second.content[1].image_file.file_id == image
        assert second.content[1].image_file.detail == "low"
        assert third.attachments is not None
        assert third.attachments[0].file_id == doc
        assert third.attachments[0].tools is not None
        assert third.attachments[0].tools[0].type == "code_interpreter"
        assert third.metadata == {"n": "3"}
        assert first.id < second.id < third.id
        assert thread.created_at <= first.created_at

    def test_tool_resources(self, client: OpenAI, seed: Seed) -> None:
        file_id = seed.file()
        thread = client.beta.threads.create(
            tool_resources={"code_interpreter": {"file_ids": [file_id]}}
        )
        assert thread.tool_resources is not None
        assert thread.tool_resources.code_interpreter is not None
        assert thread.tool_resources.code_interpreter.file_ids == [file_id]
        assert client.beta.threads.retrieve(thread.id) == thread

    def test_azure(self, azure_client: AzureOpenAI, client: OpenAI) -> None:
        thread = azure_client.beta.threads.create(
            messages=[{"role": "user", "content": "hello from Azure"}]
        )
        assert sent_keys(thread) == THREAD_KEYS
        assert client.beta.threads.retrieve(thread.id) == thread
        messages = azure_client.beta.threads.messages.list(thread.id).data
        assert [m.content[0].text.value for m in messages if m.content[0].type == "text"] == [
            "hello from Azure"
        ]


class TestCreateErrors:
    def test_unknown_field(self, client: OpenAI) -> None:
        with pytest.raises(BadRequestError) as err:
            client.beta.threads.create(extra_body={"colour": "blue"})
        assert err.value.message.endswith("Unrecognized request argument supplied: colour")

    def test_unknown_field_in_message(self, client: OpenAI) -> None:
        with pytest.raises(BadRequestError) as err:
            client.beta.threads.create(
                messages=[{"role": "user", "content": "hi", "file_ids": []}]  # type: ignore[typeddict-unknown-key]
            )
        assert "Unrecognized request argument supplied: file_ids" in err.value.message

    def test_bad_message_param_is_named(self, client: OpenAI) -> None:
        with pytest.raises(BadRequestError) as err:
            client.beta.threads.create(
                messages=[{"role": "user", "content": "ok"}, {"role": "user", "content": []}]
            )
        assert err.value.param == "messages[1].content"

    def test_unknown_image_file(self, client: OpenAI) -> None:
        content: Any = [{"type": "image_file", "image_file": {"file_id": "file-nope"}}]
        with pytest.raises(BadRequestError) as err:
            client.beta.threads.create(messages=[{"role": "user", "content": content}])
        assert err.value.param == "messages[0].content[0].image_file.file_id"
        assert "file-nope" in err.value.message

    def test_unknown_tool_resource_file(self, client: OpenAI) -> None:
        with pytest.raises(BadRequestError) as err:
            client.beta.threads.create(
                tool_resources={"code_interpreter": {"file_ids": ["file-missing"]}}
            )
        assert "file-missing" in err.value.message

    @pytest.mark.parametrize(
        "metadata",
        [
            {f"k{i}": "v" for i in range(17)},
            {"k" * 65: "v"},
            {"k": "v" * 513},
        ],
    )
    def test_metadata_limits(self, client: OpenAI, metadata: dict[str, str]) -> None:
        with pytest.raises(BadRequestError) as err:
            client.beta.threads.create(metadata=metadata)
        assert err.value.param == "metadata"

    def test_metadata_at_limits(self, client: OpenAI) -> None:
        metadata = {f"{i:02d}" + "k" * 62: "v" * 512 for i in range(16)}
        assert client.beta.threads.create(metadata=metadata).metadata == metadata


class TestRetrieve:
    def test_retrieve(self, client: OpenAI, azure_client: AzureOpenAI) -> None:
        thread = client.beta.threads.create(metadata={"a": "1"})
        assert client.beta.threads.retrieve(thread.id) == thread
        assert azure_client.beta.threads.retrieve(thread.id) == thread

    def test_unknown(self, client: OpenAI) -> None:
        missing = "thread_" + "0" * 28
        with pytest.raises(NotFoundError) as err:
            client.beta.threads.retrieve(missing)
        assert err.value.message == f"Error code: 404 - No thread found with id '{missing}'."
        assert err.value.body == {
            "message": f"No thread found with id '{missing}'.",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }

    def test_other_project(self, client: OpenAI, other_client: OpenAI) -> None:
        thread = client.beta.threads.create()
        with pytest.raises(NotFoundError):
            other_client.beta.threads.retrieve(thread.id)
        with pytest.raises(NotFoundError):
            other_client.beta.threads.update(thread.id, metadata={"x": "y"})
        with pytest.raises(NotFoundError):
            other_client.beta.threads.delete(thread.id)
        assert client.beta.threads.retrieve(thread.id) == thread

    def test_wrong_prefix(self, client: OpenAI) -> None:
        with pytest.raises(BadRequestError) as err:
            client.beta.threads.retrieve("asst_abc")
        assert err.value.param == "thread_id"
        assert err.value.message.endswith(
            "Invalid 'thread_id': 'asst_abc'. Expected an ID that begins with 'thread'."
        )


class TestModify:
    def test_metadata_replaces(self, client: OpenAI, azure_client: AzureOpenAI) -> None:
        thread = client.beta.threads.create(metadata={"a": "1", "b": "2"})
        updated = client.beta.threads.update(thread.id, metadata={"c": "3"})
        assert updated.metadata == {"c": "3"}
        assert updated.id == thread.id
        assert updated.created_at == thread.created_at
        assert sent_keys(updated) == THREAD_KEYS
        again = azure_client.beta.threads.update(thread.id, metadata={})
        assert again.metadata == {}
        assert client.beta.threads.retrieve(thread.id) == again

    def test_nothing_given_changes_nothing(self, client: OpenAI) -> None:
        thread = client.beta.threads.create(metadata={"a": "1"})
        assert client.beta.threads.update(thread.id) == thread

    def test_tool_resources(self, client: OpenAI, seed: Seed) -> None:
        first, second = seed.file(), seed.file()
        thread = client.beta.threads.create(
            tool_resources={"code_interpreter": {"file_ids": [first]}}, metadata={"k": "v"}
        )
        updated = client.beta.threads.update(
            thread.id, tool_resources={"code_interpreter": {"file_ids": [second]}}
        )
        assert updated.tool_resources is not None
        assert updated.tool_resources.code_interpreter is not None
        assert updated.tool_resources.code_interpreter.file_ids == [second]
        assert updated.metadata == {"k": "v"}

    def test_no_inline_vector_stores(self, client: OpenAI) -> None:
        thread = client.beta.threads.create()
        with pytest.raises(BadRequestError) as err:
            client.beta.threads.update(
                thread.id,
                tool_resources={"file_search": {"vector_stores": [{}]}},  # type: ignore[arg-type]
            )
        assert "Unrecognized request argument supplied: vector_stores" in err.value.message

    def test_unknown_field(self, client: OpenAI) -> None:
        thread = client.beta.threads.create()
        with pytest.raises(BadRequestError) as err:
            client.beta.threads.update(thread.id, extra_body={"messages": []})
        assert err.value.message.endswith("Unrecognized request argument supplied: messages")

    def test_metadata_limit(self, client: OpenAI) -> None:
        thread = client.beta.threads.create()
        with pytest.raises(BadRequestError):
            client.beta.threads.update(thread.id, metadata={str(i): "v" for i in range(17)})


class TestDelete:
    def test_delete_cascades(self, client: OpenAI) -> None:
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "bye"}])
        message = client.beta.threads.messages.list(thread.id).data[0]
        deleted = client.beta.threads.delete(thread.id)
        assert deleted.model_dump(exclude_unset=True) == {
            "id": thread.id,
            "object": "thread.deleted",
            "deleted": True,
        }
        with pytest.raises(NotFoundError):
            client.beta.threads.retrieve(thread.id)
        with pytest.raises(NotFoundError):
            client.beta.threads.messages.list(thread.id)
        with pytest.raises(NotFoundError):
            client.beta.threads.messages.retrieve(message.id, thread_id=thread.id)
        with pytest.raises(NotFoundError):
            client.beta.threads.delete(thread.id)

    def test_azure(self, azure_client: AzureOpenAI) -> None:
        thread = azure_client.beta.threads.create()
        assert azure_client.beta.threads.delete(thread.id).deleted is True
        with pytest.raises(NotFoundError):
            azure_client.beta.threads.retrieve(thread.id)

    def test_no_list_endpoint(self, server: LiveServer, api_key: str) -> None:
        response = httpx.get(
            f"{server.url}/v1/threads", headers={"Authorization": f"Bearer {api_key}"}
        )
        assert response.status_code in (404, 405)
        assert set(response.json()["error"]) == {"message", "type", "param", "code"}
