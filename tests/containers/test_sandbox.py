"""Containers and their sandboxes, on a real Docker engine: the code interpreter tool runs in a
container's sandbox (driven here directly, as the Responses engine does), the live server owns
the container and its files. Files go in and out, the memory limit is the container's, and
deleting or expiring a container removes its sandbox."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from openai import OpenAI

from assistantd.blobs.store import LocalBlobStore
from assistantd.db.engine import make_engine, make_sessionmaker
from assistantd.sandbox.containers import (
    LABEL,
    OWNER_LABEL,
    POOL_CPU_SHARES,
    POOL_PREFIX,
    SESSION_CPU_SHARES,
    owner,
    session_name,
)
from assistantd.sandbox.tool import CodeInterpreterResult, CodeInterpreterTool
from assistantd.settings import Settings
from assistantd.tools.base import ToolContext, ToolUnavailable
from tests.conftest import _mint_key
from tests.files.support import file_blob, sql
from tests.sandbox.conftest import GVISOR, _docker_http, docker, remove_containers_of, wait_until
from tests.support.server import LiveServer

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.usefixtures(docker.__name__)]

MIB = 1024 * 1024
# What the cgroup says from inside (v1, or v2).
CGROUP_LIMIT = (
    "import pathlib\n"
    "for p in ('/sys/fs/cgroup/memory/memory.limit_in_bytes', '/sys/fs/cgroup/memory.max'):\n"
    "    if pathlib.Path(p).exists():\n"
    "        print('limit', pathlib.Path(p).read_text().strip())\n"
    "        break\n"
)


def assert_limit_seen(result: Any, limit: int) -> None:
    """The code sees its memory limit in its cgroup (runc: the sandbox's cgroup is visible;
    gVisor keeps the host's cgroups out of sight, and Docker's `Memory` is checked above)."""
    if not GVISOR:
        assert f"limit {limit}" in logs(result)


class Runner:
    """The code interpreter tool of this process, on the suite's database and blobs."""

    def __init__(self, env: dict[str, str], project: str, **sandbox: Any) -> None:
        self.project = project
        self.settings = Settings(
            database_url=env["ASSISTANTD_DATABASE_URL"],
            data_dir=Path(env["ASSISTANTD_DATA_DIR"]),
            sandbox_memory_mb=512,
            sandbox_max_memory_mb=1024,
            sandbox_data_mb=32,
            sandbox_exec_timeout_seconds=30,
            **sandbox,
        )
        self.engine = make_engine(self.settings)
        self.sessions = make_sessionmaker(self.engine, write=True)
        self.blobs = LocalBlobStore(self.settings.blob_dir)
        self.tool = CodeInterpreterTool(self.settings)

    async def run(self, container_id: str, code: str) -> CodeInterpreterResult:
        await self.tool.check_available()
        ctx = ToolContext(
            project=self.project,
            thread_id=f"thread_{secrets.token_hex(8)}",
            run_id=f"resp_{secrets.token_hex(8)}",
            assistant_id="",
            tool_definition={"type": "code_interpreter"},
            tool_resources={},
            sessions=self.sessions,
            blobs=self.blobs,
            settings=self.settings,
            container_id=container_id,
        )
        result = await self.tool.execute(ctx, f"ci_{secrets.token_hex(6)}", code)
        assert isinstance(result, CodeInterpreterResult)
        return result

    async def aclose(self) -> None:
        await self.tool.aclose()
        await self.engine.dispose()


def logs(result: CodeInterpreterResult) -> str:
    outputs = result.details["code_interpreter"]["outputs"]
    return "".join(o["logs"] for o in outputs if o["type"] == "logs")


async def pooled(runner: Runner) -> None:
    """Wait (letting the pool fill on this loop) until a started sandbox is in the pool."""
    await runner.tool.check_available()
    deadline = time.monotonic() + 60
    while not runner.tool.manager.pooled:
        assert time.monotonic() < deadline, "the pool never filled"
        await asyncio.sleep(0.05)


def inspect(name: str) -> dict[str, Any] | None:
    with _docker_http() as http:
        response = http.get(f"/containers/{name}/json")
    if response.status_code == 404:
        return None
    response.raise_for_status()
    info: dict[str, Any] = response.json()
    return info


@pytest.fixture(scope="module")
def project() -> str:
    return f"containers-sandbox-{secrets.token_hex(4)}"


