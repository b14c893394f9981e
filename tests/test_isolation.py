"""Tenancy: a project never sees, changes or uses another project's objects.

`client` owns everything created here; `other_client` is another project. For every resource and
every route, the other project gets the same 404 an unknown id gets, its lists never show foreign
objects, references to foreign objects are refused as unknown, and the owner's objects are
unchanged afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from openai import BadRequestError, NotFoundError, OpenAI
from openai.types.beta import Assistant, Thread
from openai.types.beta.threads import Message, Run
from openai.types.beta.threads.runs import RunStep
from openai.types.file_object import FileObject
from openai.types.upload import Upload
from openai.types.vector_store import VectorStore
from openai.types.vector_stores import VectorStoreFileBatch


@dataclass
class Owned:
    """Objects of every kind, in `client`'s project."""

    assistant: Assistant
    thread: Thread
    message: Message
    file: FileObject
    upload: Upload
    part_id: str
    run: Run
    step: RunStep


@pytest.fixture
def owned(client: OpenAI) -> Owned:
    file = client.files.create(file=("secret.txt", b"top secret\n"), purpose="assistants")
    assistant = client.beta.assistants.create(
        model="m",
        name="mine",
        tool_resources={"code_interpreter": {"file_ids": [file.id]}},
        metadata={"owner": "client"},
    )
    thread = client.beta.threads.create(metadata={"owner": "client"})
    message = client.beta.threads.messages.create(
        thread.id, role="user", content="hello", metadata={"owner": "client"}
    )
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=25
    )
    assert run.status == "completed", run.last_error
    step = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data[0]
    upload = client.uploads.create(
        bytes=3, filename="u.txt", mime_type="text/plain", purpose="assistants"
    )
    part = client.uploads.parts.create(upload.id, data=b"abc")
    return Owned(assistant, thread, message, file, upload, part.id, run, step)


@dataclass
class OwnedStore:
    """A vector store of `client`'s project, with a file attached and a batch."""

    store: VectorStore
    file: FileObject
    batch: VectorStoreFileBatch


@pytest.fixture
def owned_store(client: OpenAI) -> OwnedStore:
    file = client.files.create(file=("facts.txt", b"The sky is blue.\n"), purpose="assistants")
    other = client.files.create(file=("more.txt", b"Grass is green.\n"), purpose="assistants")
    store = client.vector_stores.create(name="mine", file_ids=[file.id])
    batch = client.vector_stores.file_batches.create(store.id, file_ids=[other.id])
    return OwnedStore(store, file, batch)


def not_found(call: Callable[[], object], kind: str, object_id: str) -> None:
    with pytest.raises(NotFoundError) as err:
        call()
    assert err.value.status_code == 404
    assert err.value.body == {
        "message": f"No {kind} found with id '{object_id}'.",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }


def refused(call: Callable[[], object], object_id: str) -> None:
    """A reference to a foreign object, refused exactly like one to an unknown object."""
    with pytest.raises((BadRequestError, NotFoundError)) as err:
        call()
    assert object_id in err.value.message


def snapshot(client: OpenAI, o: Owned) -> dict[str, Any]:
    """Everything the owner can see of its objects."""
    t = o.thread.id
    return {
        "assistant": client.beta.assistants.retrieve(o.assistant.id).model_dump(),
        "thread": client.beta.threads.retrieve(t).model_dump(),
        "messages": client.beta.threads.messages.list(t, limit=100).model_dump(),
        "file": client.files.retrieve(o.file.id).model_dump(),
        "content": client.files.content(o.file.id).read(),
        "runs": client.beta.threads.runs.list(t).model_dump(),
        "steps": client.beta.threads.runs.steps.list(o.run.id, thread_id=t).model_dump(),
    }


