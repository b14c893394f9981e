"""Code interpreter sessions: state, errors, files in and out, annotations, streaming,
concurrency, idle cleanup and restarts; real code in real containers."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable

from openai import OpenAI
from openai.types.beta import Assistant

from assistantd.sandbox.containers import session_name
from tests.sandbox.conftest import (
    FUNCTION,
    SandboxServer,
    code_call,
    container_names,
    images_of,
    logs_of,
    run_code,
    tool_output,
    wait_until,
)
from tests.support.scripted_model import Reply, ScriptedModel, ToolCall


def test_variables_and_imports_persist(
    client: OpenAI, model: ScriptedModel, assistant: Assistant
) -> None:
    thread = client.beta.threads.create()
    run, call = run_code(client, model, assistant, thread.id, "import math\nx = 21")
    assert run.status == "completed", run.last_error
    assert call["code_interpreter"]["outputs"] == []
    assert "printed nothing" in tool_output(model, call["id"])

    code = "print('doubled:')\nmath.floor(x * 2.5) - 10"
    run, call = run_code(client, model, assistant, thread.id, code)
    assert run.status == "completed", run.last_error
    # Printed output, then the value of the last expression, as a notebook shows them.
    assert logs_of(call) == "doubled:\n42"
    assert call["code_interpreter"]["input"] == code
    assert tool_output(model, call["id"]) == "doubled:\n42"


def test_exception_traceback_goes_to_the_model(
    client: OpenAI, model: ScriptedModel, assistant: Assistant
) -> None:
    thread = client.beta.threads.create()
    code = "def ratio(a, b):\n    return a / b\n\nprint('before')\nratio(1, 0)"
    run, call = run_code(client, model, assistant, thread.id, code)
    assert run.status == "completed", run.last_error
    logs = logs_of(call)
    assert logs.startswith("before\nTraceback (most recent call last):")
    assert "line 5, in <module>" in logs
    assert "return a / b" in logs
    assert logs.endswith("ZeroDivisionError: division by zero")
    assert "kernel" not in logs.lower()  # no frames of the sandbox's own machinery
    assert "ZeroDivisionError: division by zero" in tool_output(model, call["id"])

    run, call = run_code(client, model, assistant, thread.id, "ratio(6, 3)")
    assert logs_of(call) == "2.0"

    run, call = run_code(client, model, assistant, thread.id, "def broken(:\n    pass")
    assert "SyntaxError" in logs_of(call)


def test_several_calls_in_one_turn_run_in_order(
    client: OpenAI, model: ScriptedModel, assistant: Assistant, marker: str
) -> None:
    thread = client.beta.threads.create(messages=[{"role": "user", "content": marker}])
    model.script(
        marker,
        Reply(
            tool_calls=[
                ToolCall(FUNCTION, '{"code": "import time\\ntime.sleep(0.3)\\nvalue = 7"}'),
                ToolCall(FUNCTION, '{"code": "value * 6"}'),
            ]
        ),
        Reply(text="42"),
    )
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=20
    )
    assert run.status == "completed", run.last_error
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc")
    calls = [c.model_dump() for s in steps for c in getattr(s.step_details, "tool_calls", [])]
    assert [logs_of(c) for c in calls] == ["", "42"]


def test_files_in_from_resources_and_attachments(client: OpenAI, model: ScriptedModel) -> None:
    table = client.files.create(file=("table.csv", b"a,b\n1,2\n3,4\n"), purpose="assistants")
    notes = client.files.create(file=("notes.txt", b"thread notes"), purpose="assistants")
    attached = client.files.create(file=("attached.json", b'{"k": 1}'), purpose="assistants")
    searched = client.files.create(file=("search-only.txt", b"no"), purpose="assistants")
    assistant = client.beta.assistants.create(
        model="gpt-4o",
        tools=[{"type": "code_interpreter"}],
        tool_resources={"code_interpreter": {"file_ids": [table.id]}},
    )
    thread = client.beta.threads.create(
        tool_resources={"code_interpreter": {"file_ids": [notes.id]}}
    )
    code = (
        "import os, pandas as pd\n"
        "print(sorted(os.listdir('/mnt/data')))\n"
        "print(pd.read_csv('/mnt/data/table.csv')['b'].sum())\n"
        "print(open('notes.txt').read())"
    )
    run, call = run_code(
        client,
        model,
        assistant,
        thread.id,
        code,
        attachments=[
            {"file_id": attached.id, "tools": [{"type": "code_interpreter"}]},
            {"file_id": searched.id, "tools": [{"type": "file_search"}]},
        ],
    )
    assert run.status == "completed", run.last_error
    assert logs_of(call) == "['attached.json', 'notes.txt', 'table.csv']\n6\nthread notes"
    told = tool_output(model, call["id"])
    assert told.startswith("[Files copied to /mnt/data: table.csv, notes.txt, attached.json]")

    # A file attached later arrives in the running session; the others are not copied again.
    late = client.files.create(file=("table.csv", b"late"), purpose="assistants")
    run, call = run_code(
        client,
        model,
        assistant,
        thread.id,
        "print(sorted(os.listdir()))\nprint(open('table-2.csv').read())",
        attachments=[{"file_id": late.id, "tools": [{"type": "code_interpreter"}]}],
    )
    assert logs_of(call) == "['attached.json', 'notes.txt', 'table-2.csv', 'table.csv']\nlate"
    assert tool_output(model, call["id"]).startswith("[Files copied to /mnt/data: table-2.csv]")


def test_files_out_with_file_path_annotations(client: OpenAI, model: ScriptedModel) -> None:
    source = client.files.create(file=("input.csv", b"x\n1\n2\n"), purpose="assistants")
    assistant = client.beta.assistants.create(
        model="gpt-4o",
        tools=[{"type": "code_interpreter"}],
        tool_resources={"code_interpreter": {"file_ids": [source.id]}},
    )
    thread = client.beta.threads.create()
    code = (
        "import pandas as pd\n"
        "df = pd.read_csv('input.csv')\n"
        "df['y'] = df['x'] * 10\n"
        "df.to_csv('/mnt/data/report with space.csv', index=False)\n"
        "open('/mnt/data/input.csv', 'a').write('3\\n')\n"
        "import os; os.makedirs('sub', exist_ok=True); open('sub/deep.txt', 'w').write('deep')\n"
        "os.symlink('/etc/passwd', '/mnt/data/passwd-link')"
    )
    reply = (
        "Here is [the report](sandbox:/mnt/data/report%20with%20space.csv) and the updated "
        "input: sandbox:/mnt/data/input.csv. Also sandbox:/mnt/data/unknown.csv."
    )
    run, call = run_code(client, model, assistant, thread.id, code, reply=reply)
    assert run.status == "completed", run.last_error
    told = tool_output(model, call["id"])
    assert "[File saved: sandbox:/mnt/data/report with space.csv (" in told
    assert "[File saved: sandbox:/mnt/data/input.csv (" in told
    assert "[File saved: sandbox:/mnt/data/sub/deep.txt (" in told
    assert "passwd" not in told

    (message,) = client.beta.threads.messages.list(thread.id, run_id=run.id).data
    (part,) = message.content
    assert part.type == "text"
    text = part.text.value
    annotations = part.text.annotations
    assert [a.type for a in annotations] == ["file_path", "file_path"]
    report, updated = annotations
    assert text[report.start_index : report.end_index] == report.text
    assert report.text == "sandbox:/mnt/data/report%20with%20space.csv"
    assert text[updated.start_index : updated.end_index] == "sandbox:/mnt/data/input.csv"
    assert client.files.content(report.file_path.file_id).read() == b"x,y\n1,10\n2,20\n"
    assert client.files.content(updated.file_path.file_id).read() == b"x\n1\n2\n3\n"
    report_file = client.files.retrieve(report.file_path.file_id)
    assert report_file.filename == "report with space.csv"
    assert report_file.purpose == "assistants_output"

    # A later call in the thread may link a file an earlier run produced.
    run, call = run_code(
        client, model, assistant, thread.id, "1", reply="Again: sandbox:/mnt/data/input.csv"
    )
    message = client.beta.threads.messages.list(thread.id, run_id=run.id).data[0]
    (annotation,) = message.content[0].text.annotations
    assert annotation.file_path.file_id == updated.file_path.file_id


def test_figures_and_show_become_images(
    client: OpenAI, model: ScriptedModel, assistant: Assistant
) -> None:
    thread = client.beta.threads.create()
    code = (
        "import matplotlib.pyplot as plt\n"
        "plt.plot([1, 2, 3])\n"
        "plt.show()\n"
        "print('between')\n"
        "fig, ax = plt.subplots()\n"
        "ax.bar(['a', 'b'], [3, 1])"
    )
    run, call = run_code(client, model, assistant, thread.id, code, reply="Two charts.")
    assert run.status == "completed", run.last_error
    outputs = call["code_interpreter"]["outputs"]
    assert [o["type"] for o in outputs] == ["logs", "image", "image"]
    assert outputs[0]["logs"].startswith("between\n")  # then the repr of the BarContainer
    first, second = images_of(call)
    (message,) = client.beta.threads.messages.list(thread.id, run_id=run.id).data
    assert [p.type for p in message.content] == ["image_file", "image_file", "text"]
    assert [p.image_file.file_id for p in message.content[:2]] == [first, second]
    assert client.files.content(first).read().startswith(b"\x89PNG\r\n\x1a\n")
    # Figures are closed once shown: the next call shows nothing again.
    run, call = run_code(client, model, assistant, thread.id, "1 + 1")
    assert images_of(call) == []


FIGURES = """
import hashlib, io
import numpy as np
import matplotlib.pyplot as plt