@pytest.fixture(scope="module")
def client(server: LiveServer, server_env: dict[str, str], project: str) -> Iterator[OpenAI]:
    env = server_env
    key = _mint_key(env["ASSISTANTD_DATABASE_URL"], env["ASSISTANTD_DATA_DIR"], project)
    with OpenAI(api_key=key, base_url=f"{server.url}/v1", max_retries=0) as c:
        yield c


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def runner(server_env: dict[str, str], project: str) -> AsyncIterator[Runner]:
    """The tool with a pool of one started sandbox (which a container of another size takes
    and resizes)."""
    made = Runner(server_env, project, sandbox_pool_size=1)
    yield made
    await made.aclose()
    remove_containers_of({os.getpid()})


async def test_files_in_and_out(client: OpenAI, runner: Runner, server_env: dict[str, str]) -> None:
    container = client.containers.create(name="files in and out")
    notes = client.containers.files.create(container.id, file=("notes.txt", b"hello sandbox"))
    sql(
        server_env["ASSISTANTD_DATABASE_URL"],
        "UPDATE containers SET last_active_at = last_active_at - 300 WHERE id = :id",
        id=container.id,
    )

    first = await runner.run(
        container.id,
        "import matplotlib.pyplot as plt\n"
        "print(open('/mnt/data/notes.txt').read())\n"
        "open('/mnt/data/out.csv', 'w').write('a,b\\n1,2\\n')\n"
        "plt.plot([1, 2, 3]); plt.show()\n",
    )
    assert "hello sandbox" in logs(first)
    assert "[Files copied to /mnt/data: notes.txt]" in first.output
    listed = {f.path: f for f in client.containers.files.list(container.id, limit=100)}
    [figure] = [path for path in listed if path.endswith("-figure-1.png")]
    assert set(listed) == {"/mnt/data/notes.txt", "/mnt/data/out.csv", figure}
    assert listed["/mnt/data/notes.txt"].id == notes.id
    assert (listed["/mnt/data/out.csv"].source, listed["/mnt/data/out.csv"].bytes) == (
        "assistant",
        8,
    )
    assert listed[figure].source == "assistant"
    assert first.container_files == {
        "/mnt/data/out.csv": listed["/mnt/data/out.csv"].id,
        figure: listed[figure].id,
    }
    assert first.container_images == [listed[figure].id]
    csv = client.containers.files.content.retrieve(
        listed["/mnt/data/out.csv"].id, container_id=container.id
    )
    assert csv.read() == b"a,b\n1,2\n"
    png = client.containers.files.content.retrieve(listed[figure].id, container_id=container.id)
    assert png.read().startswith(b"\x89PNG")
    # Running code is activity.
    active = client.containers.retrieve(container.id).last_active_at
    assert active is not None
    assert active >= int(time.time()) - 5

    # Rewriting a file keeps its container file, with the new bytes (the old ones go).
    old_blob = file_blob(server_env, first.files["out.csv"])
    second = await runner.run(container.id, "open('/mnt/data/out.csv', 'w').write('changed')")
    out_id = listed["/mnt/data/out.csv"].id
    assert second.container_files == {"/mnt/data/out.csv": out_id}
    rewritten = client.containers.files.retrieve(out_id, container_id=container.id)
    assert rewritten.bytes == 7
    content = client.containers.files.content.retrieve(out_id, container_id=container.id)
    assert content.read() == b"changed"
    assert not old_blob.exists()

    # Files deleted through the API leave the sandbox; files added arrive before the next run.
    client.containers.files.delete(notes.id, container_id=container.id)
    client.containers.files.delete(out_id, container_id=container.id)
    source = client.files.create(file=("extra.txt", b"extra!"), purpose="assistants")
    client.containers.files.create(container.id, file_id=source.id)
    third = await runner.run(container.id, "import os; print(sorted(os.listdir('/mnt/data')))")
    assert "['extra.txt']" in logs(third)
    assert third.container_files == {}


