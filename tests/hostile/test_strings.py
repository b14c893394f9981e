"""The text rule: a NUL or an unpaired surrogate in any string of a request is a 400 naming the
parameter, on every route family, before anything reaches a database. Model output carrying
them is stored scrubbed and the run completes."""

from __future__ import annotations

import time

import pytest

from tests.hostile.conftest import Attack, error_of
from tests.support.scripted_model import Reply, ScriptedModel, ToolCall

NUL = "\\u0000"
LONE = "\\ud83d"

# (path, raw JSON body with {bad} where the bad string goes, the param named)
BODIES = [
    ("/assistants", '{"model": "gpt-4o", "name": "a{bad}b"}', "name"),
    ("/assistants", '{"model": "gpt-4o", "instructions": "{bad}"}', "instructions"),
    ("/assistants", '{"model": "gpt-4o", "metadata": {"k": "v{bad}"}}', "metadata.k"),
    ("/assistants", '{"model": "gpt-4o", "metadata": {"k{bad}": "v"}}', "metadata"),
    (
        "/assistants",
        '{"model": "gpt-4o", "tools": [{"type": "function", "function": {"name": "f", '
        '"description": "d{bad}"}}]}',
        "tools[0].function.description",
    ),
    ("/assistants", '{"model": "gpt{bad}"}', "model"),
    ("/threads", '{"messages": [{"role": "user", "content": "hi {bad}"}]}', "messages[0].content"),
    (
        "/threads",
        '{"messages": [{"role": "user", "content": [{"type": "text", "text": "{bad}"}]}]}',
        "messages[0].content[0].text",
    ),
    ("/threads/thread_x/messages", '{"role": "user", "content": "{bad}"}', "content"),
    (
        "/threads/thread_x/runs",
        '{"assistant_id": "asst_x", "additional_instructions": "{bad}"}',
        "additional_instructions",
    ),
    ("/threads/thread_x/runs", '{"assistant_id": "asst_{bad}"}', "assistant_id"),
    (
        "/threads/thread_x/runs/run_x/submit_tool_outputs",
        '{"tool_outputs": [{"tool_call_id": "call_1", "output": "{bad}"}]}',
        "tool_outputs[0].output",
    ),
    ("/responses", '{"model": "gpt-4o", "input": "{bad}"}', "input"),
    ("/responses", '{"model": "gpt-4o", "input": "hi", "instructions": "{bad}"}', "instructions"),
    (
        "/conversations",
        '{"items": [{"type": "message", "role": "user", "content": "{bad}"}]}',
        "items[0].content",
    ),
    ("/containers", '{"name": "{bad}"}', "name"),
    ("/vector_stores", '{"name": "{bad}"}', "name"),
]


@pytest.mark.parametrize("bad", [NUL, LONE], ids=["nul", "lone-surrogate"])
@pytest.mark.parametrize(("path", "body", "param"), BODIES, ids=[f"{p}:{q}" for p, _, q in BODIES])
def test_body_strings(attack: Attack, path: str, body: str, param: str, bad: str) -> None:
    raw = body.replace("{bad}", bad).encode()
    response = attack.http.post(path, content=raw, headers={"Content-Type": "application/json"})
    error = error_of(response, 400)
    assert error["param"] == param
    assert ("NUL" if bad == NUL else "unpaired surrogate") in error["message"]
    if path.startswith(("/responses", "/conversations", "/containers")):
        assert error["code"] == "invalid_value"


def test_surrogate_as_utf8_bytes(attack: Attack) -> None:
    """The bytes of a lone surrogate (which Python's JSON decoder lets through) count too."""
    raw = b'{"model": "gpt-4o", "name": "a\xed\xa0\xbd"}'
    response = attack.http.post("/assistants", content=raw)
    assert error_of(response, 400)["param"] == "name"


def test_a_pair_is_text(attack: Attack) -> None:
    """A surrogate pair escaped in JSON is one character, and fine; so is an escaped backslash
    before `u0000`."""
    raw = b'{"model": "gpt-4o", "name": "\\ud83d\\ude00 \\\\u0000"}'
    response = attack.http.post("/assistants", content=raw)
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "\U0001f600 \\u0000"