class TestForeignIds:
    def test_assistants(self, other_client: OpenAI, owned: Owned) -> None:
        a = owned.assistant.id
        not_found(lambda: other_client.beta.assistants.retrieve(a), "assistant", a)
        not_found(lambda: other_client.beta.assistants.update(a, name="x"), "assistant", a)
        not_found(lambda: other_client.beta.assistants.delete(a), "assistant", a)

    def test_threads(self, other_client: OpenAI, owned: Owned) -> None:
        t = owned.thread.id
        threads = other_client.beta.threads
        not_found(lambda: threads.retrieve(t), "thread", t)
        not_found(lambda: threads.update(t, metadata={"owner": "other"}), "thread", t)
        not_found(lambda: threads.delete(t), "thread", t)

    def test_messages(self, other_client: OpenAI, owned: Owned) -> None:
        t, m = owned.thread.id, owned.message.id
        messages = other_client.beta.threads.messages
        not_found(lambda: messages.list(t), "thread", t)
        not_found(lambda: messages.create(t, role="user", content="hi"), "thread", t)
        not_found(lambda: messages.retrieve(m, thread_id=t), "thread", t)
        not_found(lambda: messages.update(m, thread_id=t, metadata={}), "thread", t)
        not_found(lambda: messages.delete(m, thread_id=t), "thread", t)
        # the foreign message through a thread of the caller's own
        mine = other_client.beta.threads.create().id
        not_found(lambda: messages.retrieve(m, thread_id=mine), "message", m)
        not_found(lambda: messages.update(m, thread_id=mine, metadata={}), "message", m)
        not_found(lambda: messages.delete(m, thread_id=mine), "message", m)

    def test_runs_and_steps(self, other_client: OpenAI, owned: Owned) -> None:
        t, r, s = owned.thread.id, owned.run.id, owned.step.id
        runs = other_client.beta.threads.runs
        not_found(lambda: runs.list(t), "thread", t)
        not_found(lambda: runs.retrieve(r, thread_id=t), "thread", t)
        not_found(lambda: runs.update(r, thread_id=t, metadata={}), "thread", t)
        not_found(lambda: runs.cancel(r, thread_id=t), "thread", t)
        not_found(lambda: runs.steps.list(r, thread_id=t), "thread", t)
        not_found(lambda: runs.steps.retrieve(s, thread_id=t, run_id=r), "thread", t)
        not_found(lambda: runs.submit_tool_outputs(r, thread_id=t, tool_outputs=[]), "thread", t)
        not_found(lambda: runs.create(t, assistant_id=owned.assistant.id), "thread", t)
        mine = other_client.beta.threads.create().id
        not_found(lambda: runs.retrieve(r, thread_id=mine), "run", r)
        not_found(lambda: runs.steps.list(r, thread_id=mine), "run", r)
        not_found(lambda: runs.cancel(r, thread_id=mine), "run", r)

    def test_files(self, other_client: OpenAI, owned: Owned) -> None:
        f = owned.file.id
        not_found(lambda: other_client.files.retrieve(f), "file", f)
        not_found(lambda: other_client.files.content(f), "file", f)
        not_found(lambda: other_client.files.delete(f), "file", f)

    def test_uploads(self, other_client: OpenAI, owned: Owned) -> None:
        u = owned.upload.id
        uploads = other_client.uploads
        not_found(lambda: uploads.parts.create(u, data=b"x"), "upload", u)
        not_found(lambda: uploads.complete(u, part_ids=[owned.part_id]), "upload", u)
        not_found(lambda: uploads.cancel(u), "upload", u)

    def test_vector_stores(self, other_client: OpenAI, owned_store: OwnedStore) -> None:
        v, f, b = owned_store.store.id, owned_store.file.id, owned_store.batch.id
        stores = other_client.vector_stores
        kind = "vector store"
        not_found(lambda: stores.retrieve(v), kind, v)
        not_found(lambda: stores.update(v, name="stolen"), kind, v)
        not_found(lambda: stores.delete(v), kind, v)
        not_found(lambda: stores.search(v, query="sky"), kind, v)
        not_found(lambda: stores.files.list(v), kind, v)
        not_found(lambda: stores.files.retrieve(f, vector_store_id=v), kind, v)
        not_found(lambda: stores.files.update(f, vector_store_id=v, attributes={}), kind, v)
        not_found(lambda: stores.files.delete(f, vector_store_id=v), kind, v)
        not_found(lambda: stores.files.content(f, vector_store_id=v), kind, v)
        mine = other_client.files.create(file=("t.txt", b"t"), purpose="assistants").id
        not_found(lambda: stores.files.create(v, file_id=mine), kind, v)
        not_found(lambda: stores.file_batches.create(v, file_ids=[mine]), kind, v)
        not_found(lambda: stores.file_batches.retrieve(b, vector_store_id=v), kind, v)
        not_found(lambda: stores.file_batches.cancel(b, vector_store_id=v), kind, v)
        not_found(lambda: stores.file_batches.list_files(b, vector_store_id=v), kind, v)
        # the foreign file and batch through a store of the caller's own
        own = stores.create(name="theirs").id
        not_found(lambda: stores.files.retrieve(f, vector_store_id=own), "file", f)
        not_found(lambda: stores.file_batches.retrieve(b, vector_store_id=own), "file batch", b)

    def test_same_answer_as_unknown_ids(self, other_client: OpenAI, owned: Owned) -> None:
        """Nothing tells a foreign id from one that never existed."""
        unknown = "asst_" + "0" * 28
        with pytest.raises(NotFoundError) as foreign:
            other_client.beta.assistants.retrieve(owned.assistant.id)
        with pytest.raises(NotFoundError) as missing:
            other_client.beta.assistants.retrieve(unknown)
        assert foreign.value.body == {
            **missing.value.body,  # type: ignore[dict-item]
            "message": f"No assistant found with id '{owned.assistant.id}'.",
        }


