"""Hostile code: each attack is contained, and the session stays usable or restarts cleanly."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from openai import OpenAI
from openai.types.beta import Assistant

from tests.sandbox.conftest import GVISOR, SandboxServer, logs_of, run_code, tool_output
from tests.support.scripted_model import ScriptedModel

TIME_LIMIT = 3


@pytest.fixture(scope="module")
def sandbox(docker: None, sandbox_servers: Callable[..., SandboxServer]) -> SandboxServer:
    """A short time limit, so runaway code is stopped quickly."""
    return sandbox_servers({"ASSISTANTD_SANDBOX_EXEC_TIMEOUT_SECONDS": str(TIME_LIMIT)})


def still_usable(
    client: OpenAI, model: ScriptedModel, assistant: Assistant, thread_id: str
) -> None:
    run, call = run_code(client, model, assistant, thread_id, "print('still here')")
    assert run.status == "completed", run.last_error
    assert logs_of(call) == "still here"


def test_no_network(client: OpenAI, model: ScriptedModel, assistant: Assistant) -> None:
    thread = client.beta.threads.create()
    code = (
        "import socket\n"
        "results = []\n"
        "for target in [('1.1.1.1', 53), ('172.17.0.1', 2375), ('8.8.8.8', 443)]:\n"
        "    try:\n"
        "        socket.create_connection(target, timeout=2)\n"
        "        results.append('connected')\n"
        "    except OSError as exc:\n"
        "        results.append(type(exc).__name__)\n"
        "try:\n"
        "    socket.gethostbyname('example.com')\n"
        "    results.append('resolved')\n"
        "except OSError:\n"
        "    results.append('no dns')\n"
        "print(results)\n"
        "print([name for _, name in socket.if_nameindex()])"
    )
    run, call = run_code(client, model, assistant, thread.id, code)
    assert run.status == "completed", run.last_error
    logs = logs_of(call)
    assert "connected" not in logs
    assert "resolved" not in logs
    assert "no dns" in logs
    assert logs.endswith("['lo']")
    still_usable(client, model, assistant, thread.id)


def test_fork_bomb(client: OpenAI, model: ScriptedModel, assistant: Assistant) -> None:
    thread = client.beta.threads.create()
    run_code(client, model, assistant, thread.id, "kept = 'before the bomb'")
    run, call = run_code(
        client, model, assistant, thread.id, "import os\nwhile True:\n    os.fork()"
    )
    assert run.status == "completed", run.last_error
    logs = logs_of(call)
    if GVISOR and "kernel died" in logs:
        # gVisor may stop the whole sandbox instead of failing the forks: contained all the
        # same, and the next call gets a fresh sandbox.
        still_usable(client, model, assistant, thread.id)
        return
    assert "BlockingIOError" in logs or "ExecutionTimeout" in logs, logs
    # Nothing the bomb started is left running, and the variables survived.
    code = "import os\nprint(kept, len([p for p in os.listdir('/proc') if p.isdigit()]))"
    run, call = run_code(client, model, assistant, thread.id, code)
    kept, processes = logs_of(call).rsplit(" ", 1)
    assert kept == "before the bomb"
    assert int(processes) <= 3  # init, the kernel, maybe the listing's own /proc entry


def test_memory_bomb(client: OpenAI, model: ScriptedModel, assistant: Assistant) -> None:
    thread = client.beta.threads.create()
    code = "blocks = []\nwhile True:\n    blocks.append(bytearray(64 * 1024 * 1024))"
    run, call = run_code(client, model, assistant, thread.id, code)
    assert run.status == "completed", run.last_error
    logs = logs_of(call)
    # Killed by the kernel's OOM killer (usual), refused the memory, or, on a very busy
    # machine, stopped at the time limit first: contained in every case.
    assert (
        "ran out of memory (the limit is 512 MiB). The session was restarted" in logs
        or "MemoryError" in logs
        or "ExecutionTimeout" in logs
    ), logs
    still_usable(client, model, assistant, thread.id)


def test_infinite_loop_is_interrupted(
    client: OpenAI, model: ScriptedModel, assistant: Assistant
) -> None:
    thread = client.beta.threads.create()
    run_code(client, model, assistant, thread.id, "counter = 5")
    run, call = run_code(client, model, assistant, thread.id, "while True:\n    counter += 1")
    assert run.status == "completed", run.last_error
    logs = logs_of(call)
    assert logs.endswith(
        f"ExecutionTimeout: the code ran for longer than the {TIME_LIMIT} s limit and was stopped"
    )
    assert "ExecutionTimeout" in tool_output(model, call["id"])
    run, call = run_code(client, model, assistant, thread.id, "counter > 5")
    assert logs_of(call) == "True"  # interrupted, not restarted: the state is still there


def test_loop_that_swallows_the_interrupt_is_killed(
    client: OpenAI, model: ScriptedModel, assistant: Assistant
) -> None:
    thread = client.beta.threads.create()
    code = (
        "import time\n"
        "while True:\n"
        "    try:\n"
        "        time.sleep(10)\n"
        "    except BaseException:\n"
        "        pass"
    )
    run, call = run_code(client, model, assistant, thread.id, code)
    assert run.status == "completed", run.last_error
    logs = logs_of(call)
    assert f"past the {TIME_LIMIT} s time limit and could not be interrupted" in logs
    assert "The session was restarted" in logs
    still_usable(client, model, assistant, thread.id)


def test_writing_10_gb(client: OpenAI, model: ScriptedModel, assistant: Assistant) -> None:
    thread = client.beta.threads.create()
    code = (
        "written = 0\n"
        "try:\n"
        "    with open('/mnt/data/huge.bin', 'wb') as f:\n"
        "        for _ in range(10 * 1024):\n"
        "            f.write(b'\\0' * (1024 * 1024))\n"
        "            written += 1\n"
        "except OSError as exc:\n"
        "    print('stopped after', written, 'MiB:', exc.strerror)\n"
        "for path in ['/huge.bin', '/etc/huge.bin', '/opt/huge.bin']:\n"
        "    try:\n"
        "        open(path, 'wb')\n"
        "    except OSError as exc:\n"
        "        print(path, exc.strerror)"
    )
    run, call = run_code(client, model, assistant, thread.id, code)
    assert run.status == "completed", run.last_error
    first, *others = logs_of(call).splitlines()
    assert first.startswith("stopped after ")
    assert first.endswith(" MiB: No space left on device")
    assert int(first.split()[2]) <= 32  # ASSISTANTD_SANDBOX_DATA_MB
    # runc's read-only root says so; gVisor refuses the write as a permission matter
    refusal = "Permission denied" if GVISOR else "Read-only file system"
    assert others == [
        f"/huge.bin {refusal}",
        f"/etc/huge.bin {refusal}",
        f"/opt/huge.bin {refusal}",
    ]
    # Too large to become a file (ASSISTANTD_SANDBOX_MAX_FILE_MB=8); the model is told.
    assert "/mnt/data/huge.bin" in tool_output(model, call["id"])
    assert "cannot be offered for download" in tool_output(model, call["id"])

    # Printing gigabytes is cut at the output cap.
    run, call = run_code(
        client, model, assistant, thread.id, "for _ in range(20):\n    print('y' * 10**7)"
    )
    logs = logs_of(call)
    assert logs.startswith("y" * 5000)
    assert logs.endswith("more characters of output were cut]")
    assert len(logs) < 6000
    run, call = run_code(
        client,
        model,
        assistant,
        thread.id,
        "import os\nos.remove('/mnt/data/huge.bin')\nopen('small.txt', 'w').write('fine')",
    )
    assert "[File saved: sandbox:/mnt/data/small.txt (4 bytes)]" in tool_output(model, call["id"])


def test_a_full_tmp_does_not_break_the_kernel(
    client: OpenAI, model: ScriptedModel, assistant: Assistant
) -> None:
    """The kernel keeps its captured output in memory, off /tmp, which the code can fill; and
    processes flooding the output hit a fixed capture size, not the sandbox's memory."""
    thread = client.beta.threads.create()
    code = (
        "kept = 'same kernel'\n"
        "try:\n"
        "    with open('/tmp/fill', 'wb') as f:\n"
        "        while True:\n"
        "            f.write(b'x' * (1024 * 1024))\n"
        "except OSError as exc:\n"
        "    print('/tmp:', exc.strerror)"
    )
    run, call = run_code(client, model, assistant, thread.id, code)
    assert run.status == "completed", run.last_error
    assert logs_of(call) == "/tmp: No space left on device"
    still_usable(client, model, assistant, thread.id)
    # (not `yes | head`: under gVisor with a pids limit, a child dying of SIGPIPE takes the
    # kernel down with it, a gVisor quirk independent of the capture)
    child = "import os\\nwhile True: os.write(1, b'y\\\\n' * 65536)"
    flood = f'import subprocess, sys\nsubprocess.run([sys.executable, "-c", "{child}"])\nprint(1)'
    run, call = run_code(client, model, assistant, thread.id, flood)
    assert run.status == "completed", run.last_error
    logs = logs_of(call)
    assert logs.startswith("y\ny\n")
    assert logs.endswith("more characters of output were cut]")
    assert len(logs) < 6000
    still_usable(client, model, assistant, thread.id)
    # the same kernel all along: the variables of the first cell are still there
    run, call = run_code(client, model, assistant, thread.id, "print(kept)")
    assert logs_of(call) == "same kernel"


