"""Messages through the official clients: create, retrieve, modify, delete, list and paginate."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from openai import AzureOpenAI, BadRequestError, NotFoundError, OpenAI
from openai.types.beta.threads import Message

from tests.messages.seed import Seed
from tests.support.server import LiveServer

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


def texts(messages: list[Message]) -> list[str]:
    return [part.text.value for m in messages for part in m.content if part.type == "text"]


@pytest.fixture
def thread_id(client: OpenAI) -> str:
    return client.beta.threads.create().id


class TestCreate:
    def test_string_content(self, client: OpenAI, thread_id: str) -> None:
        message = client.beta.threads.messages.create(thread_id, role="user", content="Hello")
        assert message.id.startswith("msg_")
        assert sent_keys(message) == MESSAGE_KEYS
        raw = message.model_dump(exclude_unset=True)
        assert raw == {
            "id": message.id,
            "object": "thread.message",
            "created_at": message.created_at,
            "thread_id": thread_id,
            "status": "completed",
            "incomplete_details": None,
            "completed_at": message.created_at,
            "incomplete_at": None,
            "role": "user",
            "content": [{"type": "text", "text": {"value": "Hello", "annotations": []}}],
            "assistant_id": None,
            "run_id": None,
            "attachments": [],
            "metadata": {},
        }

    def test_parts(self, client: OpenAI, thread_id: str, seed: Seed) -> None:
        image = seed.file()
        message = client.beta.threads.messages.create(
            thread_id,
            role="assistant",
            content=[
                {"type": "text", "text": "Look:"},
                {"type": "image_file", "image_file": {"file_id": image}},
                {
                    "type": "image_url",
                    "image_url": {"url": "https://example.com/cat.png", "detail": "high"},
                },
                {"type": "text", "text": ""},
            ],
            metadata={"source": "test"},
        )
        assert message.role == "assistant"
        assert message.assistant_id is None
        assert message.metadata == {"source": "test"}
        assert [part.model_dump(exclude_unset=True) for part in message.content] == [
            {"type": "text", "text": {"value": "Look:", "annotations": []}},
            {"type": "image_file", "image_file": {"file_id": image, "detail": "auto"}},
            {
                "type": "image_url",
                "image_url": {"url": "https://example.com/cat.png", "detail": "high"},
            },
            {"type": "text", "text": {"value": "", "annotations": []}},
        ]
        assert client.beta.threads.messages.retrieve(message.id, thread_id=thread_id) == message

    def test_attachments(self, client: OpenAI, thread_id: str, seed: Seed) -> None:
        a, b = seed.file("a.csv"), seed.file("b.pdf")
        message = client.beta.threads.messages.create(
            thread_id,
            role="user",
            content="see files",
            attachments=[
                {"file_id": a, "tools": [{"type": "code_interpreter"}]},
                {"file_id": b, "tools": [{"type": "file_search"}, {"type": "code_interpreter"}]},
            ],
        )
        assert message.attachments is not None
        assert [att.model_dump(exclude_unset=True) for att in message.attachments] == [
            {"file_id": a, "tools": [{"type": "code_interpreter"}]},
            {"file_id": b, "tools": [{"type": "file_search"}, {"type": "code_interpreter"}]},
        ]

    def test_azure(self, azure_client: AzureOpenAI, client: OpenAI, thread_id: str) -> None:
        message = azure_client.beta.threads.messages.create(
            thread_id, role="user", content=[{"type": "text", "text": "hi from Azure"}]
        )
        assert sent_keys(message) == MESSAGE_KEYS
        assert client.beta.threads.messages.retrieve(message.id, thread_id=thread_id) == message


class TestCreateErrors:
    def bad(self, client: OpenAI, thread_id: str, **body: Any) -> BadRequestError:
        with pytest.raises(BadRequestError) as err:
            client.beta.threads.messages.create(thread_id, **body)
        return err.value

    def test_empty_content_array(self, client: OpenAI, thread_id: str) -> None:
        err = self.bad(client, thread_id, role="user", content=[])
        assert err.param == "content"
        assert "empty array" in err.message

    def test_missing_content(self, client: OpenAI, thread_id: str) -> None:
        err = self.bad(client, thread_id, role="user", content=None)
        assert err.param == "content"

    def test_missing_role(self, server: LiveServer, api_key: str, thread_id: str) -> None:
        response = httpx.post(
            f"{server.url}/v1/threads/{thread_id}/messages",
            headers={"Authorization": f"Bearer {api_key}"},
            json={"content": "hi"},
        )
        assert response.status_code == 400
        assert response.json()["error"]["message"] == "Missing required parameter: 'role'."

    def test_bad_role(self, client: OpenAI, thread_id: str) -> None:
        err = self.bad(client, thread_id, role="system", content="hi")
        assert err.param == "role"

    @pytest.mark.parametrize(
        ("part", "param"),
        [
            ({"type": "video", "video": {}}, "content[1].type"),
            ({"type": "text"}, "content[1]"),
            (
                {"type": "text", "text": "a", "image_url": {"url": "https://x.y/z.png"}},
                "content[1]",
            ),
            ({"type": "image_file", "image_file": {}}, "content[1].image_file.file_id"),
            (
                {"type": "image_file", "image_file": {"file_id": "file-x", "detail": "max"}},
                "content[1].image_file.detail",
            ),
            ({"type": "image_url", "image_url": {"url": "not a url"}}, "content[1].image_url.url"),
            ({"type": "text", "text": 5}, "content[1].text"),
        ],
    )
    def test_bad_part(
        self, client: OpenAI, thread_id: str, part: dict[str, Any], param: str
    ) -> None:
        content = [{"type": "text", "text": "fine"}, part]
        err = self.bad(client, thread_id, role="user", content=content)
        assert err.param == param, err.message
        assert f"'{param}'" in err.message

    def test_unknown_field_in_part(self, client: OpenAI, thread_id: str) -> None:
        content = [{"type": "text", "text": "a", "annotations": []}]
        err = self.bad(client, thread_id, role="user", content=content)
        assert err.message.endswith("Unrecognized request argument supplied: annotations")

    def test_unknown_image_file(self, client: OpenAI, thread_id: str) -> None:
        for file_id in ("file-missing", "msg_notafile"):
            content = [{"type": "image_file", "image_file": {"file_id": file_id}}]
            err = self.bad(client, thread_id, role="user", content=content)
            assert err.param == "content[0].image_file.file_id"
            assert file_id in err.message

    def test_attachment_without_tools(self, client: OpenAI, thread_id: str, seed: Seed) -> None:
        file_id = seed.file()
        message = client.beta.threads.messages.create(
            thread_id, role="user", content="x", attachments=[{"file_id": file_id, "tools": []}]
        )
        assert message.attachments is not None
        assert message.attachments[0].tools == []

    def test_file_of_another_project(
        self, client: OpenAI, other_client: OpenAI, seed: Seed
    ) -> None:
        file_id = seed.file()
        other_thread = other_client.beta.threads.create()
        with pytest.raises(BadRequestError) as err:
            other_client.beta.threads.messages.create(
                other_thread.id,
                role="user",
                content="x",
                attachments=[{"file_id": file_id, "tools": [{"type": "file_search"}]}],
            )
        assert err.value.param == "attachments[0].file_id"

    @pytest.mark.parametrize(
        ("attachment", "param"),
        [
            ({"file_id": "file-missing", "tools": [{"type": "file_search"}]}, "attachments[0]"),
            ({"tools": [{"type": "file_search"}]}, "attachments[0].file_id"),
            ({"file_id": "file-x"}, "attachments[0].tools"),
            ({"file_id": "file-x", "tools": [{"type": "function"}]}, "attachments[0].tools[0]"),
        ],
    )
    def test_bad_attachment(
        self, client: OpenAI, thread_id: str, attachment: dict[str, Any], param: str
    ) -> None:
        err = self.bad(client, thread_id, role="user", content="x", attachments=[attachment])
        assert err.param is not None
        assert err.param.startswith(param), err.message

    def test_unknown_field(self, client: OpenAI, thread_id: str) -> None:
        err = self.bad(client, thread_id, role="user", content="x", extra_body={"file_ids": []})
        assert err.message.endswith("Unrecognized request argument supplied: file_ids")

    @pytest.mark.parametrize(
        "metadata",
        [{f"k{i}": "v" for i in range(17)}, {"k" * 65: "v"}, {"k": "v" * 513}],
    )
    def test_metadata_limits(
        self, client: OpenAI, thread_id: str, metadata: dict[str, str]
    ) -> None:
        err = self.bad(client, thread_id, role="user", content="x", metadata=metadata)
        assert err.param == "metadata"

    def test_unknown_thread(self, client: OpenAI, other_client: OpenAI, thread_id: str) -> None:
        with pytest.raises(NotFoundError) as err:
            other_client.beta.threads.messages.create(thread_id, role="user", content="x")
        assert err.value.message.endswith(f"No thread found with id '{thread_id}'.")
        with pytest.raises(BadRequestError) as bad:
            client.beta.threads.messages.create("run_abc", role="user", content="x")
        assert bad.value.param == "thread_id"


class TestRetrieveModifyDelete:
    def test_retrieve(self, client: OpenAI, azure_client: AzureOpenAI, thread_id: str) -> None:
        message = client.beta.threads.messages.create(thread_id, role="user", content="x")
        assert client.beta.threads.messages.retrieve(message.id, thread_id=thread_id) == message
        assert (
            azure_client.beta.threads.messages.retrieve(message.id, thread_id=thread_id) == message
        )

    def test_modify(self, client: OpenAI, azure_client: AzureOpenAI, thread_id: str) -> None:
        message = client.beta.threads.messages.create(
            thread_id, role="user", content="x", metadata={"a": "1"}
        )
        updated = client.beta.threads.messages.update(
            message.id, thread_id=thread_id, metadata={"b": "2"}
        )
        assert updated.metadata == {"b": "2"}
        assert updated.model_dump(exclude={"metadata"}) == message.model_dump(exclude={"metadata"})
        assert client.beta.threads.messages.update(message.id, thread_id=thread_id) == updated
        cleared = azure_client.beta.threads.messages.update(
            message.id, thread_id=thread_id, metadata={}
        )
        assert cleared.metadata == {}
        assert client.beta.threads.messages.retrieve(message.id, thread_id=thread_id) == cleared

    def test_modify_takes_metadata_only(self, client: OpenAI, thread_id: str) -> None:
        message = client.beta.threads.messages.create(thread_id, role="user", content="x")
        with pytest.raises(BadRequestError) as err:
            client.beta.threads.messages.update(
                message.id, thread_id=thread_id, extra_body={"content": "y"}
            )
        assert err.value.message.endswith("Unrecognized request argument supplied: content")
        with pytest.raises(BadRequestError):
            client.beta.threads.messages.update(
                message.id, thread_id=thread_id, metadata={str(i): "v" for i in range(17)}
            )

    def test_delete(self, client: OpenAI, thread_id: str) -> None:
        kept = client.beta.threads.messages.create(thread_id, role="user", content="kept")
        gone = client.beta.threads.messages.create(thread_id, role="user", content="gone")
        deleted = client.beta.threads.messages.delete(gone.id, thread_id=thread_id)
        assert deleted.model_dump(exclude_unset=True) == {
            "id": gone.id,
            "object": "thread.message.deleted",
            "deleted": True,
        }
        with pytest.raises(NotFoundError):
            client.beta.threads.messages.retrieve(gone.id, thread_id=thread_id)
        with pytest.raises(NotFoundError):
            client.beta.threads.messages.delete(gone.id, thread_id=thread_id)
        assert [m.id for m in client.beta.threads.messages.list(thread_id)] == [kept.id]

    def test_delete_azure(self, azure_client: AzureOpenAI, thread_id: str) -> None:
        message = azure_client.beta.threads.messages.create(thread_id, role="user", content="x")
        assert azure_client.beta.threads.messages.delete(message.id, thread_id=thread_id).deleted

    def test_not_found(self, client: OpenAI, other_client: OpenAI, thread_id: str) -> None:
        message = client.beta.threads.messages.create(thread_id, role="user", content="x")
        other_thread = client.beta.threads.create().id
        missing = "msg_" + "0" * 28
        for thread, message_id in ((thread_id, missing), (other_thread, message.id)):
            with pytest.raises(NotFoundError) as err:
                client.beta.threads.messages.retrieve(message_id, thread_id=thread)
            expected = f"Error code: 404 - No message found with id '{message_id}'."
            assert err.value.message == expected
            with pytest.raises(NotFoundError):
                client.beta.threads.messages.update(message_id, thread_id=thread, metadata={})
            with pytest.raises(NotFoundError):
                client.beta.threads.messages.delete(message_id, thread_id=thread)
        with pytest.raises(NotFoundError) as err:
            other_client.beta.threads.messages.retrieve(message.id, thread_id=thread_id)
        assert "No thread found" in err.value.message
        assert client.beta.threads.messages.retrieve(message.id, thread_id=thread_id) == message

    def test_wrong_prefix(self, client: OpenAI, thread_id: str) -> None:
        with pytest.raises(BadRequestError) as err:
            client.beta.threads.messages.retrieve("thread_abc", thread_id=thread_id)
        assert err.value.param == "message_id"
        assert err.value.message.endswith(
            "Invalid 'message_id': 'thread_abc'. Expected an ID that begins with 'msg'."
        )


class TestList:
    @pytest.fixture
    def five(self, client: OpenAI, thread_id: str) -> list[str]:
        return [
            client.beta.threads.messages.create(thread_id, role="user", content=f"m{i}").id
            for i in range(5)
        ]

    def test_default_desc(self, client: OpenAI, thread_id: str, five: list[str]) -> None:
        page = client.beta.threads.messages.list(thread_id)
        assert [m.id for m in page.data] == five[::-1]
        dumped = page.model_dump(exclude_unset=True)
        assert dumped["first_id"] == five[-1]
        assert dumped["last_id"] == five[0]
        assert page.has_more is False
        assert all(sent_keys(m) == MESSAGE_KEYS for m in page.data)

    def test_limit_and_cursors(self, client: OpenAI, thread_id: str, five: list[str]) -> None:
        messages = client.beta.threads.messages
        asc = messages.list(thread_id, order="asc", limit=2)
        assert [m.id for m in asc.data] == five[:2]
        assert asc.has_more is True
        after = messages.list(thread_id, order="asc", limit=2, after=five[1])
        assert [m.id for m in after.data] == five[2:4]
        assert after.has_more is True
        last = messages.list(thread_id, order="asc", limit=2, after=five[3])
        assert [m.id for m in last.data] == five[4:]
        assert last.has_more is False
        before = messages.list(thread_id, order="asc", limit=2, before=five[3])
        assert [m.id for m in before.data] == five[1:3]
        desc_after = messages.list(thread_id, limit=2, after=five[3])
        assert [m.id for m in desc_after.data] == [five[2], five[1]]
        desc_before = messages.list(thread_id, limit=2, before=five[1])
        assert [m.id for m in desc_before.data] == [five[3], five[2]]
        between = messages.list(thread_id, order="asc", after=five[0], before=five[4])
        assert [m.id for m in between.data] == five[1:4]

    def test_empty_page(self, client: OpenAI, thread_id: str) -> None:
        page = client.beta.threads.messages.list(thread_id)
        assert page.model_dump(exclude_unset=True) == {
            "object": "list",
            "data": [],
            "first_id": None,
            "last_id": None,
            "has_more": False,
        }

    @pytest.mark.parametrize("order", ["asc", "desc"])
    def test_auto_pagination(
        self, client: OpenAI, azure_client: AzureOpenAI, thread_id: str, five: list[str], order: Any
    ) -> None:
        expected = five if order == "asc" else five[::-1]
        for sdk in (client, azure_client):
            pages = sdk.beta.threads.messages.list(thread_id, limit=2, order=order)
            assert [m.id for m in pages] == expected

    def test_run_id_filter(self, client: OpenAI, thread_id: str, seed: Seed) -> None:
        client.beta.threads.messages.create(thread_id, role="user", content="question")
        run_a, run_b = "run_" + "a" * 28, "run_" + "b" * 28
        first = seed.run_message(thread_id, run_a, "answer one")
        second = seed.run_message(thread_id, run_a, "answer two")
        seed.run_message(thread_id, run_b, "other run")
        page = client.beta.threads.messages.list(thread_id, run_id=run_a, order="asc")
        assert [m.id for m in page.data] == [first, second]
        assert all(m.run_id == run_a and m.role == "assistant" for m in page.data)
        assert texts(page.data) == ["answer one", "answer two"]
        paged = client.beta.threads.messages.list(thread_id, run_id=run_a, limit=1)
        assert [m.id for m in paged] == [second, first]
        unknown = client.beta.threads.messages.list(thread_id, run_id="run_" + "c" * 28)
        assert unknown.data == []
        assert len(client.beta.threads.messages.list(thread_id).data) == 4

    def test_run_id_wrong_prefix(self, client: OpenAI, thread_id: str) -> None:
        with pytest.raises(BadRequestError) as err:
            client.beta.threads.messages.list(thread_id, run_id="msg_abc")
        assert err.value.param == "run_id"

    @pytest.mark.parametrize(
        "query", [{"limit": 0}, {"limit": 101}, {"order": "up"}, {"limit": "many"}]
    )
    def test_bad_query(self, client: OpenAI, thread_id: str, query: dict[str, Any]) -> None:
        with pytest.raises(BadRequestError):
            client.beta.threads.messages.list(thread_id, extra_query=query)

    def test_scoped_to_thread(self, client: OpenAI, thread_id: str, five: list[str]) -> None:
        other = client.beta.threads.create(messages=[{"role": "user", "content": "elsewhere"}])
        assert texts(client.beta.threads.messages.list(other.id).data) == ["elsewhere"]
        assert [m.id for m in client.beta.threads.messages.list(thread_id)] == five[::-1]

    def test_unknown_thread(self, other_client: OpenAI, thread_id: str) -> None:
        with pytest.raises(NotFoundError):
            other_client.beta.threads.messages.list(thread_id)