class TestForeignReferences:
    def test_assistant_tool_resources(self, other_client: OpenAI, owned: Owned) -> None:
        f = owned.file.id
        resources: Any = {"code_interpreter": {"file_ids": [f]}}
        refused(lambda: other_client.beta.assistants.create(model="m", tool_resources=resources), f)
        mine = other_client.beta.assistants.create(model="m").id
        refused(lambda: other_client.beta.assistants.update(mine, tool_resources=resources), f)

    def test_thread_tool_resources(self, other_client: OpenAI, owned: Owned) -> None:
        f = owned.file.id
        resources: Any = {"code_interpreter": {"file_ids": [f]}}
        refused(lambda: other_client.beta.threads.create(tool_resources=resources), f)
        mine = other_client.beta.threads.create().id
        refused(lambda: other_client.beta.threads.update(mine, tool_resources=resources), f)

    def test_message_files(self, other_client: OpenAI, owned: Owned) -> None:
        f = owned.file.id
        mine = other_client.beta.threads.create().id
        messages = other_client.beta.threads.messages
        attachments: Any = [{"file_id": f, "tools": [{"type": "code_interpreter"}]}]
        refused(lambda: messages.create(mine, role="user", content="x", attachments=attachments), f)
        image: Any = [{"type": "image_file", "image_file": {"file_id": f}}]
        refused(lambda: messages.create(mine, role="user", content=image), f)

    def test_vector_store_files(self, other_client: OpenAI, owned_store: OwnedStore) -> None:
        f = owned_store.file.id
        own = other_client.vector_stores.create(name="theirs").id
        refused(lambda: other_client.vector_stores.files.create(own, file_id=f), f)
        refused(lambda: other_client.vector_stores.file_batches.create(own, file_ids=[f]), f)
        refused(lambda: other_client.vector_stores.create(file_ids=[f]), f)

    def test_foreign_vector_store_in_tool_resources(
        self, other_client: OpenAI, owned_store: OwnedStore
    ) -> None:
        v = owned_store.store.id
        resources: Any = {"file_search": {"vector_store_ids": [v]}}
        refused(lambda: other_client.beta.assistants.create(model="m", tool_resources=resources), v)
        refused(lambda: other_client.beta.threads.create(tool_resources=resources), v)
        mine = other_client.beta.assistants.create(model="m").id
        refused(lambda: other_client.beta.assistants.update(mine, tool_resources=resources), v)

    def test_run_with_foreign_assistant(self, other_client: OpenAI, owned: Owned) -> None:
        a = owned.assistant.id
        mine = other_client.beta.threads.create().id
        not_found(
            lambda: other_client.beta.threads.runs.create(mine, assistant_id=a), "assistant", a
        )
        not_found(lambda: other_client.beta.threads.create_and_run(assistant_id=a), "assistant", a)

    def test_upload_with_foreign_parts(self, other_client: OpenAI, owned: Owned) -> None:
        mine = other_client.uploads.create(
            bytes=3, filename="v.txt", mime_type="text/plain", purpose="assistants"
        )
        refused(
            lambda: other_client.uploads.complete(mine.id, part_ids=[owned.part_id]), owned.part_id
        )


