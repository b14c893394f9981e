"""A live server with ASSISTANTD_BLOB_URL=s3://... (SeaweedFS), driven by the official client:
files up and down, file search over an uploaded file, the Uploads API, container files, the code
interpreter's file exchange, and the worker's sweep of orphaned blobs. On PostgreSQL the runs
and ingestion happen in a separate `assistantd worker`, which reaches the same bucket."""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from openai import OpenAI

from tests.conftest import is_postgres
from tests.sandbox.conftest import (
    SANDBOX_ENV,
    SANDBOX_KEY,
    SandboxServer,
    docker_problem,
    fresh_database,
    run_code,
)
from tests.support.scripted_model import ScriptedModel
from tests.support.seaweed import SeaweedS3
from tests.support.server import wait_for_log_line

T = TypeVar("T")
MiB = 1024 * 1024
GRACE = 4  # seconds: the live server's orphan grace age


def wait_for(probe: Callable[[], T], *, timeout: float = 30.0, what: str = "") -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def live(
    server_env: dict[str, str],
    s3_env: dict[str, str],
    work_dir: Path,
    model: ScriptedModel,
) -> Iterator[SandboxServer]:
    tag = secrets.token_hex(3)
    database_url = fresh_database(server_env["ASSISTANTD_DATABASE_URL"], work_dir)
    env = {
        **server_env,
        **SANDBOX_ENV,
        **s3_env,
        "ASSISTANTD_DATABASE_URL": database_url,
        "ASSISTANTD_DATA_DIR": str(work_dir / f"s3-data-{tag}"),
        "ASSISTANTD_API_KEYS": f"s3-{tag}:{SANDBOX_KEY}",
        "ASSISTANTD_EMBEDDED_WORKER": "false" if is_postgres(database_url) else "true",
        "ASSISTANTD_BLOB_ORPHAN_GRACE_SECONDS": str(GRACE),
        "ASSISTANTD_BLOB_SWEEP_INTERVAL_SECONDS": "1",
    }
    server = SandboxServer(env, work_dir, f"s3-{tag}")
    yield server
    server.stop()


@pytest.fixture
def client(live: SandboxServer) -> OpenAI:
    return live.client


@pytest.fixture
def bucket(live: SandboxServer) -> tuple[str, str]:
    """(bucket, prefix) of the live server's blobs."""
    rest = live.env["ASSISTANTD_BLOB_URL"].removeprefix("s3://")
    name, _, prefix = rest.partition("/")
    return name, f"{prefix}/"


def objects(seaweed: SeaweedS3, bucket: tuple[str, str]) -> set[str]:
    return set(seaweed.keys(*bucket))


def test_files_go_to_the_bucket_and_come_back(
    client: OpenAI, live: SandboxServer, seaweed: SeaweedS3, bucket: tuple[str, str]
) -> None:
    before = objects(seaweed, bucket)
    data = os.urandom(9 * MiB + 123)  # more than one 8 MiB part: a multipart upload
    file = client.files.create(file=("big.bin", data), purpose="assistants")
    assert file.bytes == len(data)
    added = objects(seaweed, bucket) - before
    assert len(added) == 1
    got = client.files.content(file.id).read()
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    assert not (Path(live.env["ASSISTANTD_DATA_DIR"]) / "files").exists()  # nothing local

    client.files.delete(file.id)
    wait_for(lambda: not (added & objects(seaweed, bucket)), what="the blob to be deleted")


def test_file_search_over_an_uploaded_file(client: OpenAI) -> None:
    text = (
        "The lighthouse keeper of Skerryvore logs the tides every night.\n"
        "Spring tides at Skerryvore reach four metres; neap tides barely two.\n"
    )
    store = client.vector_stores.create(name="tides")
    vs_file = client.vector_stores.files.upload_and_poll(
        vector_store_id=store.id, file=("tides.txt", text.encode()), poll_interval_ms=50
    )
    assert vs_file.status == "completed", vs_file.last_error
    results = client.vector_stores.search(store.id, query="how high are spring tides").data
    assert results
    assert results[0].file_id == vs_file.id
    assert "four metres" in "".join(part.text for part in results[0].content)


