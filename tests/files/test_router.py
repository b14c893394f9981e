"""`/files` through the official clients (OpenAI and AzureOpenAI), as users call it."""

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

from tests.conftest import AZURE_API_VERSION
from tests.files.support import file_blob, small_server, stored_blobs, wait_for
from tests.support.server import LiveServer

MiB = 1024 * 1024


def _error(exc: openai.APIStatusError) -> dict[str, object]:
    body = exc.body
    assert isinstance(body, dict)
    assert set(body) == {"message", "type", "param", "code"}
    return body


class TestCreate:
    def test_bytes(self, client: OpenAI) -> None:
        before = int(time.time())
        created = client.files.create(file=b"hello", purpose="assistants")
        assert created.id.startswith("file-")
        assert created.object == "file"
        assert created.bytes == 5
        assert created.filename == "upload"  # the name httpx gives bare bytes
        assert created.purpose == "assistants"
        assert created.status == "processed"
        assert created.expires_at is None
        assert created.status_details is None
        assert before <= created.created_at <= int(time.time())
        raw = client.files.with_raw_response.create(file=b"x", purpose="assistants")
        assert set(raw.http_response.json()) == {
            "id",
            "object",
            "bytes",
            "created_at",
            "expires_at",
            "filename",
            "purpose",
            "status",
            "status_details",
        }

    def test_path(self, client: OpenAI, tmp_path: Path) -> None:
        path = tmp_path / "notes.md"
        path.write_bytes(b"# Notes\n")
        created = client.files.create(file=path, purpose="user_data")
        assert (created.filename, created.bytes, created.purpose) == ("notes.md", 8, "user_data")
        content = client.files.with_raw_response.content(created.id)
        assert content.headers["content-type"].startswith("text/markdown")

    def test_tuple_with_content_type(self, client: OpenAI) -> None:
        created = client.files.create(
            file=("table.data", b"a,b\n1,2\n", "text/csv"), purpose="assistants"
        )
        assert created.filename == "table.data"
        content = client.files.with_raw_response.content(created.id)
        assert content.headers["content-type"].startswith("text/csv")
        assert content.parse().read() == b"a,b\n1,2\n"

    def test_open_file_and_guessed_type(self, client: OpenAI, tmp_path: Path) -> None:
        path = tmp_path / "pixel.png"
        path.write_bytes(b"\x89PNG\r\n\x1a\n")
        with path.open("rb") as fh:
            created = client.files.create(file=fh, purpose="vision")
        assert created.filename == "pixel.png"
        content = client.files.with_raw_response.content(created.id)
        assert content.headers["content-type"] == "image/png"

    def test_unknown_type_is_octet_stream(self, client: OpenAI) -> None:
        created = client.files.create(file=("blob.zzz9", b"\0\1"), purpose="assistants")
        content = client.files.with_raw_response.content(created.id)
        assert content.headers["content-type"] == "application/octet-stream"

    def test_azure(self, azure_client: AzureOpenAI, client: OpenAI) -> None:
        created = azure_client.files.create(file=("a.txt", b"azure"), purpose="assistants")
        assert client.files.retrieve(created.id) == created

    @pytest.mark.parametrize("purpose", ["assistants", "batch", "fine-tune", "vision", "evals"])
    def test_every_purpose(self, client: OpenAI, purpose: str) -> None:
        created = client.files.create(file=("f.jsonl", b"{}\n"), purpose=purpose)  # type: ignore[arg-type]
        assert created.purpose == purpose

    def test_expires_after(self, client: OpenAI) -> None:
        created = client.files.create(
            file=("e.txt", b"e"),
            purpose="assistants",
            expires_after={"anchor": "created_at", "seconds": 7200},
        )
        assert created.expires_at == created.created_at + 7200
        assert client.files.retrieve(created.id).expires_at == created.expires_at

    def test_batch_files_expire_after_30_days_by_default(self, client: OpenAI) -> None:
        created = client.files.create(file=("b.jsonl", b"{}\n"), purpose="batch")
        assert created.expires_at == created.created_at + 30 * 24 * 3600

    @pytest.mark.parametrize(
        ("expires_after", "param"),
        [
            ({"anchor": "created_at", "seconds": 3599}, "expires_after.seconds"),
            ({"anchor": "created_at", "seconds": 2592001}, "expires_after.seconds"),
            ({"anchor": "last_active_at", "seconds": 3600}, "expires_after.anchor"),
            ({"anchor": "created_at"}, "expires_after.seconds"),
        ],
    )
    def test_bad_expires_after(
        self, client: OpenAI, expires_after: dict[str, object], param: str
    ) -> None:
        with pytest.raises(openai.BadRequestError) as info:
            client.files.create(
                file=("e.txt", b"e"),
                purpose="assistants",
                expires_after=expires_after,  # type: ignore[arg-type]
            )
        assert _error(info.value)["param"] == param
        assert client.files.list().data == []

    @pytest.mark.parametrize(
        "order",
        [
            ("file", "seconds", "purpose", "anchor"),
            ("purpose", "anchor", "file", "seconds"),
            ("seconds", "file", "anchor", "purpose"),
        ],
    )
    def test_fields_in_any_order(
        self, server: LiveServer, api_key: str, client: OpenAI, order: tuple[str, ...]
    ) -> None:
        boundary = "xyz123"
        parts = {
            "file": 'name="file"; filename="late.txt"\r\nContent-Type: text/plain\r\n\r\nhi',
            "seconds": 'name="expires_after[seconds]"\r\n\r\n3600',
            "purpose": 'name="purpose"\r\n\r\nassistants',
            "anchor": 'name="expires_after[anchor]"\r\n\r\ncreated_at',
        }
        body = "".join(
            f"--{boundary}\r\nContent-Disposition: form-data; {parts[name]}\r\n" for name in order
        )
        response = httpx.post(
            f"{server.url}/v1/files",
            content=f"{body}--{boundary}--\r\n".encode(),
            headers={
                "Authorization": f"Bearer {api_key}",
                "Content-Type": f"multipart/form-data; boundary={boundary}",
            },
        )
        assert response.status_code == 200, response.text
        created = response.json()
        assert created["filename"] == "late.txt"
        assert created["expires_at"] == created["created_at"] + 3600
        assert client.files.content(created["id"]).read() == b"hi"

    def test_bad_purpose(self, client: OpenAI, server_env: dict[str, str]) -> None:
        blobs = stored_blobs(server_env["ASSISTANTD_DATA_DIR"])
        with pytest.raises(openai.BadRequestError) as info:
            client.files.create(file=("x.txt", b"x"), purpose="nope")  # type: ignore[arg-type]
        body = _error(info.value)
        assert body["param"] == "purpose"
        assert body["type"] == "invalid_request_error"
        with pytest.raises(openai.BadRequestError):  # a stored-only purpose is not uploadable
            client.files.create(file=("x.txt", b"x"), purpose="assistants_output")  # type: ignore[arg-type]
        assert client.files.list().data == []
        assert stored_blobs(server_env["ASSISTANTD_DATA_DIR"]) == blobs

    def _post(
        self, server: LiveServer, api_key: str, boundary: str | None = None, **kwargs: object
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {api_key}"}
        if boundary is not None:
            headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
        return httpx.post(f"{server.url}/v1/files", headers=headers, **kwargs)  # type: ignore[arg-type]

    def test_missing_parts(
        self, server: LiveServer, api_key: str, client: OpenAI, server_env: dict[str, str]
    ) -> None:
        blobs = stored_blobs(server_env["ASSISTANTD_DATA_DIR"])
        cases: list[tuple[dict[str, object], str | None]] = [
            ({"files": {"file": ("a.txt", b"a")}}, "purpose"),
            ({"data": {"purpose": "assistants"}, "files": {"other": ("a", b"a")}}, "other"),
            (
                {"data": {"purpose": "assistants", "file": "not a file"}, "files": {"x": ""}},
                "file",
            ),
            ({"json": {"purpose": "assistants"}}, None),
            (
                {"data": {"purpose": "assistants", "extra": "1"}, "files": {"file": ("a", b"a")}},
                "extra",
            ),
        ]
        for kwargs, param in cases:
            response = self._post(server, api_key, **kwargs)
            assert response.status_code == 400, (kwargs, response.text)
            error = response.json()["error"]
            assert error["type"] == "invalid_request_error"
            assert error["param"] == param, (kwargs, error)
        boundary = "b"
        missing_file = self._post(
            server,
            api_key,
            boundary,
            content=(
                f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\n'
                f"assistants\r\n--{boundary}--\r\n"
            ).encode(),
        )
        assert missing_file.status_code == 400
        assert missing_file.json()["error"]["message"] == "Missing required parameter: 'file'."
        truncated = self._post(
            server,
            api_key,
            content=(
                f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\n'
                f'assistants\r\n--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                f'filename="t.txt"\r\n\r\nhalf a fi'
            ).encode(),
        )
        assert truncated.status_code == 400
        assert client.files.list().data == []
        assert stored_blobs(server_env["ASSISTANTD_DATA_DIR"]) == blobs

    def test_needs_auth(self, server: LiveServer) -> None:
        response = httpx.post(f"{server.url}/v1/files", files={"file": ("a", b"a")})
        assert response.status_code == 401


@pytest.fixture(scope="module")
def small(
    server: LiveServer, server_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A server that accepts files of at most 1 KiB."""
    live = small_server(server_env, tmp_path_factory.mktemp("small"), max_upload_bytes=1024)
    yield live
    live.stop()


class TestTooLarge:
    def test_413_and_nothing_stored(self, small: LiveServer, api_key: str) -> None:
        data_dir = small.env["ASSISTANTD_DATA_DIR"]
        with OpenAI(api_key=api_key, base_url=f"{small.url}/v1", max_retries=0) as client:
            assert client.files.create(file=("ok.bin", b"x" * 1024), purpose="assistants")
            before = stored_blobs(data_dir)
            for size in (1025, 200 * 1024, 20 * MiB):
                with pytest.raises(openai.APIStatusError) as info:
                    client.files.create(file=("big.bin", b"x" * size), purpose="assistants")
                assert info.value.status_code == 413
                body = _error(info.value)
                assert body["type"] == "invalid_request_error"
                assert "1024 bytes" in str(body["message"])
            assert [f.filename for f in client.files.list()] == ["ok.bin"]
            assert stored_blobs(data_dir) == before
            # The connection is still usable afterwards.
            assert client.files.create(file=("ok2.bin", b"y"), purpose="assistants").bytes == 1

    def test_413_with_azure(self, small: LiveServer, api_key: str) -> None:
        with AzureOpenAI(
            api_key=api_key,
            api_version=AZURE_API_VERSION,
            azure_endpoint=small.url,
            max_retries=0,
        ) as client:
            with pytest.raises(openai.APIStatusError) as info:
                client.files.create(file=("big.bin", b"x" * 5000), purpose="assistants")
            assert info.value.status_code == 413


class TestList:
    def _make(self, client: OpenAI, count: int, purpose: str = "assistants") -> list[str]:
        return [
            client.files.create(file=(f"f{i}.txt", b"x"), purpose=purpose).id  # type: ignore[arg-type]
            for i in range(count)
        ]

    def test_empty(self, client: OpenAI) -> None:
        page = client.files.list()
        assert page.data == []
        assert page.has_more is False
        raw = client.files.with_raw_response.list().http_response.json()
        assert raw == {
            "object": "list",
            "data": [],
            "first_id": None,
            "last_id": None,
            "has_more": False,
        }

    def test_default_order_is_newest_first_and_limit_is_10000(self, client: OpenAI) -> None:
        ids = self._make(client, 25)
        page = client.files.list()
        assert [f.id for f in page.data] == ids[::-1]
        assert page.has_more is False
        assert [f.id for f in client.files.list(limit=10_000, order="asc").data] == ids

    def test_auto_paging_both_orders(self, client: OpenAI, azure_client: AzureOpenAI) -> None:
        ids = self._make(client, 7)
        assert [f.id for f in client.files.list(limit=2, order="asc")] == ids
        assert [f.id for f in client.files.list(limit=2, order="desc")] == ids[::-1]
        assert [f.id for f in azure_client.files.list(limit=3, order="asc")] == ids
        assert [f.id for f in azure_client.files.list(limit=3)] == ids[::-1]

    def test_has_more_and_after(self, client: OpenAI) -> None:
        ids = self._make(client, 5)
        assert client.files.list(limit=5).has_more is False
        page = client.files.list(limit=4, order="asc")
        assert page.has_more is True
        raw = client.files.with_raw_response.list(limit=4, order="asc").http_response.json()
        assert (raw["first_id"], raw["last_id"]) == (ids[0], ids[3])
        rest = client.files.list(limit=4, order="asc", after=ids[3])
        assert ([f.id for f in rest.data], rest.has_more) == ([ids[4]], False)
        # A cursor keeps its place after its file is deleted.
        client.files.delete(ids[1])
        assert [f.id for f in client.files.list(order="asc", after=ids[1]).data] == ids[2:]

    def test_purpose_filter(self, client: OpenAI) -> None:
        assistants = self._make(client, 3, "assistants")
        vision = self._make(client, 2, "vision")
        assert [f.id for f in client.files.list(purpose="vision", order="asc")] == vision
        assert [f.id for f in client.files.list(purpose="assistants", limit=1)] == assistants[::-1]
        assert client.files.list(purpose="batch").data == []

    @pytest.mark.parametrize("query", [{"limit": 0}, {"limit": 10_001}, {"order": "up"}])
    def test_bad_paging(self, client: OpenAI, query: dict[str, object]) -> None:
        with pytest.raises(openai.BadRequestError):
            client.files.list(**query)  # type: ignore[arg-type]

    def test_before_is_not_a_files_parameter(self, client: OpenAI) -> None:
        (file_id,) = self._make(client, 1)
        with pytest.raises(openai.BadRequestError) as info:
            client.files.list(extra_query={"before": file_id})
        body = _error(info.value)
        assert body["message"] == "Unrecognized request argument supplied: before"
        assert body["param"] == "before"


class TestRetrieveAndContent:
    def test_retrieve(self, client: OpenAI, azure_client: AzureOpenAI) -> None:
        created = client.files.create(file=("r.txt", b"retrieve me"), purpose="assistants")
        assert client.files.retrieve(created.id) == created
        assert azure_client.files.retrieve(created.id) == created

    def test_content_both_clients(
        self, client: OpenAI, azure_client: AzureOpenAI, tmp_path: Path
    ) -> None:
        data = os.urandom(3 * MiB + 17)
        created = client.files.create(file=("data.bin", data), purpose="assistants")
        assert client.files.content(created.id).read() == data
        client.files.content(created.id).write_to_file(tmp_path / "openai.bin")
        assert (tmp_path / "openai.bin").read_bytes() == data

        raw = azure_client.files.with_raw_response.content(created.id)
        assert raw.http_request.url.params["api-version"] == AZURE_API_VERSION
        assert raw.parse().read() == data
        azure_client.files.content(created.id).write_to_file(tmp_path / "azure.bin")
        assert (tmp_path / "azure.bin").read_bytes() == data

        with client.files.with_streaming_response.content(created.id) as response:
            assert response.headers["content-length"] == str(len(data))
            assert b"".join(response.iter_bytes()) == data

    def test_content_headers(self, client: OpenAI) -> None:
        created = client.files.create(
            file=('r\u00e9sum\u00e9 "v2".json', b"{}"), purpose="assistants"
        )
        raw = client.files.with_raw_response.content(created.id)
        assert raw.headers["content-type"] == "application/json"
        disposition = raw.headers["content-disposition"]
        assert disposition.startswith("attachment; filename=")
        assert "filename*=UTF-8''r%C3%A9sum%C3%A9%20%2522v2%2522.json" in disposition

    def test_empty_file(self, client: OpenAI) -> None:
        created = client.files.create(file=("empty.txt", b""), purpose="assistants")
        assert created.bytes == 0
        assert client.files.content(created.id).read() == b""

    def test_deprecated_retrieve_content(self, client: OpenAI) -> None:
        created = client.files.create(file=("t.txt", b"some text"), purpose="assistants")
        with pytest.warns(DeprecationWarning, match="content"):
            assert client.files.retrieve_content(created.id) == "some text"


class TestDelete:
    def test_delete_removes_row_and_blob(
        self, client: OpenAI, azure_client: AzureOpenAI, server_env: dict[str, str]
    ) -> None:
        created = client.files.create(file=("d.txt", b"delete me"), purpose="assistants")
        blob = file_blob(server_env, created.id)
        assert blob.read_bytes() == b"delete me"
        deleted = client.files.delete(created.id)
        assert (deleted.id, deleted.object, deleted.deleted) == (created.id, "file", True)
        raw = azure_client.files.with_raw_response.delete
        wait_for(lambda: not blob.exists())
        for call in (client.files.retrieve, client.files.content, client.files.delete, raw):
            with pytest.raises(openai.NotFoundError) as info:
                call(created.id)
            assert _error(info.value)["message"] == f"No file found with id '{created.id}'."
        assert client.files.list().data == []

    def test_azure_delete(self, azure_client: AzureOpenAI, client: OpenAI) -> None:
        created = client.files.create(file=("d.txt", b"x"), purpose="assistants")
        assert azure_client.files.delete(created.id).deleted is True
        with pytest.raises(openai.NotFoundError):
            client.files.retrieve(created.id)


class TestIsolation:
    def test_foreign_project_sees_nothing(self, client: OpenAI, other_client: OpenAI) -> None:
        created = client.files.create(file=("mine.txt", b"mine"), purpose="assistants")
        for call in (other_client.files.retrieve, other_client.files.content):
            with pytest.raises(openai.NotFoundError) as info:
                call(created.id)
            assert _error(info.value)["message"] == f"No file found with id '{created.id}'."
        with pytest.raises(openai.NotFoundError):
            other_client.files.delete(created.id)
        assert other_client.files.list().data == []
        assert client.files.retrieve(created.id) == created

    @pytest.mark.parametrize("bad_id", ["asst_abc", "upload_abc", "file_abc"])
    def test_wrong_prefix_is_400(self, client: OpenAI, bad_id: str) -> None:
        for call in (client.files.retrieve, client.files.content, client.files.delete):
            with pytest.raises(openai.BadRequestError) as info:
                call(bad_id)
            body = _error(info.value)
            assert body["param"] == "file_id"
            assert "Expected an ID that begins with 'file'" in str(body["message"])

    def test_unknown_id_is_404(self, client: OpenAI) -> None:
        with pytest.raises(openai.NotFoundError):
            client.files.retrieve("file-doesnotexist")


def _memory(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for {pid}")


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
def test_200_mb_round_trip_stays_streamed(
    client: OpenAI, server: LiveServer, tmp_path: Path
) -> None:
    """Upload and download 200 MB; the server's peak memory grows by less than 64 MiB."""
    assert server.proc is not None
    pid = server.proc.pid
    path = tmp_path / "big.bin"
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("wb") as fh:
        block = os.urandom(MiB)
        for i in range(200):
            chunk = block[i:] + block[:i]
            digest.update(chunk)
            fh.write(chunk)

    Path(f"/proc/{pid}/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    baseline = _memory(pid, "VmRSS")
    with path.open("rb") as fh:
        created = client.files.create(file=fh, purpose="assistants")
    assert created.bytes == 200 * MiB
    assert _memory(pid, "VmHWM") - baseline < 64 * MiB

    Path(f"/proc/{pid}/clear_refs").write_text("5")
    baseline = _memory(pid, "VmRSS")
    downloaded = hashlib.md5(usedforsecurity=False)
    with client.files.with_streaming_response.content(created.id) as response:
        for chunk in response.iter_bytes(MiB):
            downloaded.update(chunk)
    assert downloaded.hexdigest() == digest.hexdigest()
    assert _memory(pid, "VmHWM") - baseline < 64 * MiB
    client.files.delete(created.id)
