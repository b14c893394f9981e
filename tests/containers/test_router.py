"""The Containers API through the official client: containers, their files, paging, tenancy,
expiry; and the service functions a response uses (`use`, `create_auto`)."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import AzureOpenAI, BadRequestError, NotFoundError, OpenAI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assistantd.containers import service
from assistantd.containers.service import memory_mb
from assistantd.db.engine import make_engine, make_sessionmaker
from assistantd.errors import InvalidRequestError
from assistantd.errors import NotFoundError as ServerNotFound
from assistantd.settings import Settings
from tests.files.support import file_blob, sql, wait_for

CONTAINER_KEYS = {
    "id",
    "object",
    "created_at",
    "status",
    "expires_after",
    "last_active_at",
    "memory_limit",
    "network_policy",
    "name",
}
FILE_KEYS = {"id", "object", "created_at", "bytes", "container_id", "path", "source"}


def error_of(exc: pytest.ExceptionInfo[Any]) -> dict[str, Any]:
    body: dict[str, Any] = exc.value.body
    return body


def expire(server_env: dict[str, str], container_id: str, seconds_ago: int = 1) -> None:
    """Move the container's clock: its time ran out `seconds_ago`."""
    sql(
        server_env["ASSISTANTD_DATABASE_URL"],
        "UPDATE containers SET expires_at = :at, last_active_at = :at - 60 WHERE id = :id",
        at=int(time.time()) - seconds_ago,
        id=container_id,
    )


def file_ids_named(client: OpenAI, filename: str) -> list[str]:
    return [f.id for f in client.files.list() if f.filename == filename]


class TestCreate:
    def test_defaults(self, client: OpenAI) -> None:
        before = int(time.time())
        container = client.containers.create(name="My Container")
        assert container.id.startswith("cntr_")
        assert set(container.model_dump(exclude_unset=True)) == CONTAINER_KEYS
        assert container.object == "container"
        assert container.name == "My Container"
        assert container.status == "running"
        assert container.memory_limit == "1g"
        assert container.expires_after is not None
        assert container.expires_after.model_dump() == {"anchor": "last_active_at", "minutes": 20}
        assert container.network_policy is not None
        assert container.network_policy.type == "disabled"
        assert before - 1 <= container.created_at <= int(time.time()) + 1
        assert container.last_active_at == container.created_at
        assert client.containers.files.list(container.id).data == []

    def test_every_option(self, client: OpenAI) -> None:
        container = client.containers.create(
            name="options",
            expires_after={"anchor": "last_active_at", "minutes": 5},
            memory_limit="4g",
            network_policy={"type": "disabled"},
        )
        assert container.memory_limit == "4g"
        assert container.expires_after is not None
        assert container.expires_after.minutes == 5
        assert client.containers.retrieve(container.id).model_dump() == container.model_dump()

    def test_file_ids_are_copied_in_as_user_files(self, client: OpenAI) -> None:
        first = client.files.create(file=("data.csv", b"a,b\n1,2\n"), purpose="user_data")
        second = client.files.create(file=("data.csv", b"x\n"), purpose="assistants")
        odd = client.files.create(file=("..hidden.txt", b"odd"), purpose="assistants")
        container = client.containers.create(
            name="with files", file_ids=[first.id, second.id, odd.id, first.id]
        )
        listed = client.containers.files.list(container.id, order="asc").data
        assert [(f.path, f.source, f.bytes) for f in listed] == [
            ("/mnt/data/data.csv", "user", 8),
            ("/mnt/data/data-2.csv", "user", 2),
            ("/mnt/data/hidden.txt", "user", 3),
        ]
        for item in listed:
            assert item.id.startswith("cfile_")
            assert item.container_id == container.id
            assert set(item.model_dump(exclude_unset=True)) == FILE_KEYS
        content = client.containers.files.content.retrieve(listed[0].id, container_id=container.id)
        assert content.read() == b"a,b\n1,2\n"
        # The container's copies are its own: deleting it keeps the project's files.
        client.containers.delete(container.id)
        assert client.files.retrieve(first.id).id == first.id

    @pytest.mark.parametrize(
        ("body", "param", "message"),
        [
            ({}, "name", "Missing required parameter: 'name'."),
            ({"name": 5}, "name", None),
            ({"name": "n", "memory_limit": "2g"}, "memory_limit", None),
            (
                {"name": "n", "expires_after": {"anchor": "created_at", "minutes": 5}},
                "expires_after.anchor",
                None,
            ),
            (
                {"name": "n", "expires_after": {"anchor": "last_active_at", "minutes": 0}},
                "expires_after.minutes",
                None,
            ),
            (
                {"name": "n", "expires_after": {"anchor": "last_active_at"}},
                "expires_after.minutes",
                "Missing required parameter: 'expires_after.minutes'.",
            ),
            ({"name": "n", "file_ids": ["nope"]}, "file_ids[0]", None),
            (
                {"name": "n", "file_ids": ["file-doesnotexist"]},
                "file_ids",
                "No file found with id 'file-doesnotexist'.",
            ),
            (
                {"name": "n", "network_policy": {"type": "allowlist", "allowed_domains": ["x"]}},
                "network_policy.type",
                None,
            ),
            (
                {"name": "n", "skills": [{"type": "skill_reference", "skill_id": "s"}]},
                "skills",
                None,
            ),
            ({"name": "n", "colour": "red"}, "colour", None),
        ],
    )
    def test_bad_input(
        self, client: OpenAI, body: dict[str, Any], param: str, message: str | None
    ) -> None:
        with pytest.raises(BadRequestError) as exc:
            client.post("/containers", body=body, cast_to=httpx.Response)
        error = error_of(exc)
        assert error["type"] == "invalid_request_error"
        assert error["param"] == param
        if message is not None:
            assert error["message"] == message
        assert client.containers.list().data == []

    def test_another_projects_file_is_unknown(self, client: OpenAI, other_client: OpenAI) -> None:
        theirs = other_client.files.create(file=("t.txt", b"t"), purpose="assistants")
        with pytest.raises(BadRequestError) as exc:
            client.containers.create(name="n", file_ids=[theirs.id])
        assert error_of(exc)["message"] == f"No file found with id '{theirs.id}'."


