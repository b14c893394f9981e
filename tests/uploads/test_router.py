"""The Uploads API through the official clients, the chunked helper included."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from openai import AzureOpenAI, OpenAI

from assistantd.blobs.store import LocalBlobStore
from assistantd.db.engine import make_engine, make_sessionmaker
from assistantd.settings import Settings
from assistantd.uploads import service
from tests.files.support import blob_dir, blob_path, small_server, sql, stored_blobs, wait_for
from tests.support.server import LiveServer


def _error(exc: openai.APIStatusError) -> dict[str, object]:
    body = exc.body
    assert isinstance(body, dict)
    assert set(body) == {"message", "type", "param", "code"}
    return body


def _part_blobs(server_env: dict[str, str], upload_id: str) -> list[Path]:
    rows = sql(
        server_env["ASSISTANTD_DATABASE_URL"],
        "SELECT blob_key FROM upload_parts WHERE upload_id = :id ORDER BY id",
        id=upload_id,
    )
    return [blob_path(server_env["ASSISTANTD_DATA_DIR"], key) for (key,) in rows]


class TestCreate:
    def test_pending_upload(self, client: OpenAI) -> None:
        before = int(time.time())
        upload = client.uploads.create(
            bytes=10, filename="data.jsonl", mime_type="application/jsonl", purpose="batch"
        )
        assert upload.id.startswith("upload_")
        assert upload.object == "upload"
        assert (upload.bytes, upload.filename, upload.purpose) == (10, "data.jsonl", "batch")
        assert upload.status == "pending"
        assert upload.file is None
        assert before <= upload.created_at <= int(time.time())
        assert upload.expires_at == upload.created_at + 3600
        raw = client.uploads.with_raw_response.create(
            bytes=1, filename="a", mime_type="text/plain", purpose="assistants"
        ).http_response.json()
        assert list(raw) == [
            "id",
            "object",
            "bytes",
            "created_at",
            "filename",
            "purpose",
            "status",
            "expires_at",
            "file",
        ]

    @pytest.mark.parametrize(
        ("changes", "param"),
        [
            ({"purpose": "user_data"}, "purpose"),
            ({"bytes": -1}, "bytes"),
            ({"bytes": 8 * 1024**3 + 1}, "bytes"),
            ({"filename": ""}, "filename"),
            ({"mime_type": ""}, "mime_type"),
        ],
    )
    def test_invalid(self, client: OpenAI, changes: dict[str, object], param: str) -> None:
        params: dict[str, object] = {
            "bytes": 1,
            "filename": "a.txt",
            "mime_type": "text/plain",
            "purpose": "assistants",
            **changes,
        }
        with pytest.raises(openai.BadRequestError) as info:
            client.uploads.create(**params)  # type: ignore[arg-type]
        assert _error(info.value)["param"] == param

    def test_unknown_field(self, client: OpenAI) -> None:
        with pytest.raises(openai.BadRequestError) as info:
            client.uploads.create(
                bytes=1,
                filename="a",
                mime_type="text/plain",
                purpose="assistants",
                extra_body={"colour": "red"},
            )
        assert _error(info.value)["message"] == "Unrecognized request argument supplied: colour"


class TestComplete:
    def test_parts_joined_in_the_given_order(
        self, client: OpenAI, server_env: dict[str, str]
    ) -> None:
        chunks = [b"alpha-", b"beta-", b"gamma"]
        upload = client.uploads.create(
            bytes=sum(map(len, chunks)),
            filename="greek.txt",
            mime_type="text/plain",
            purpose="assistants",
            expires_after={"anchor": "created_at", "seconds": 3600},
        )
        # Parts may arrive in any order; `complete` says which order they go in.
        third = client.uploads.parts.create(upload.id, data=chunks[2])
        first = client.uploads.parts.create(upload.id, data=chunks[0])
        second = client.uploads.parts.create(upload.id, data=("x.bin", chunks[1]))
        assert third.id.startswith("part_")
        assert (third.object, third.upload_id) == ("upload.part", upload.id)
        part_blobs = _part_blobs(server_env, upload.id)
        assert len(part_blobs) == 3

        done = client.uploads.complete(upload.id, part_ids=[first.id, second.id, third.id])
        assert done.status == "completed"
        assert done.id == upload.id
        file = done.file
        assert file is not None
        assert file.id.startswith("file-")
        assert (file.bytes, file.filename, file.purpose) == (16, "greek.txt", "assistants")
        assert file.status == "processed"
        assert file.expires_at == file.created_at + 3600
        assert client.files.retrieve(file.id) == file
        content = client.files.with_raw_response.content(file.id)
        assert content.headers["content-type"].startswith("text/plain")
        assert content.parse().read() == b"alpha-beta-gamma"
        wait_for(lambda: not any(path.exists() for path in part_blobs))

    def test_md5(self, client: OpenAI) -> None:
        data = os.urandom(1000)
        upload = client.uploads.create(
            bytes=1000, filename="r.bin", mime_type="application/octet-stream", purpose="vision"
        )
        part = client.uploads.parts.create(upload.id, data=data)
        with pytest.raises(openai.BadRequestError) as info:
            client.uploads.complete(upload.id, part_ids=[part.id], md5="0" * 32)
        assert _error(info.value)["param"] == "md5"
        assert client.files.list().data == []  # nothing made; the upload is still pending
        md5 = hashlib.md5(data, usedforsecurity=False).hexdigest().upper()
        done = client.uploads.complete(upload.id, part_ids=[part.id], md5=md5)
        assert done.file is not None
        assert client.files.content(done.file.id).read() == data

    def test_wrong_byte_count(self, client: OpenAI) -> None:
        upload = client.uploads.create(
            bytes=10, filename="a.txt", mime_type="text/plain", purpose="assistants"
        )
        first = client.uploads.parts.create(upload.id, data=b"12345")
        second = client.uploads.parts.create(upload.id, data=b"123456")
        for part_ids in ([first.id], [first.id, second.id], []):
            with pytest.raises(openai.BadRequestError) as info:
                client.uploads.complete(upload.id, part_ids=part_ids)
            assert "bytes=10" in str(_error(info.value)["message"])
        # Still pending: a right set of parts completes it.
        third = client.uploads.parts.create(upload.id, data=b"67890")
        done = client.uploads.complete(upload.id, part_ids=[first.id, third.id])
        assert done.file is not None
        assert client.files.content(done.file.id).read() == b"1234567890"

    def test_wrong_part_ids(self, client: OpenAI) -> None:
        upload = client.uploads.create(
            bytes=2, filename="a.txt", mime_type="text/plain", purpose="assistants"
        )
        other = client.uploads.create(
            bytes=1, filename="b.txt", mime_type="text/plain", purpose="assistants"
        )
        mine = client.uploads.parts.create(upload.id, data=b"a")
        theirs = client.uploads.parts.create(other.id, data=b"b")
        cases = [
            ([mine.id, theirs.id], "part_ids[1]"),
            ([mine.id, "part_nope"], "part_ids[1]"),
            ([mine.id, mine.id], "part_ids[1]"),
            (["file-abc"], "part_ids[0]"),
        ]
        for part_ids, param in cases:
            with pytest.raises(openai.BadRequestError) as info:
                client.uploads.complete(upload.id, part_ids=part_ids)
            assert _error(info.value)["param"] == param
        assert client.files.list().data == []

    def test_empty_upload(self, client: OpenAI) -> None:
        upload = client.uploads.create(
            bytes=0, filename="empty.txt", mime_type="text/plain", purpose="assistants"
        )
        done = client.uploads.complete(upload.id, part_ids=[])
        assert done.file is not None
        assert done.file.bytes == 0

    def test_completed_upload_is_closed(self, client: OpenAI) -> None:
        upload = client.uploads.create(
            bytes=1, filename="a.txt", mime_type="text/plain", purpose="assistants"
        )
        part = client.uploads.parts.create(upload.id, data=b"a")
        client.uploads.complete(upload.id, part_ids=[part.id])
        calls = (
            lambda: client.uploads.parts.create(upload.id, data=b"b"),
            lambda: client.uploads.complete(upload.id, part_ids=[part.id]),
            lambda: client.uploads.cancel(upload.id),
        )
        for call in calls:
            with pytest.raises(openai.BadRequestError) as info:
                call()
            assert "is completed" in str(_error(info.value)["message"])
        assert len(client.files.list().data) == 1


class TestChunkedHelper:
    def test_in_memory(self, client: OpenAI) -> None:
        data = os.urandom(10_000)
        done = client.uploads.upload_file_chunked(
            file=data,
            filename="blob.bin",
            bytes=len(data),
            mime_type="application/octet-stream",
            purpose="assistants",
            part_size=3000,
            md5=hashlib.md5(data, usedforsecurity=False).hexdigest(),
        )
        assert done.status == "completed"
        assert done.file is not None
        assert (done.file.bytes, done.file.filename) == (10_000, "blob.bin")
        assert client.files.content(done.file.id).read() == data

    def test_path_with_azure(
        self, azure_client: AzureOpenAI, client: OpenAI, tmp_path: Path
    ) -> None:
        path = tmp_path / "train.jsonl"
        data = b"".join(b'{"n": %d}\n' % i for i in range(5000))
        path.write_bytes(data)
        done = azure_client.uploads.upload_file_chunked(
            file=path, mime_type="application/jsonl", purpose="fine-tune", part_size=7000
        )
        assert done.file is not None
        assert (done.file.filename, done.file.bytes, done.file.purpose) == (
            "train.jsonl",
            len(data),
            "fine-tune",
        )
        assert azure_client.files.content(done.file.id).read() == data
        assert client.files.retrieve(done.file.id) == done.file


class TestCancel:
    def test_cancel_removes_parts(self, client: OpenAI, server_env: dict[str, str]) -> None:
        upload = client.uploads.create(
            bytes=4, filename="a.txt", mime_type="text/plain", purpose="assistants"
        )
        part = client.uploads.parts.create(upload.id, data=b"ab")
        client.uploads.parts.create(upload.id, data=b"cd")
        blobs = _part_blobs(server_env, upload.id)
        assert all(path.exists() for path in blobs)

        cancelled = client.uploads.cancel(upload.id)
        assert cancelled.status == "cancelled"
        assert cancelled.file is None
        assert _part_blobs(server_env, upload.id) == []
        wait_for(lambda: not any(path.exists() for path in blobs))
        calls = (
            lambda: client.uploads.parts.create(upload.id, data=b"e"),
            lambda: client.uploads.complete(upload.id, part_ids=[part.id]),
            lambda: client.uploads.cancel(upload.id),
        )
        for call in calls:
            with pytest.raises(openai.BadRequestError) as info:
                call()
            assert "is cancelled" in str(_error(info.value)["message"])

    def test_azure_cancel(self, azure_client: AzureOpenAI) -> None:
        upload = azure_client.uploads.create(
            bytes=1, filename="a", mime_type="text/plain", purpose="assistants"
        )
        assert azure_client.uploads.cancel(upload.id).status == "cancelled"


class TestExpiry:
    def _expire(self, server_env: dict[str, str], upload_id: str) -> None:
        sql(
            server_env["ASSISTANTD_DATABASE_URL"],
            "UPDATE uploads SET expires_at = :at WHERE id = :id",
            at=int(time.time()) - 1,
            id=upload_id,
        )

    def test_expired_upload_is_closed(self, client: OpenAI, server_env: dict[str, str]) -> None:
        upload = client.uploads.create(
            bytes=1, filename="a.txt", mime_type="text/plain", purpose="assistants"
        )
        part = client.uploads.parts.create(upload.id, data=b"a")
        self._expire(server_env, upload.id)
        calls = (
            lambda: client.uploads.parts.create(upload.id, data=b"b"),
            lambda: client.uploads.complete(upload.id, part_ids=[part.id]),
            lambda: client.uploads.cancel(upload.id),
        )
        for call in calls:
            with pytest.raises(openai.BadRequestError) as info:
                call()
            assert "is expired" in str(_error(info.value)["message"])

    async def test_sweep_marks_expired_and_drops_parts(
        self, client: OpenAI, server_env: dict[str, str]
    ) -> None:
        upload = client.uploads.create(
            bytes=2, filename="a.txt", mime_type="text/plain", purpose="assistants"
        )
        client.uploads.parts.create(upload.id, data=b"a")
        live = client.uploads.create(
            bytes=1, filename="b.txt", mime_type="text/plain", purpose="assistants"
        )
        live_part = client.uploads.parts.create(live.id, data=b"b")
        blobs = _part_blobs(server_env, upload.id)
        self._expire(server_env, upload.id)

        settings = Settings(
            database_url=server_env["ASSISTANTD_DATABASE_URL"],
            data_dir=Path(server_env["ASSISTANTD_DATA_DIR"]),
        )
        engine = make_engine(settings)
        try:
            store = LocalBlobStore(blob_dir(settings.data_dir))
            # (the server's own worker may sweep it first: either way it is swept)
            await service.sweep_expired(make_sessionmaker(engine, write=True), store)
        finally:
            await engine.dispose()
        url = server_env["ASSISTANTD_DATABASE_URL"]
        assert sql(url, "SELECT status FROM uploads WHERE id = :id", id=upload.id) == [("expired",)]
        assert _part_blobs(server_env, upload.id) == []
        assert not any(path.exists() for path in blobs)
        done = client.uploads.complete(live.id, part_ids=[live_part.id])  # untouched
        assert done.status == "completed"


class TestParts:
    def _post(
        self, server: LiveServer, api_key: str, upload_id: str, **kw: object
    ) -> httpx.Response:
        return httpx.post(
            f"{server.url}/v1/uploads/{upload_id}/parts",
            headers={"Authorization": f"Bearer {api_key}"},
            **kw,  # type: ignore[arg-type]
        )

    def test_bad_forms(self, client: OpenAI, server: LiveServer, api_key: str) -> None:
        upload = client.uploads.create(
            bytes=1, filename="a.txt", mime_type="text/plain", purpose="assistants"
        )
        cases: list[tuple[dict[str, object], str | None]] = [
            ({"files": {"other": ("a", b"a")}}, "other"),
            ({"data": {"x": "1"}, "files": {"data": ("a", b"a")}}, "x"),
            ({"json": {"data": "a"}}, None),
        ]
        for kwargs, param in cases:
            response = self._post(server, api_key, upload.id, **kwargs)
            assert response.status_code == 400, response.text
            assert response.json()["error"]["param"] == param
        # A plain (non-file) `data` field is accepted too, as curl's `-F data=<file` sends it.
        response = self._post(server, api_key, upload.id, files={"data": (None, b"z")})
        assert response.status_code == 200, response.text
        done = client.uploads.complete(upload.id, part_ids=[response.json()["id"]])
        assert done.file is not None
        assert client.files.content(done.file.id).read() == b"z"


class TestIsolation:
    def test_foreign_project_gets_404(self, client: OpenAI, other_client: OpenAI) -> None:
        upload = client.uploads.create(
            bytes=1, filename="a.txt", mime_type="text/plain", purpose="assistants"
        )
        part = client.uploads.parts.create(upload.id, data=b"a")
        calls = (
            lambda: other_client.uploads.parts.create(upload.id, data=b"b"),
            lambda: other_client.uploads.complete(upload.id, part_ids=[part.id]),
            lambda: other_client.uploads.cancel(upload.id),
        )
        for call in calls:
            with pytest.raises(openai.NotFoundError) as info:
                call()
            assert _error(info.value)["message"] == f"No upload found with id '{upload.id}'."
        done = client.uploads.complete(upload.id, part_ids=[part.id])
        assert done.status == "completed"

    def test_wrong_prefix_is_400(self, client: OpenAI) -> None:
        calls = (
            lambda: client.uploads.parts.create("file-abc", data=b"b"),
            lambda: client.uploads.complete("file-abc", part_ids=[]),
            lambda: client.uploads.cancel("file-abc"),
        )
        for call in calls:
            with pytest.raises(openai.BadRequestError) as info:
                call()
            assert _error(info.value)["param"] == "upload_id"

    def test_unknown_upload_is_404(self, client: OpenAI) -> None:
        with pytest.raises(openai.NotFoundError):
            client.uploads.cancel("upload_nope")


@pytest.fixture(scope="module")
def small(
    server: LiveServer, server_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """Parts of at most 1 KiB, uploads of at most 3000 bytes."""
    live = small_server(
        server_env,
        tmp_path_factory.mktemp("small-uploads"),
        max_upload_part_bytes=1024,
        max_upload_total_bytes=3000,
    )
    yield live
    live.stop()


class TestLimits:
    def test_part_and_total_limits(self, small: LiveServer, api_key: str) -> None:
        data_dir = small.env["ASSISTANTD_DATA_DIR"]
        with OpenAI(api_key=api_key, base_url=f"{small.url}/v1", max_retries=0) as client:
            with pytest.raises(openai.BadRequestError) as info:
                client.uploads.create(
                    bytes=3001, filename="a", mime_type="text/plain", purpose="assistants"
                )
            assert _error(info.value)["param"] == "bytes"

            upload = client.uploads.create(
                bytes=3000, filename="a", mime_type="text/plain", purpose="assistants"
            )
            before = stored_blobs(data_dir)
            for size in (1025, 10 * 1024 * 1024):
                with pytest.raises(openai.APIStatusError) as status:
                    client.uploads.parts.create(upload.id, data=b"x" * size)
                assert status.value.status_code == 413
                assert "1024 bytes" in str(_error(status.value)["message"])
            assert stored_blobs(data_dir) == before

            parts = [client.uploads.parts.create(upload.id, data=b"x" * 1000) for _ in range(3)]
            before = stored_blobs(data_dir)
            with pytest.raises(openai.APIStatusError) as status:  # 3001 bytes received in all
                client.uploads.parts.create(upload.id, data=b"x")
            assert status.value.status_code == 413
            assert "3000 bytes" in str(_error(status.value)["message"])
            assert stored_blobs(data_dir) == before

            done = client.uploads.complete(upload.id, part_ids=[p.id for p in parts])
            assert done.file is not None
            assert done.file.bytes == 3000