@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/assistants/asst_%00", "assistant_id"),
        ("/threads/thread_%00/messages", "thread_id"),
        ("/threads/thread_x/runs/run_%00", "run_id"),
        ("/responses/resp_%00", "response_id"),
        ("/conversations/conv_%00/items", "conversation_id"),
        ("/files/file-%ED%A0%BD", "file_id"),
    ],
)
def test_path_ids(attack: Attack, path: str, param: str) -> None:
    for method in ("GET", "POST", "DELETE"):
        response = attack.http.request(method, path, json={} if method == "POST" else None)
        if response.status_code == 405:
            continue
        error = error_of(response, 400)
        assert error["param"] == param
        assert error["code"] == "invalid_value"


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("/assistants?after=asst_%00", "after"),
        ("/assistants?before=%00", "before"),
        ("/threads/thread_x/messages?run_id=run_%00", "run_id"),
        ("/responses/resp_x/input_items?after=%00", "after"),
    ],
)
def test_query(attack: Attack, query: str, param: str) -> None:
    error = error_of(attack.http.get(query), 400)
    assert error["param"] == param


@pytest.mark.parametrize("query", ["after=%FF%FE", "after=%ED%A0%BD", "%FF=1"])
def test_query_not_utf8(attack: Attack, query: str) -> None:
    """Bytes that are no UTF-8 reach the routes as U+FFFD: an ordinary unknown cursor."""
    response = attack.http.get(f"/assistants?{query}")
    assert response.status_code < 500, response.text


def test_malformed_id(attack: Attack) -> None:
    error = error_of(attack.http.get("/assistants/asst_a.b"), 400)
    assert error["code"] == "invalid_value"
    assert error["param"] == "assistant_id"
    assert "letters, numbers, underscores, or dashes" in error["message"]


def _wait_run(attack: Attack, thread_id: str, run_id: str) -> dict[str, object]:
    deadline = time.monotonic() + 60
    while True:
        run = attack.http.get(f"/threads/{thread_id}/runs/{run_id}").json()
        if run["status"] not in ("queued", "in_progress"):
            return dict(run)
        assert time.monotonic() < deadline, run
        time.sleep(0.05)


def test_model_output_is_stored_scrubbed(attack: Attack, model: ScriptedModel) -> None:
    """A model answering NUL and half a surrogate pair: the run completes, the text stored
    with U+FFFD in their places, on both databases."""
    model.script("hostile-output", Reply(text="a\x00b\ud83dc"))
    http = attack.http
    assistant = http.post("/assistants", json={"model": "gpt-4o"}).json()
    thread = http.post(
        "/threads", json={"messages": [{"role": "user", "content": "hostile-output"}]}
    ).json()
    run = http.post(f"/threads/{thread['id']}/runs", json={"assistant_id": assistant["id"]}).json()
    done = _wait_run(attack, thread["id"], run["id"])
    assert done["status"] == "completed", done
    messages = http.get(f"/threads/{thread['id']}/messages").json()["data"]
    assert messages[0]["content"][0]["text"]["value"] == "a\ufffdb\ufffdc"


def test_tool_call_arguments_and_outputs(attack: Attack, model: ScriptedModel) -> None:
    """A function call whose arguments hold NUL (from the model), answered with an output that
    holds none (the client's is checked): requires_action, then completed."""
    model.script(
        "hostile-call",
        Reply(tool_calls=[ToolCall("f", '{"x": "\x00\ud83d"}')]),
        Reply(text="done"),
    )
    http = attack.http
    tools = [{"type": "function", "function": {"name": "f", "description": "d"}}]
    assistant = http.post("/assistants", json={"model": "gpt-4o", "tools": tools}).json()
    thread = http.post(
        "/threads", json={"messages": [{"role": "user", "content": "hostile-call"}]}
    ).json()
    run = http.post(f"/threads/{thread['id']}/runs", json={"assistant_id": assistant["id"]}).json()
    waiting = _wait_run(attack, thread["id"], run["id"])
    assert waiting["status"] == "requires_action", waiting
    call = waiting["required_action"]["submit_tool_outputs"]["tool_calls"][0]  # type: ignore[index]
    assert call["function"]["arguments"] == '{"x": "\ufffd\ufffd"}'
    bad = http.post(
        f"/threads/{thread['id']}/runs/{run['id']}/submit_tool_outputs",
        content=b'{"tool_outputs": [{"tool_call_id": "%s", "output": "\\u0000"}]}'
        % call["id"].encode(),
    )
    assert error_of(bad, 400)["param"] == "tool_outputs[0].output"
    http.post(
        f"/threads/{thread['id']}/runs/{run['id']}/submit_tool_outputs",
        json={"tool_outputs": [{"tool_call_id": call["id"], "output": "ok"}]},
    ).raise_for_status()
    assert _wait_run(attack, thread["id"], run["id"])["status"] == "completed"