def test_host_is_not_visible(
    client: OpenAI, model: ScriptedModel, assistant: Assistant, tmp_path: Path
) -> None:
    secret = tmp_path / "host-secret.txt"
    secret.write_text("the host's secret")
    thread = client.beta.threads.create()
    code = (
        "import os, socket\n"
        f"print(os.path.exists({str(secret)!r}), os.path.exists({str(Path.cwd())!r}))\n"
        "print(os.path.exists('/var/run/docker.sock'), os.getuid(), os.getgid())\n"
        "print(sorted(k for k in os.environ if 'KEY' in k or 'ASSISTANTD' in k or 'TOKEN' in k))\n"
        "print(open('/proc/1/cmdline').read().split('\\0')[0])\n"
        "print(socket.gethostname())\n"
        "print(open('/proc/self/status').read().split('CapEff:')[1].split()[0])"
    )
    run, call = run_code(client, model, assistant, thread.id, code)
    assert run.status == "completed", run.last_error
    lines = logs_of(call).splitlines()
    assert lines[0] == "False False"
    assert lines[1] == "False 1000 1000"
    assert lines[2] == "[]"
    assert lines[3].endswith("docker-init")
    assert lines[4] != socket.gethostname()
    assert lines[5] == "0000000000000000"  # no capabilities


def test_file_names_cannot_escape_mnt_data(
    client: OpenAI, model: ScriptedModel, assistant: Assistant
) -> None:
    names = ["../../tmp/evil.py", "..", "/etc/passwd", "dir\\..\\win.txt", ".hidden", "..."]
    uploaded = [
        client.files.create(file=(name, f"content of {name!r}".encode()), purpose="assistants")
        for name in names
    ]
    thread = client.beta.threads.create()
    code = (
        "import os\n"
        "print(sorted(os.listdir('/mnt/data')))\n"
        "print(os.path.exists('/tmp/evil.py'), open('/etc/passwd').read().count('content'))\n"
        "print(open('/mnt/data/passwd').read())"
    )
    run, call = run_code(
        client,
        model,
        assistant,
        thread.id,
        code,
        attachments=[{"file_id": f.id, "tools": [{"type": "code_interpreter"}]} for f in uploaded],
    )
    assert run.status == "completed", run.last_error
    listing, escaped, passwd = logs_of(call).splitlines()
    expected = sorted(["evil.py", uploaded[1].id, "passwd", "win.txt", "hidden", uploaded[5].id])
    assert listing == str(expected)
    assert escaped == "False 0"
    assert passwd == "content of '/etc/passwd'"