def test_uploads_api_joins_parts_in_the_bucket(
    client: OpenAI, seaweed: SeaweedS3, bucket: tuple[str, str]
) -> None:
    chunks = [os.urandom(5 * MiB), os.urandom(5 * MiB + 1), b"the end"]  # joined on the server
    small = [b"alpha-", b"beta-", b"gamma"]  # under S3's part minimum: streamed through
    for parts, md5 in ((chunks, False), (small, False), (small, True)):
        data = b"".join(parts)
        upload = client.uploads.create(
            bytes=len(data), filename="joined.bin", mime_type="text/plain", purpose="assistants"
        )
        ids = [client.uploads.parts.create(upload.id, data=part).id for part in parts]
        done = client.uploads.complete(
            upload.id,
            part_ids=ids,
            **({"md5": hashlib.md5(data).hexdigest()} if md5 else {}),
        )
        assert done.status == "completed"
        assert done.file is not None
        assert client.files.content(done.file.id).read() == data


def test_container_files_live_in_the_bucket(
    client: OpenAI, seaweed: SeaweedS3, bucket: tuple[str, str]
) -> None:
    container = client.containers.create(name="s3")
    before = objects(seaweed, bucket)
    upload = client.containers.files.create(container.id, file=("up.txt", b"in the bucket"))
    added = objects(seaweed, bucket) - before
    assert len(added) == 1
    content = client.containers.files.content.retrieve(upload.id, container_id=container.id)
    assert content.read() == b"in the bucket"
    client.containers.delete(container.id)  # its files' bytes go with it
    wait_for(lambda: not (added & objects(seaweed, bucket)), what="the container's blob to go")


def test_code_interpreter_reads_and_writes_files(
    client: OpenAI, model: ScriptedModel, seaweed: SeaweedS3, bucket: tuple[str, str]
) -> None:
    problem = docker_problem()
    if problem is not None:
        if os.environ.get("ASSISTANTD_REQUIRE_DOCKER") == "1":
            pytest.fail(f"ASSISTANTD_REQUIRE_DOCKER=1 but {problem}")
        pytest.skip(problem)
    source = client.files.create(file=("input.csv", b"x\n1\n2\n3\n"), purpose="assistants")
    assistant = client.beta.assistants.create(
        model="gpt-4o",
        tools=[{"type": "code_interpreter"}],
        tool_resources={"code_interpreter": {"file_ids": [source.id]}},
    )
    thread = client.beta.threads.create()
    before = objects(seaweed, bucket)
    code = (
        "import pandas as pd\n"
        "df = pd.read_csv('/mnt/data/input.csv')\n"
        "df['y'] = df['x'] * 10\n"
        "df.to_csv('/mnt/data/out.csv', index=False)\n"
        "print(df['y'].sum())"
    )
    run, call = run_code(
        client, model, assistant, thread.id, code, reply="See sandbox:/mnt/data/out.csv"
    )
    assert run.status == "completed", run.last_error
    assert call["code_interpreter"]["outputs"][0]["logs"].strip() == "60"
    (message,) = client.beta.threads.messages.list(thread.id, run_id=run.id).data
    (annotation,) = message.content[0].text.annotations
    output = annotation.file_path.file_id
    assert client.files.content(output).read() == b"x,y\n1,10\n2,20\n3,30\n"
    assert len(objects(seaweed, bucket) - before) == 1  # the output file's blob


def test_the_worker_sweeps_orphaned_blobs(
    live: SandboxServer, seaweed: SeaweedS3, bucket: tuple[str, str]
) -> None:
    """A blob no row refers to (its process died before the commit) goes after the grace age;
    an object that is not a blob of ours stays."""
    name, prefix = bucket
    orphan = prefix + secrets.token_hex(16)
    foreign = prefix + "notes/readme.txt"
    s3 = seaweed.client()
    s3.put_object(Bucket=name, Key=orphan, Body=b"left behind")
    s3.put_object(Bucket=name, Key=foreign, Body=b"not ours")
    gone_by = time.monotonic() + GRACE + 20
    wait_for(
        lambda: orphan not in objects(seaweed, bucket),
        timeout=gone_by - time.monotonic(),
        what="the orphan to be swept",
    )
    assert foreign in objects(seaweed, bucket)
    s3.delete_object(Bucket=name, Key=foreign)


def test_readiness_and_the_start_up_log_name_the_bucket(
    live: SandboxServer, bucket: tuple[str, str], work_dir: Path
) -> None:
    body = httpx.get(f"{live.api.url}/readyz", timeout=30).json()
    assert body["status"] == "ok"
    store = body["blob_store"]
    assert store["status"] == "ok", store
    assert store["location"].startswith(f"s3://{bucket[0]}/{bucket[1]} at http://127.0.0.1:")
    line = wait_for_log_line(work_dir, f"file contents are stored in s3://{bucket[0]}/")
    assert "WARNING" not in line