class TestLists:
    def test_never_show_foreign_objects(
        self, client: OpenAI, other_client: OpenAI, owned: Owned
    ) -> None:
        theirs_assistant = other_client.beta.assistants.create(model="m")
        theirs_file = other_client.files.create(file=("t.txt", b"t"), purpose="assistants")
        theirs_thread = other_client.beta.threads.create()
        theirs_message = other_client.beta.threads.messages.create(
            theirs_thread.id, role="user", content="theirs"
        )

        assert [a.id for a in other_client.beta.assistants.list()] == [theirs_assistant.id]
        assert [f.id for f in other_client.files.list()] == [theirs_file.id]
        assert [m.id for m in other_client.beta.threads.messages.list(theirs_thread.id)] == [
            theirs_message.id
        ]
        assert [a.id for a in client.beta.assistants.list()] == [owned.assistant.id]
        assert owned.file.id in [f.id for f in client.files.list()]
        assert theirs_file.id not in [f.id for f in client.files.list()]
        for purpose in ("assistants", "assistants_output"):
            assert theirs_file.id not in [f.id for f in client.files.list(purpose=purpose)]

    def test_vector_store_lists(
        self, client: OpenAI, other_client: OpenAI, owned_store: OwnedStore
    ) -> None:
        theirs = other_client.vector_stores.create(name="theirs")
        assert [v.id for v in other_client.vector_stores.list()] == [theirs.id]
        assert [v.id for v in client.vector_stores.list()] == [owned_store.store.id]
        assert other_client.vector_stores.files.list(theirs.id).data == []

    def test_foreign_cursor_shows_nothing_foreign(
        self, client: OpenAI, other_client: OpenAI, owned: Owned
    ) -> None:
        theirs = [other_client.beta.assistants.create(model="m").id for _ in range(3)]
        for order in ("asc", "desc"):
            for after in (owned.assistant.id, None):
                page = other_client.beta.assistants.list(order=order, after=after)  # type: ignore[arg-type]
                assert {a.id for a in page.data} <= set(theirs)
            page = other_client.beta.assistants.list(order=order, before=owned.assistant.id)  # type: ignore[arg-type]
            assert {a.id for a in page.data} <= set(theirs)


def test_foreign_attempts_change_nothing(
    client: OpenAI, other_client: OpenAI, owned: Owned
) -> None:
    before = snapshot(client, owned)
    o = owned
    attempts: list[Callable[[], object]] = [
        lambda: other_client.beta.assistants.update(o.assistant.id, name="stolen"),
        lambda: other_client.beta.assistants.delete(o.assistant.id),
        lambda: other_client.beta.threads.update(o.thread.id, metadata={"owner": "other"}),
        lambda: other_client.beta.threads.messages.create(o.thread.id, role="user", content="x"),
        lambda: other_client.beta.threads.messages.update(
            o.message.id, thread_id=o.thread.id, metadata={"owner": "other"}
        ),
        lambda: other_client.beta.threads.messages.delete(o.message.id, thread_id=o.thread.id),
        lambda: other_client.beta.threads.runs.update(
            o.run.id, thread_id=o.thread.id, metadata={"owner": "other"}
        ),
        lambda: other_client.beta.threads.runs.create(o.thread.id, assistant_id=o.assistant.id),
        lambda: other_client.beta.threads.delete(o.thread.id),
        lambda: other_client.files.delete(o.file.id),
        lambda: other_client.uploads.cancel(o.upload.id),
    ]
    for attempt in attempts:
        with pytest.raises(NotFoundError):
            attempt()
    assert snapshot(client, owned) == before
    # the owner's upload is still pending and completes with its own part
    done = client.uploads.complete(owned.upload.id, part_ids=[owned.part_id])
    assert done.status == "completed"
    assert done.file is not None
    assert client.files.content(done.file.id).read() == b"abc"