def make(kind):
    if kind == "sine":
        x = np.linspace(0, 4 * np.pi, 1000)
        fig = plt.figure(figsize=(10, 5))
        plt.plot(x, np.sin(x), label="sin(x)")
        plt.title("Sine Wave")
        plt.grid(True)
        plt.legend()
    elif kind == "constrained":
        fig, axs = plt.subplots(1, 3, figsize=(9, 3), layout="constrained")
        for ax in axs:
            ax.plot([3, 1, 2])
            ax.set_xlabel("x label")
        fig.suptitle("constrained")
    else:
        fig = plt.figure()
        fig.add_subplot(projection="3d").plot([0, 1], [0, 1], [0, 1])
    return fig

def tight(kind):
    fig = make(kind)
    out = io.BytesIO()
    fig.savefig(out, format="png", bbox_inches="tight")
    plt.close(fig)
    return hashlib.sha256(out.getvalue()).hexdigest()

print(*(tight(kind) for kind in ("sine", "constrained", "3d")))
for kind in ("sine", "constrained", "3d"):
    make(kind)
plt.show()
"""


def test_figures_are_cropped_as_jupyter_crops_them(
    client: OpenAI, model: ScriptedModel, assistant: Assistant
) -> None:
    """Shown figures are the bytes `savefig(bbox_inches="tight")` makes (Jupyter's crop), also
    where the kernel finds the box without matplotlib's extra draw (a flat figure)."""
    thread = client.beta.threads.create()
    run, call = run_code(client, model, assistant, thread.id, FIGURES)
    assert run.status == "completed", run.last_error
    logs = "".join(o["logs"] for o in call["code_interpreter"]["outputs"] if o["type"] == "logs")
    wanted = logs.split()
    shown = [hashlib.sha256(client.files.content(f).read()).hexdigest() for f in images_of(call)]
    assert shown == wanted


def test_step_deltas_stream_input_and_outputs(
    client: OpenAI, model: ScriptedModel, assistant: Assistant, marker: str
) -> None:
    thread = client.beta.threads.create(messages=[{"role": "user", "content": marker}])
    code = "import matplotlib.pyplot as plt\nprint('streamed')\nplt.plot([0, 1])"
    model.script(marker, code_call(code), Reply(text="ok"))
    deltas = []
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as s:
        for event in s:
            if event.event == "thread.run.step.delta":
                details = event.data.delta.step_details
                if details is not None and details.type == "tool_calls":
                    deltas.extend(details.tool_calls or [])
        final = s.get_final_run()
    assert final.status == "completed", final.last_error
    assert all(d.type == "code_interpreter" and d.index == 0 for d in deltas)
    assert deltas[0].id is not None
    inputs = "".join(d.code_interpreter.input or "" for d in deltas if d.code_interpreter)
    assert inputs == code
    outputs = [o for d in deltas if d.code_interpreter for o in d.code_interpreter.outputs or []]
    assert [(o.index, o.type) for o in outputs] == [(0, "logs"), (1, "image")]
    assert outputs[0].logs.startswith("streamed\n")


def test_two_threads_run_at_once_in_separate_containers(
    client: OpenAI, model: ScriptedModel, assistant: Assistant
) -> None:
    code = (
        "import time, socket, os\n"
        "start = time.time()\n"
        "time.sleep(2)\n"
        "open('/mnt/data/mine.txt', 'w').write(socket.gethostname())\n"
        "print(socket.gethostname(), sorted(os.listdir('/mnt/data')), start, time.time())"
    )
    threads = [client.beta.threads.create() for _ in range(2)]
    for thread in threads:  # both sessions started: what runs next is only the code
        run_code(client, model, assistant, thread.id, "pass")
    results: dict[str, str] = {}

    def work(thread_id: str) -> None:
        _, call = run_code(client, model, assistant, thread_id, code)
        results[thread_id] = logs_of(call)

    workers = [threading.Thread(target=work, args=(t.id,)) for t in threads]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    (host_a, files_a, start_a, end_a), (host_b, files_b, start_b, end_b) = (
        results[t.id].rsplit(" ", 2)[0].split(" ", 1) + results[t.id].rsplit(" ", 2)[1:]
        for t in threads
    )
    assert host_a != host_b
    assert files_a == files_b == "['mine.txt']"  # neither sees the other's files
    # They overlapped in time.
    assert float(start_a) < float(end_b)
    assert float(start_b) < float(end_a)


def test_idle_session_is_removed_then_recreated(
    docker: None, sandbox_servers: Callable[..., SandboxServer], model: ScriptedModel
) -> None:
    server = sandbox_servers(
        {"ASSISTANTD_SANDBOX_IDLE_TIMEOUT_SECONDS": "1", "ASSISTANTD_SANDBOX_POOL_SIZE": "0"}
    )
    client = server.client
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[{"type": "code_interpreter"}])
    thread = client.beta.threads.create()
    run, call = run_code(client, model, assistant, thread.id, "kept = 'state'\nkept")
    assert logs_of(call) == "'state'"
    name = session_name(server.project, thread.id)
    wait_until(container_names, lambda names: name not in names, what=f"{name} removed")

    run, call = run_code(client, model, assistant, thread.id, "print(kept)")
    assert run.status == "completed", run.last_error
    assert "NameError: name 'kept' is not defined" in logs_of(call)
    assert tool_output(model, call["id"]).startswith("[This ran in a new Python session")


