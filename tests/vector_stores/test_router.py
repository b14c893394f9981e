"""Vector stores, files, file batches and search, through the official client."""

from __future__ import annotations

import time
from collections.abc import Callable

import openai
import pytest
from openai import AzureOpenAI, OpenAI

from tests.vector_stores.documents import make_docx, make_pdf, make_pptx

POLL = 50  # ms

NOTES = (
    "Field notes on zebras. Plains zebras live in large herds on the savanna and migrate "
    "with the rains. Each zebra has a unique stripe pattern, much like a fingerprint.\n\n"
    "Field notes on otters. Sea otters float on their backs and use rocks as tools to crack "
    "open shellfish. They hold hands while sleeping so they do not drift apart."
)


def _wait(check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


class TestVectorStores:
    def test_create_retrieve_modify_list_delete(self, client: OpenAI) -> None:
        store = client.vector_stores.create(
            name="docs",
            metadata={"team": "a"},
            expires_after={"anchor": "last_active_at", "days": 2},
        )
        assert store.object == "vector_store"
        assert store.id.startswith("vs_")
        assert store.status == "completed"
        assert store.file_counts.total == 0
        assert store.usage_bytes == 0
        assert store.expires_after is not None
        assert store.expires_after.days == 2
        assert store.expires_at == store.last_active_at + 2 * 86400
        got = client.vector_stores.retrieve(store.id)
        assert got.name == "docs"
        assert got.metadata == {"team": "a"}
        changed = client.vector_stores.update(store.id, name="renamed", expires_after=None)
        assert changed.name == "renamed"
        assert changed.expires_at is None
        other = client.vector_stores.create(name="second")
        listed = list(client.vector_stores.list(limit=1))
        assert [s.id for s in listed] == [other.id, store.id]
        deleted = client.vector_stores.delete(store.id)
        assert deleted.deleted
        assert deleted.object == "vector_store.deleted"
        with pytest.raises(openai.NotFoundError):
            client.vector_stores.retrieve(store.id)

    def test_other_projects_cannot_see_it(self, client: OpenAI, other_client: OpenAI) -> None:
        store = client.vector_stores.create(name="mine")
        with pytest.raises(openai.NotFoundError):
            other_client.vector_stores.retrieve(store.id)
        with pytest.raises(openai.NotFoundError):
            other_client.vector_stores.search(store.id, query="x")

    def test_bad_ids_and_chunking(self, client: OpenAI) -> None:
        with pytest.raises(openai.BadRequestError):
            client.vector_stores.retrieve("asst_nope")
        with pytest.raises(openai.BadRequestError):
            client.vector_stores.create(file_ids=["file-doesnotexist"])
        with pytest.raises(openai.BadRequestError):
            client.vector_stores.create(chunking_strategy={"type": "auto"})


class TestFiles:
    def test_upload_and_poll_then_search_and_content(self, client: OpenAI) -> None:
        store = client.vector_stores.create(name="notes")
        vs_file = client.vector_stores.files.upload_and_poll(
            vector_store_id=store.id,
            file=("notes.txt", NOTES.encode()),
            poll_interval_ms=POLL,
        )
        assert vs_file.status == "completed", vs_file.last_error
        assert vs_file.object == "vector_store.file"
        assert vs_file.usage_bytes > 0
        assert vs_file.chunking_strategy is not None
        assert vs_file.chunking_strategy.type == "static"
        store = client.vector_stores.retrieve(store.id)
        assert store.status == "completed"
        assert store.file_counts.completed == 1
        assert store.file_counts.total == 1
        assert store.usage_bytes == vs_file.usage_bytes

        page = client.vector_stores.search(store.id, query="What do otters use as tools?")
        assert page.data, "no results"
        top = page.data[0]
        assert top.file_id == vs_file.id
        assert top.filename == "notes.txt"
        assert 0 < top.score <= 1
        assert "otters" in top.content[0].text

        content = list(client.vector_stores.files.content(vs_file.id, vector_store_id=store.id))
        assert content[0].type == "text"
        assert content[0].text == NOTES

    def test_static_chunking_and_attach_existing_file(self, client: OpenAI) -> None:
        text = " ".join(f"sentence number {i} mentions topic {i % 7}." for i in range(400))
        uploaded = client.files.create(file=("long.md", text.encode()), purpose="assistants")
        store = client.vector_stores.create(
            file_ids=[uploaded.id],
            chunking_strategy={
                "type": "static",
                "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 20},
            },
        )
        _wait(lambda: client.vector_stores.retrieve(store.id).file_counts.in_progress == 0)
        vs_file = client.vector_stores.files.retrieve(uploaded.id, vector_store_id=store.id)
        assert vs_file.status == "completed"
        assert vs_file.chunking_strategy is not None
        assert vs_file.chunking_strategy.static.max_chunk_size_tokens == 100  # type: ignore[union-attr]
        content = list(client.vector_stores.files.content(uploaded.id, vector_store_id=store.id))
        assert content[0].text == text
        results = client.vector_stores.search(
            store.id, query="sentence number 123", max_num_results=3
        )
        assert len(results.data) == 3
        assert "number 123 " in results.data[0].content[0].text

    def test_unsupported_and_unreadable_files_fail(self, client: OpenAI) -> None:
        store = client.vector_stores.create(name="bad")
        image = client.vector_stores.files.upload_and_poll(
            vector_store_id=store.id,
            file=("photo.png", b"\x89PNG\r\n\x1a\n" + bytes(64)),
            poll_interval_ms=POLL,
        )
        assert image.status == "failed"
        assert image.last_error is not None
        assert image.last_error.code == "unsupported_file"
        broken = client.vector_stores.files.upload_and_poll(
            vector_store_id=store.id,
            file=("broken.pdf", b"%PDF-1.4 not really"),
            poll_interval_ms=POLL,
        )
        assert broken.status == "failed"
        assert broken.last_error is not None
        assert broken.last_error.code == "invalid_file"
        counts = client.vector_stores.retrieve(store.id).file_counts
        assert (counts.failed, counts.completed, counts.total) == (2, 0, 2)
        failed = list(client.vector_stores.files.list(store.id, filter="failed"))
        assert {f.id for f in failed} == {image.id, broken.id}
        assert list(client.vector_stores.files.list(store.id, filter="completed")) == []

    def test_detach_and_delete_file_leave_the_store(self, client: OpenAI) -> None:
        store = client.vector_stores.create(name="x")
        first = client.vector_stores.files.upload_and_poll(
            vector_store_id=store.id, file=("a.txt", b"apples are red"), poll_interval_ms=POLL
        )
        second = client.vector_stores.files.upload_and_poll(
            vector_store_id=store.id, file=("b.txt", b"bananas are yellow"), poll_interval_ms=POLL
        )
        gone = client.vector_stores.files.delete(first.id, vector_store_id=store.id)
        assert gone.deleted
        assert gone.object == "vector_store.file.deleted"
        client.files.retrieve(first.id)  # the file itself stays
        hits = client.vector_stores.search(store.id, query="apples")
        assert all(hit.file_id != first.id for hit in hits.data)
        client.files.delete(second.id)
        with pytest.raises(openai.NotFoundError):
            client.vector_stores.files.retrieve(second.id, vector_store_id=store.id)
        assert client.vector_stores.retrieve(store.id).file_counts.total == 0
        assert client.vector_stores.search(store.id, query="bananas").data == []


class TestBatches:
    def test_upload_and_poll_pdf_docx_pptx(self, client: OpenAI) -> None:
        store = client.vector_stores.create(name="office")
        pdf = make_pdf(
            [
                ["Quarterly report.", "Revenue from lemonade stands grew by 14 percent."],
                ["Page two.", "The warehouse in Rotterdam stores umbrellas."],
            ]
        )
        docx = make_docx(
            ["Employee handbook.", "Vacation requests go to the fjord office in Bergen."],
            table=[["Benefit", "Value"], ["Bicycle allowance", "120 euros"]],
        )
        pptx = make_pptx([("Roadmap", "Launch the telescope app in March.")], notes="Ask Priya.")
        batch = client.vector_stores.file_batches.upload_and_poll(
            store.id,
            files=[("report.pdf", pdf), ("handbook.docx", docx), ("roadmap.pptx", pptx)],
            poll_interval_ms=POLL,
        )
        assert batch.object == "vector_store.files_batch"
        assert batch.status == "completed"
        assert (batch.file_counts.completed, batch.file_counts.total) == (3, 3)
        files = list(
            client.vector_stores.file_batches.list_files(batch.id, vector_store_id=store.id)
        )
        names = {f.id: client.files.retrieve(f.id).filename for f in files}
        for query, expected in [
            ("Where are umbrellas stored?", "report.pdf"),
            ("bicycle allowance", "handbook.docx"),
            ("When does the telescope app launch?", "roadmap.pptx"),
        ]:
            top = client.vector_stores.search(store.id, query=query).data[0]
            assert top.filename == expected, (query, top)
            assert names[top.file_id] == expected
        content = client.vector_stores.files.content(
            next(i for i, n in names.items() if n == "handbook.docx"), vector_store_id=store.id
        )
        text = list(content)[0].text
        assert "Bergen" in text
        assert "Bicycle allowance | 120 euros" in text

    def test_files_with_attributes_and_filters(self, client: OpenAI) -> None:
        store = client.vector_stores.create(name="filtered")
        ids = [
            client.files.create(file=(f"{name}.txt", text.encode()), purpose="assistants").id
            for name, text in [
                ("alpha", "The alpha project ships rockets."),
                ("beta", "The beta project ships rockets too."),
                ("gamma", "The gamma project builds boats."),
            ]
        ]
        batch = client.vector_stores.file_batches.create_and_poll(
            store.id,
            files=[
                {"file_id": ids[0], "attributes": {"team": "red", "year": 2023, "public": True}},
                {"file_id": ids[1], "attributes": {"team": "blue", "year": 2024}},
                {"file_id": ids[2]},
            ],
            attributes={"team": "green", "year": 2025},
            poll_interval_ms=POLL,
        )
        assert batch.file_counts.completed == 3

        def found(filters: object) -> set[str]:
            page = client.vector_stores.search(store.id, query="project", filters=filters)  # type: ignore[arg-type]
            return {hit.file_id for hit in page.data}

        assert found({"type": "eq", "key": "team", "value": "red"}) == {ids[0]}
        assert found({"type": "gte", "key": "year", "value": 2024}) == {ids[1], ids[2]}
        assert found({"type": "in", "key": "team", "value": ["blue", "green"]}) == {ids[1], ids[2]}
        assert found(
            {
                "type": "or",
                "filters": [
                    {"type": "eq", "key": "public", "value": True},
                    {
                        "type": "and",
                        "filters": [
                            {"type": "eq", "key": "team", "value": "green"},
                            {"type": "lt", "key": "year", "value": 2030},
                        ],
                    },
                ],
            }
        ) == {ids[0], ids[2]}
        updated = client.vector_stores.files.update(
            ids[1], vector_store_id=store.id, attributes={"team": "red"}
        )
        assert updated.attributes == {"team": "red"}
        assert found({"type": "eq", "key": "team", "value": "red"}) == {ids[0], ids[1]}
        hits = client.vector_stores.search(store.id, query="boats", max_num_results=1)
        assert len(hits.data) == 1
        assert hits.data[0].attributes == {"team": "green", "year": 2025}
        strict = client.vector_stores.search(
            store.id, query="boats", ranking_options={"score_threshold": 0.99}
        )
        assert all(hit.score >= 0.99 for hit in strict.data)
        rewritten = client.vector_stores.search(
            store.id, query="What is the thing that builds boats?", rewrite_query=True
        )
        assert rewritten.search_query == ["thing builds boats"]

    def test_cancel(self, client: OpenAI) -> None:
        store = client.vector_stores.create(name="cancel")
        big = " ".join(f"line {i} of a very long document about everything." for i in range(8000))
        uploaded = client.files.create(file=("big.txt", big.encode()), purpose="assistants")
        batch = client.vector_stores.file_batches.create(store.id, file_ids=[uploaded.id])
        assert batch.status == "in_progress"
        assert batch.file_counts.in_progress == 1
        cancelled = client.vector_stores.file_batches.cancel(batch.id, vector_store_id=store.id)
        assert cancelled.status == "cancelled"
        assert cancelled.file_counts.cancelled == 1
        assert cancelled.file_counts.in_progress == 0
        vs_file = client.vector_stores.files.retrieve(uploaded.id, vector_store_id=store.id)
        assert vs_file.status == "cancelled"
        assert client.vector_stores.search(store.id, query="line 5").data == []


class TestToolResources:
    def test_vector_store_ids_must_exist(self, client: OpenAI) -> None:
        with pytest.raises(openai.BadRequestError) as caught:
            client.beta.assistants.create(
                model="gpt-4o",
                tools=[{"type": "file_search"}],
                tool_resources={"file_search": {"vector_store_ids": ["vs_missing"]}},
            )
        assert "vs_missing" in caught.value.message

    def test_inline_vector_stores_helper(self, client: OpenAI) -> None:
        uploaded = client.files.create(
            file=("kb.txt", b"The moon is made of rock."), purpose="assistants"
        )
        assistant = client.beta.assistants.create(
            model="gpt-4o",
            tools=[{"type": "file_search"}],
            tool_resources={"file_search": {"vector_stores": [{"file_ids": [uploaded.id]}]}},
        )
        assert assistant.tool_resources is not None
        assert assistant.tool_resources.file_search is not None
        (store_id,) = assistant.tool_resources.file_search.vector_store_ids or []
        _wait(lambda: client.vector_stores.retrieve(store_id).file_counts.completed == 1)
        thread = client.beta.threads.create(
            tool_resources={"file_search": {"vector_stores": [{"file_ids": [uploaded.id]}]}}
        )
        assert thread.tool_resources is not None
        assert thread.tool_resources.file_search is not None
        assert thread.tool_resources.file_search.vector_store_ids != [store_id]

    def test_message_attachments_go_to_the_threads_store(self, client: OpenAI) -> None:
        first = client.files.create(file=("one.txt", b"Kiwis are birds."), purpose="assistants")
        second = client.files.create(file=("two.txt", b"Kiwis are fruit."), purpose="assistants")
        thread = client.beta.threads.create(
            messages=[
                {
                    "role": "user",
                    "content": "read this",
                    "attachments": [{"file_id": first.id, "tools": [{"type": "file_search"}]}],
                }
            ]
        )
        assert thread.tool_resources is not None
        assert thread.tool_resources.file_search is not None
        (store_id,) = thread.tool_resources.file_search.vector_store_ids or []
        client.beta.threads.messages.create(
            thread.id,
            role="user",
            content="and this",
            attachments=[{"file_id": second.id, "tools": [{"type": "file_search"}]}],
        )
        assert client.beta.threads.retrieve(
            thread.id
        ).tool_resources.file_search.vector_store_ids == [store_id]  # type: ignore[union-attr]
        _wait(lambda: client.vector_stores.retrieve(store_id).file_counts.completed == 2)
        store = client.vector_stores.retrieve(store_id)
        assert store.expires_after is not None
        assert store.expires_after.days == 7


def test_azure_client(azure_client: AzureOpenAI) -> None:
    store = azure_client.vector_stores.create(name="azure")
    vs_file = azure_client.vector_stores.files.upload_and_poll(
        vector_store_id=store.id,
        file=("az.txt", b"Azure hosts the blue whale facts."),
        poll_interval_ms=POLL,
    )
    assert vs_file.status == "completed"
    page = azure_client.vector_stores.search(store.id, query="whale")
    assert page.data[0].file_id == vs_file.id
