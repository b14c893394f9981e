"""Whose sandboxes are whose: installations sharing one Docker engine only ever remove their own
containers, and a container goes with what it was made for (its conversation, the response that
started it, its thread) or when it expires. Real code, real Docker."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from openai import NotFoundError
from openai.types.responses import Response

from assistantd.sandbox.containers import session_name
from tests.sandbox.conftest import (
    SandboxServer,
    code_call,
    container_names,
    run_code,
    wait_until,
)
from tests.sandbox.test_responses import AUTO, sandbox_sql
from tests.support.scripted_model import Reply, ScriptedModel

ORPHAN_SECONDS = "1"


@pytest.fixture(scope="module")
def sandbox(docker: None, sandbox_servers: Callable[..., SandboxServer]) -> SandboxServer:
    return sandbox_servers({"ASSISTANTD_SANDBOX_ORPHAN_SECONDS": ORPHAN_SECONDS})


def crash(server: SandboxServer) -> None:
    """SIGKILL the server's processes, leaving its sandboxes behind."""
    if server.worker is not None:
        server.worker.kill()
    server.api.kill()


def auto_response(
    server: SandboxServer, model: ScriptedModel, marker: str, code: str, **extra: object
) -> tuple[str, str]:
    """A response that runs `code` in an auto container: (its id, the container's id)."""
    model.script(marker, code_call(code), Reply(text="done"))
    response: Response = server.client.responses.create(
        model="gpt-4o",
        input=f"run it {marker}",
        tools=[AUTO],  # type: ignore[list-item]
        **extra,  # type: ignore[arg-type]
    )
    assert response.status == "completed", response.error
    call = response.output[0]
    assert call.type == "code_interpreter_call"
    assert call.status == "completed"
    return response.id, call.container_id


def gone(name: str) -> None:
    wait_until(container_names, lambda found: name not in found, what=f"{name} to be removed")


def test_an_installation_never_sweeps_another_ones_sandboxes(
    sandbox_servers: Callable[..., SandboxServer], docker: None, model: ScriptedModel
) -> None:
    env = {"ASSISTANTD_SANDBOX_ORPHAN_SECONDS": ORPHAN_SECONDS}
    first, second = sandbox_servers(env), sandbox_servers(env)
    names = {}
    for server in (first, second):
        assistant = server.client.beta.assistants.create(
            model="gpt-4o", tools=[{"type": "code_interpreter"}]
        )
        thread = server.client.beta.threads.create()
        run, _ = run_code(server.client, model, assistant, thread.id, "kept = 1")
        assert run.status == "completed", run.last_error
        names[server.tag] = session_name(server.project, thread.id)
    assert set(names.values()) <= container_names()
    # Both processes die; the second installation starts again and sweeps up its own orphan
    # (unused for longer than ASSISTANTD_SANDBOX_ORPHAN_SECONDS, its process dead)...
    crash(first)
    second.restart(crash=True)
    wait_until(
        container_names,
        lambda found: names[second.tag] not in found,
        timeout=60,
        what="the second installation's orphaned sandbox to be swept",
    )
    # ... in the same pass that saw the first installation's, an orphan just as old on the
    # same engine and host: that one is not its to remove.
    assert names[first.tag] in container_names()


def test_deleting_a_conversation_removes_its_auto_container(
    sandbox: SandboxServer, model: ScriptedModel, marker: str
) -> None:
    client = sandbox.client
    conversation = client.conversations.create()
    _, container_id = auto_response(
        sandbox, model, marker, "kept = 1", conversation=conversation.id
    )
    name = session_name(sandbox.project, container_id)
    assert name in container_names()
    client.conversations.delete(conversation.id)
    gone(name)
    with pytest.raises(NotFoundError):
        client.containers.retrieve(container_id)


def test_deleting_a_response_removes_the_auto_container_it_started(
    sandbox: SandboxServer, model: ScriptedModel, marker: str
) -> None:
    client = sandbox.client
    head, container_id = auto_response(sandbox, model, marker, "kept = 1")
    name = session_name(sandbox.project, container_id)
    # The chain's next response runs in the same container, which stays the first one's.
    later, same = auto_response(
        sandbox, model, f"{marker}-2", "print(kept)", previous_response_id=head
    )
    assert same == container_id
    client.responses.delete(later)
    assert name in container_names()
    assert client.containers.retrieve(container_id).status == "running"
    client.responses.delete(head)
    gone(name)
    with pytest.raises(NotFoundError):
        client.containers.retrieve(container_id)


def test_deleting_a_thread_removes_its_sandbox(
    sandbox: SandboxServer, model: ScriptedModel
) -> None:
    client = sandbox.client
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[{"type": "code_interpreter"}])
    thread = client.beta.threads.create()
    run, _ = run_code(client, model, assistant, thread.id, "kept = 1")
    assert run.status == "completed", run.last_error
    name = session_name(sandbox.project, thread.id)
    assert name in container_names()
    client.beta.threads.delete(thread.id)
    gone(name)


def test_an_expired_auto_container_is_removed(
    sandbox: SandboxServer, model: ScriptedModel, marker: str
) -> None:
    client = sandbox.client
    _, container_id = auto_response(sandbox, model, marker, "kept = 1")
    container = client.containers.retrieve(container_id)
    assert container.expires_after.minutes == 20  # OpenAI's default for an auto container
    name = session_name(sandbox.project, container_id)
    assert name in container_names()
    # Its 20 idle minutes are up (the worker's sweep, on the reaper's beat, carries it out).
    sandbox_sql(sandbox, "UPDATE containers SET expires_at = 1 WHERE id = :id", id=container_id)
    gone(name)
    assert client.containers.retrieve(container_id).status == "expired"