def test_session_survives_a_server_restart(
    docker: None, sandbox_servers: Callable[..., SandboxServer], model: ScriptedModel
) -> None:
    server = sandbox_servers()
    assistant = server.client.beta.assistants.create(
        model="gpt-4o", tools=[{"type": "code_interpreter"}]
    )
    thread = server.client.beta.threads.create()
    run, call = run_code(
        server.client, model, assistant, thread.id, "survivor = 41\nopen('f.txt', 'w').write('x')"
    )
    assert run.status == "completed", run.last_error
    server.restart()
    run, call = run_code(
        server.client, model, assistant, thread.id, "import os\nprint(survivor + 1, os.listdir())"
    )
    assert run.status == "completed", run.last_error
    assert logs_of(call) == "42 ['f.txt']"


def test_sandboxes_of_a_dead_process_are_taken_over_or_removed(
    docker: None, sandbox_servers: Callable[..., SandboxServer], model: ScriptedModel
) -> None:
    server = sandbox_servers(
        {"ASSISTANTD_SANDBOX_ORPHAN_SECONDS": "8", "ASSISTANTD_SANDBOX_POOL_SIZE": "0"}
    )
    assistant = server.client.beta.assistants.create(
        model="gpt-4o", tools=[{"type": "code_interpreter"}]
    )
    unused, resumed = server.client.beta.threads.create(), server.client.beta.threads.create()
    for thread in (unused, resumed):
        run, _ = run_code(server.client, model, assistant, thread.id, "survivor = 41")
        assert run.status == "completed", run.last_error
    unused_name = session_name(server.project, unused.id)
    resumed_name = session_name(server.project, resumed.id)
    server.restart(crash=True)  # the process that started both sandboxes is gone
    # A thread used again soon re-attaches to its kernel: the new process takes it over.
    run, call = run_code(server.client, model, assistant, resumed.id, "print(survivor + 1)")
    assert logs_of(call) == "42"
    # The other is removed once unused for ASSISTANTD_SANDBOX_ORPHAN_SECONDS (not left for the
    # idle timeout, an hour).
    wait_until(container_names, lambda names: unused_name not in names, what="orphan removed")
    assert resumed_name in container_names()
    run, call = run_code(server.client, model, assistant, resumed.id, "print(survivor)")
    assert logs_of(call) == "41"