class TestListRetrieveDelete:
    def test_paging_order_and_name_filter(self, client: OpenAI) -> None:
        made = [client.containers.create(name="even" if n % 2 == 0 else "odd") for n in range(5)]
        ids = [c.id for c in made]
        first = client.containers.list(limit=2)
        assert [c.id for c in first.data] == ids[::-1][:2]
        assert first.has_more is True
        assert first.first_id == ids[4]
        assert first.last_id == ids[3]
        assert [c.id for c in client.containers.list(limit=2)] == ids[::-1]  # auto-paging
        assert [c.id for c in client.containers.list(order="asc", after=ids[1])] == ids[2:]
        evens = client.containers.list(name="even")
        assert [c.id for c in evens.data] == [ids[4], ids[2], ids[0]]
        assert evens.has_more is False
        assert client.containers.list(name="none").data == []
        newest = client.containers.list().data[0].model_dump()
        assert newest == client.containers.retrieve(ids[4]).model_dump()

    def test_delete(self, client: OpenAI) -> None:
        container = client.containers.create(name="doomed")
        upload = client.containers.files.create(container.id, file=("up.txt", b"up"))
        [backing] = file_ids_named(client, "up.txt")
        response = client.containers.with_raw_response.delete(container.id)
        assert response.http_request.method == "DELETE"
        assert response.status_code == 200
        assert httpx.Response(200, content=response.content).json() == {
            "id": container.id,
            "object": "container.deleted",
            "deleted": True,
        }
        with pytest.raises(NotFoundError) as exc:
            client.containers.retrieve(container.id)
        assert error_of(exc) == {
            "message": f"Container with id '{container.id}' not found.",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
        with pytest.raises(NotFoundError):
            client.containers.files.retrieve(upload.id, container_id=container.id)
        with pytest.raises(NotFoundError):
            client.containers.delete(container.id)
        # The upload's bytes went with the container.
        with pytest.raises(NotFoundError):
            client.files.retrieve(backing)

    def test_ids_of_the_wrong_kind(self, client: OpenAI) -> None:
        with pytest.raises(BadRequestError) as exc:
            client.containers.retrieve("file-abc")
        assert error_of(exc)["param"] == "container_id"
        assert "Expected an ID that begins with 'cntr'" in error_of(exc)["message"]
        container = client.containers.create(name="c")
        with pytest.raises(BadRequestError) as exc:
            client.containers.files.retrieve("file-abc", container_id=container.id)
        assert error_of(exc)["param"] == "file_id"

    def test_azure_paths(self, client: OpenAI, azure_client: AzureOpenAI) -> None:
        container = azure_client.containers.create(name="azure")
        assert client.containers.retrieve(container.id).model_dump() == container.model_dump()
        added = azure_client.containers.files.create(container.id, file=("a.txt", b"az"))
        assert [f.id for f in azure_client.containers.files.list(container.id)] == [added.id]
        azure_client.containers.delete(container.id)
        assert client.containers.list().data == []


class TestFiles:
    def test_upload_retrieve_list_content(self, client: OpenAI) -> None:
        container = client.containers.create(name="files")
        before = int(time.time())
        notes = client.containers.files.create(container.id, file=("notes.txt", b"hello"))
        assert set(notes.model_dump(exclude_unset=True)) == FILE_KEYS
        assert notes.id.startswith("cfile_")
        assert notes.object == "container.file"
        assert notes.container_id == container.id
        assert (notes.path, notes.source, notes.bytes) == ("/mnt/data/notes.txt", "user", 5)
        assert before - 1 <= notes.created_at <= int(time.time()) + 1
        again = client.containers.files.create(container.id, file=("notes.txt", b"again"))
        assert again.path == "/mnt/data/notes-2.txt"
        retrieved = client.containers.files.retrieve(notes.id, container_id=container.id)
        assert retrieved.model_dump() == notes.model_dump()
        listed = client.containers.files.list(container.id)
        assert [f.id for f in listed.data] == [again.id, notes.id]
        raw = client.containers.files.content.with_raw_response.retrieve(
            notes.id, container_id=container.id
        )
        assert raw.content == b"hello"
        assert raw.headers["content-type"].startswith("text/plain")
        assert "notes.txt" in raw.headers["content-disposition"]

    def test_by_file_id_as_json_or_form_field(self, client: OpenAI) -> None:
        container = client.containers.create(name="by id")
        source = client.files.create(file=("report.md", b"# r"), purpose="assistants")
        added = client.containers.files.create(container.id, file_id=source.id)
        assert (added.path, added.source, added.bytes) == ("/mnt/data/report.md", "user", 3)
        form = client.post(
            f"/containers/{container.id}/files",
            body=None,
            options={"headers": {"Content-Type": "multipart/form-data"}},
            files=[("file_id", (None, source.id.encode()))],
            cast_to=httpx.Response,
        )
        assert form.json()["path"] == "/mnt/data/report-2.md"
        content = client.containers.files.content.retrieve(added.id, container_id=container.id)
        assert content.read() == b"# r"
        # Deleting a copy keeps the project's file.
        client.containers.files.delete(added.id, container_id=container.id)
        assert client.files.retrieve(source.id).id == source.id

    @pytest.mark.parametrize(
        ("files", "json", "param", "message"),
        [
            (None, {}, "file_id", "Missing required parameter: 'file_id'."),
            (None, {"file_id": "nope"}, "file_id", None),
            (None, {"file_id": "file-missing"}, "file_id", "No file found with id 'file-missing'."),
            (None, {"file_id": "file-x", "path": "/etc"}, "path", None),
            ([("other", (None, b"x"))], None, "other", None),
            ([("purpose", (None, b"x"))], None, "purpose", None),
            ([("file", ("a.txt", b"a")), ("file_id", (None, b"file-1"))], None, "file_id", None),
            ([("file_id", (None, b""))], None, "file_id", None),
        ],
    )
    def test_bad_input(
        self,
        client: OpenAI,
        files: list[tuple[str, Any]] | None,
        json: dict[str, Any] | None,
        param: str,
        message: str | None,
    ) -> None:
        container = client.containers.create(name="bad")
        multipart = {"headers": {"Content-Type": "multipart/form-data"}} if files else {}
        with pytest.raises(BadRequestError) as exc:
            client.post(
                f"/containers/{container.id}/files",
                body=json,
                options=multipart,  # type: ignore[arg-type]
                files=files,
                cast_to=httpx.Response,
            )
        error = error_of(exc)
        assert error["param"] == param
        if message is not None:
            assert error["message"] == message
        assert client.containers.files.list(container.id).data == []

    def test_a_text_field_named_file(self, client: OpenAI) -> None:
        container = client.containers.create(name="text file field")
        with pytest.raises(BadRequestError) as exc:
            client.post(
                f"/containers/{container.id}/files",
                body=None,
                options={"headers": {"Content-Type": "multipart/form-data"}},
                files=[("file", (None, b"not a file"))],
                cast_to=httpx.Response,
            )
        assert error_of(exc)["param"] == "file"
        assert "expected a file upload" in error_of(exc)["message"]

    def test_delete(self, client: OpenAI) -> None:
        container = client.containers.create(name="delete files")
        kept = client.containers.files.create(container.id, file=("kept.txt", b"k"))
        gone = client.containers.files.create(container.id, file=("gone.txt", b"g"))
        [backing] = file_ids_named(client, "gone.txt")
        raw = client.containers.files.with_raw_response.delete(gone.id, container_id=container.id)
        assert httpx.Response(200, content=raw.content).json() == {
            "id": gone.id,
            "object": "container.file.deleted",
            "deleted": True,
        }
        with pytest.raises(NotFoundError) as exc:
            client.containers.files.retrieve(gone.id, container_id=container.id)
        assert error_of(exc)["message"] == f"Container file with id '{gone.id}' not found."
        with pytest.raises(NotFoundError):
            client.containers.files.content.retrieve(gone.id, container_id=container.id)
        assert [f.id for f in client.containers.files.list(container.id)] == [kept.id]
        with pytest.raises(NotFoundError):  # the upload's bytes went with it
            client.files.retrieve(backing)

    def test_a_file_of_another_container(self, client: OpenAI) -> None:
        one = client.containers.create(name="one")
        two = client.containers.create(name="two")
        added = client.containers.files.create(one.id, file=("a.txt", b"a"))
        with pytest.raises(NotFoundError):
            client.containers.files.retrieve(added.id, container_id=two.id)
        with pytest.raises(NotFoundError):
            client.containers.files.delete(added.id, container_id=two.id)

    def test_paging(self, client: OpenAI) -> None:
        container = client.containers.create(name="paging")
        ids = [
            client.containers.files.create(container.id, file=(f"f{n}.txt", b"x")).id
            for n in range(3)
        ]
        page = client.containers.files.list(container.id, limit=2)
        assert [f.id for f in page.data] == [ids[2], ids[1]]
        assert page.has_more is True
        assert [f.id for f in client.containers.files.list(container.id, limit=2)] == ids[::-1]
        after = client.containers.files.list(container.id, order="asc", after=ids[0])
        assert [f.id for f in after.data] == ids[1:]

    def test_activity_moves_last_active_at(
        self, client: OpenAI, server_env: dict[str, str]
    ) -> None:
        container = client.containers.create(name="active")
        sql(
            server_env["ASSISTANTD_DATABASE_URL"],
            "UPDATE containers SET last_active_at = last_active_at - 300, "
            "expires_at = expires_at - 300 WHERE id = :id",
            id=container.id,
        )
        stale = client.containers.retrieve(container.id)
        assert stale.last_active_at == container.created_at - 300
        client.containers.files.create(container.id, file=("a.txt", b"a"))
        fresh = client.containers.retrieve(container.id)
        assert fresh.last_active_at is not None
        assert fresh.last_active_at >= int(time.time()) - 2
        assert fresh.status == "running"


class TestTenancy:
    def test_another_projects_container_is_not_found(
        self, client: OpenAI, other_client: OpenAI
    ) -> None:
        container = client.containers.create(name="mine")
        added = client.containers.files.create(container.id, file=("m.txt", b"m"))
        message = f"Container with id '{container.id}' not found."
        calls = [
            lambda: other_client.containers.retrieve(container.id),
            lambda: other_client.containers.delete(container.id),
            lambda: other_client.containers.files.list(container.id),
            lambda: other_client.containers.files.create(container.id, file=("x.txt", b"x")),
            lambda: other_client.containers.files.retrieve(added.id, container_id=container.id),
            lambda: other_client.containers.files.delete(added.id, container_id=container.id),
            lambda: other_client.containers.files.content.retrieve(
                added.id, container_id=container.id
            ),
        ]
        for call in calls:
            with pytest.raises(NotFoundError) as exc:
                call()
            assert error_of(exc)["message"] == message
        assert other_client.containers.list().data == []
        theirs = other_client.files.create(file=("t.txt", b"t"), purpose="assistants")
        with pytest.raises(BadRequestError):
            client.containers.files.create(container.id, file_id=theirs.id)
        assert [f.id for f in client.containers.files.list(container.id)] == [added.id]
        assert (
            client.containers.files.content.retrieve(added.id, container_id=container.id).read()
            == b"m"
        )


class TestExpiry:
    def test_an_expired_container(self, client: OpenAI, server_env: dict[str, str]) -> None:
        container = client.containers.create(
            name="short", expires_after={"anchor": "last_active_at", "minutes": 1}
        )
        upload = client.containers.files.create(container.id, file=("up.txt", b"up"))
        source = client.files.create(file=("src.txt", b"src"), purpose="assistants")
        copy = client.containers.files.create(container.id, file_id=source.id)
        [backing] = file_ids_named(client, "up.txt")
        blob = file_blob(server_env, backing)
        expire(server_env, container.id)

        retrieved = client.containers.retrieve(container.id)
        assert retrieved.status == "expired"
        assert [c.status for c in client.containers.list()] == ["expired"]
        expired = {
            "message": "Container is expired.",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
        calls = [
            lambda: client.containers.files.list(container.id),
            lambda: client.containers.files.create(container.id, file=("x.txt", b"x")),
            lambda: client.containers.files.create(container.id, file_id=source.id),
            lambda: client.containers.files.retrieve(upload.id, container_id=container.id),
            lambda: client.containers.files.content.retrieve(upload.id, container_id=container.id),
            lambda: client.containers.files.delete(copy.id, container_id=container.id),
        ]
        for call in calls:
            with pytest.raises(BadRequestError) as exc:
                call()
            assert error_of(exc) == expired

        # The worker's sweep discards what the container held; the project's file stays.
        wait_for(lambda: not blob.exists())
        url = server_env["ASSISTANTD_DATABASE_URL"]
        held = "SELECT id FROM container_files WHERE container_id = :id"
        assert sql(url, held, id=container.id) == []
        assert sql(url, "SELECT status FROM containers WHERE id = :id", id=container.id) == [
            ("expired",)
        ]
        with pytest.raises(NotFoundError):
            client.files.retrieve(backing)
        assert client.files.retrieve(source.id).id == source.id
        assert client.containers.retrieve(container.id).status == "expired"
        client.containers.delete(container.id)
        assert client.containers.list().data == []


def test_memory_tiers() -> None:
    settings = Settings(sandbox_memory_mb=1024, sandbox_max_memory_mb=4096)
    assert [memory_mb(settings, tier) for tier in ("1g", "4g", "16g", "64g")] == [
        1024,
        4096,
        4096,
        4096,
    ]
    small_cap = Settings(sandbox_memory_mb=2048, sandbox_max_memory_mb=1024)
    assert [memory_mb(small_cap, tier) for tier in ("1g", "4g")] == [2048, 2048]
    roomy = Settings(sandbox_memory_mb=512, sandbox_max_memory_mb=65536)
    assert [memory_mb(roomy, tier) for tier in ("1g", "16g", "64g")] == [512, 16384, 65536]


# --- the service functions a response uses ----------------------------------------------------


@pytest.fixture
async def sessions(server_env: dict[str, str]) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    settings = Settings(
        database_url=server_env["ASSISTANTD_DATABASE_URL"],
        data_dir=Path(server_env["ASSISTANTD_DATA_DIR"]),
    )
    engine = make_engine(settings)
    try:
        yield make_sessionmaker(engine, write=True)
    finally:
        await engine.dispose()


class TestUse:
    async def test_use_marks_active_and_refuses_expired_or_unknown(
        self,
        sessions: async_sessionmaker[AsyncSession],
        server_env: dict[str, str],
    ) -> None:
        project = f"use-{secrets.token_hex(4)}"
        async with sessions() as session:
            row = await service.create_auto(session, project, file_ids=None, memory_limit="4g")
            await session.commit()
        assert (row.name, row.memory_limit, row.status) == ("auto", "4g", "running")
        assert row.expires_after == {"anchor": "last_active_at", "minutes": 20}
        sql(
            server_env["ASSISTANTD_DATABASE_URL"],
            "UPDATE containers SET last_active_at = 5, expires_at = :at WHERE id = :id",
            at=int(time.time()) + 60,
            id=row.id,
        )
        async with sessions() as session:
            used = await service.use(session, project, row.id)
            await session.commit()
        assert used.last_active_at >= int(time.time()) - 2
        assert used.expires_at == used.last_active_at + 20 * 60
        async with sessions() as session:
            with pytest.raises(ServerNotFound) as missing:
                await service.use(session, "another-project", row.id)
            assert missing.value.message == f"Container with id '{row.id}' not found."
        expire(server_env, row.id, seconds_ago=0)
        async with sessions() as session:
            with pytest.raises(InvalidRequestError) as gone:
                await service.use(session, project, row.id)
        assert (gone.value.message, gone.value.status_code) == ("Container is expired.", 400)

    async def test_create_auto_names_its_param(
        self, sessions: async_sessionmaker[AsyncSession]
    ) -> None:
        project = f"auto-{secrets.token_hex(4)}"
        async with sessions() as session:
            with pytest.raises(InvalidRequestError) as exc:
                await service.create_auto(
                    session,
                    project,
                    file_ids=["file-nope"],
                    memory_limit=None,
                    param="tools[0].container.file_ids",
                )
        assert exc.value.param == "tools[0].container.file_ids"
        assert exc.value.message == "No file found with id 'file-nope'."