async def test_memory_limit_from_the_pool(client: OpenAI, runner: Runner) -> None:
    await pooled(runner)
    big = client.containers.create(name="big", memory_limit="4g")
    result = await runner.run(big.id, CGROUP_LIMIT)
    info = inspect(session_name(runner.project, big.id))
    assert info is not None
    # taken from the pool and resized in place; runsc cannot resize a running sandbox, so
    # under gVisor it is started anew at its size
    assert info["Config"]["Labels"][LABEL] == ("session" if GVISOR else "pool")
    assert info["HostConfig"]["Memory"] == 1024 * MIB  # 4g, capped by the test's 1024 MiB
    assert info["HostConfig"]["MemorySwap"] == 1024 * MIB
    assert_limit_seen(result, 1024 * MIB)

    await pooled(runner)
    small = client.containers.create(name="small")
    result = await runner.run(small.id, CGROUP_LIMIT)
    info = inspect(session_name(runner.project, small.id))
    assert info is not None
    assert info["HostConfig"]["Memory"] == 512 * MIB
    assert_limit_seen(result, 512 * MIB)


def pool_containers() -> list[dict[str, Any]]:
    """The containers waiting in the pools of this process's sandbox managers (not the live
    server's; a taken one keeps its label, but not its name)."""
    labels = [f"{LABEL}=pool", f"{OWNER_LABEL}={owner()}"]
    with _docker_http() as http:
        response = http.get("/containers/json", params={"filters": json.dumps({"label": labels})})
    response.raise_for_status()
    found: list[dict[str, Any]] = response.json()
    return [c for c in found if c["Names"][0].lstrip("/").startswith(POOL_PREFIX)]


async def test_the_pool_warms_at_a_low_cpu_weight_and_sessions_get_the_default(
    client: OpenAI, runner: Runner
) -> None:
    await pooled(runner)
    warming = [inspect(c["Id"]) for c in pool_containers()]
    assert warming
    # gVisor cannot change a running sandbox's cgroups: its pool warms at a session's weight
    low = SESSION_CPU_SHARES if GVISOR else POOL_CPU_SHARES
    assert all(c is not None and c["HostConfig"]["CpuShares"] == low for c in warming)
    container = client.containers.create(name="weights")
    result = await runner.run(container.id, "print(1)")
    assert logs(result).strip() == "1"
    name = session_name(runner.project, container.id)
    # Taken from the pool; before the pool warms another container, the taken one's weight
    # is a session's.
    await pooled(runner)
    taken = inspect(name)
    assert taken is not None
    assert taken["Config"]["Labels"][LABEL] == "pool"
    assert taken["HostConfig"]["CpuShares"] == SESSION_CPU_SHARES


async def test_memory_limit_of_a_cold_start(
    client: OpenAI, server_env: dict[str, str], project: str
) -> None:
    cold = Runner(server_env, project, sandbox_pool_size=0)
    try:
        container = client.containers.create(name="cold", memory_limit="64g")
        result = await cold.run(container.id, CGROUP_LIMIT)
        info = inspect(session_name(project, container.id))
        assert info is not None
        assert info["Config"]["Labels"][LABEL] == "session"
        assert info["HostConfig"]["Memory"] == 1024 * MIB
        assert_limit_seen(result, 1024 * MIB)
    finally:
        await cold.aclose()


async def test_delete_removes_the_sandbox(client: OpenAI, runner: Runner) -> None:
    container = client.containers.create(name="deleted")
    result = await runner.run(container.id, "x = 41; print(x + 1)")
    assert "42" in logs(result)
    name = session_name(runner.project, container.id)
    assert inspect(name) is not None
    client.containers.delete(container.id)  # the server process removes it, by name
    assert inspect(name) is None
    with pytest.raises(ToolUnavailable, match="not found"):
        await runner.run(container.id, "print(x)")
    assert inspect(name) is None


async def test_expiry_removes_the_sandbox(
    client: OpenAI, runner: Runner, server_env: dict[str, str]
) -> None:
    container = client.containers.create(
        name="expiring", expires_after={"anchor": "last_active_at", "minutes": 1}
    )
    await runner.run(container.id, "open('/mnt/data/kept.txt', 'w').write('k')")
    name = session_name(runner.project, container.id)
    assert inspect(name) is not None
    sql(
        server_env["ASSISTANTD_DATABASE_URL"],
        "UPDATE containers SET expires_at = :at WHERE id = :id",
        at=int(time.time()) - 1,
        id=container.id,
    )
    wait_until(lambda: inspect(name), lambda info: info is None, what="the sweep")
    assert client.containers.retrieve(container.id).status == "expired"
    with pytest.raises(ToolUnavailable, match="Container is expired"):
        await runner.run(container.id, "print(1)")
    assert inspect(name) is None