def test_deleting_a_thread_removes_its_sandbox_at_once(
    docker: None, sandbox: SandboxServer, model: ScriptedModel, assistant: Assistant
) -> None:
    thread = sandbox.client.beta.threads.create()
    run, _ = run_code(sandbox.client, model, assistant, thread.id, "x = 1")
    assert run.status == "completed", run.last_error
    name = session_name(sandbox.project, thread.id)
    assert name in container_names()
    sandbox.client.beta.threads.delete(thread.id)
    assert name not in container_names()


def test_cancelling_a_run_interrupts_its_code(
    client: OpenAI, model: ScriptedModel, assistant: Assistant, marker: str
) -> None:
    thread = client.beta.threads.create()
    run_code(client, model, assistant, thread.id, "step = -1")  # the session is up
    client.beta.threads.messages.create(thread.id, role="user", content=marker)
    model.script(marker, code_call("import time\nfor step in range(200):\n    time.sleep(0.1)"))
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    wait_until(
        lambda: client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data,
        lambda steps: any(s.type == "tool_calls" for s in steps),
        what="the code to start",
    )
    client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    wait_until(
        lambda: client.beta.threads.runs.retrieve(run.id, thread_id=thread.id).status,
        lambda status: status == "cancelled",
        what="the run to be cancelled",
    )
    started = time.monotonic()
    run, call = run_code(client, model, assistant, thread.id, "step")
    assert run.status == "completed", run.last_error
    assert 0 <= int(logs_of(call)) < 150  # it ran, and was interrupted part way
    assert time.monotonic() - started < 10  # and the next call did not wait for it
