"""Bounded input: integers within the reference's or the database's bounds, bodies within
ASSISTANTD_MAX_REQUEST_BYTES (and read only once the key is good), counts and long texts as
OpenAI caps them. Each ends as a 4xx naming the parameter."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tests.hostile.conftest import MAX_REQUEST_BYTES, Attack, Hostile, error_of

BIG_INTS = [2**31, 2**63, 10**23, 2**70]


@pytest.fixture(scope="module")
def real(hostile: Hostile) -> dict[str, str]:
    """A thread and a finished run of it, for paths that must name real ones (a path's
    unknown id is a 404 before the body is looked at)."""
    with hostile.http() as http:
        assistant = http.post("/assistants", json={"model": "gpt-4o"}).json()
        thread = http.post("/threads").json()
        run = http.post(f"/threads/{thread['id']}/runs", json={"assistant_id": assistant["id"]})
        run_id = run.json()["id"]
        deadline = time.monotonic() + 60
        while http.get(f"/threads/{thread['id']}/runs/{run_id}").json()["status"] in (
            "queued",
            "in_progress",
        ):
            assert time.monotonic() < deadline
            time.sleep(0.05)
    return {"thread_x": thread["id"], "run_x": run_id}


def _real(path: str, real: dict[str, str]) -> str:
    for fake, value in real.items():
        path = path.replace(fake, value)
    return path


def _run_body(**fields: object) -> dict[str, object]:
    return {"assistant_id": "asst_x", **fields}


@pytest.mark.parametrize("value", BIG_INTS)
@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        (
            "/threads/thread_x/runs",
            lambda v: _run_body(max_completion_tokens=v),
            "max_completion_tokens",
        ),
        ("/threads/thread_x/runs", lambda v: _run_body(max_prompt_tokens=v), "max_prompt_tokens"),
        (
            "/threads/thread_x/runs",
            lambda v: _run_body(truncation_strategy={"type": "last_messages", "last_messages": v}),
            "truncation_strategy.last_messages",
        ),
        ("/threads/runs", lambda v: _run_body(max_completion_tokens=v), "max_completion_tokens"),
        (
            "/assistants",
            lambda v: {
                "model": "m",
                "tools": [{"type": "file_search", "file_search": {"max_num_results": v}}],
            },
            "tools[0].file_search.max_num_results",
        ),
        (
            "/responses",
            lambda v: {"model": "m", "input": "x", "max_output_tokens": v},
            "max_output_tokens",
        ),
        (
            "/uploads",
            lambda v: {
                "filename": "a.txt",
                "purpose": "assistants",
                "bytes": v * 2**64,
                "mime_type": "text/plain",
            },
            "bytes",
        ),
        (
            "/vector_stores",
            lambda v: {
                "chunking_strategy": {
                    "type": "static",
                    "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": v},
                }
            },
            "chunking_strategy.static.chunk_overlap_tokens",
        ),
    ],
    ids=lambda x: x if isinstance(x, str) else None,
)
def test_integer_bounds(  # type: ignore[no-untyped-def]
    attack: Attack, real: dict[str, str], path: str, body, param: str, value: int
) -> None:
    error = error_of(attack.http.post(_real(path, real), json=body(value)), 400)
    assert error["param"] == param, error
    assert "above maximum" in error["message"] or "less than" in error["message"], error


def test_event_cursor_bound(attack: Attack) -> None:
    http = attack.http
    assistant = http.post("/assistants", json={"model": "gpt-4o"}).json()
    thread = http.post("/threads").json()
    run = http.post(f"/threads/{thread['id']}/runs", json={"assistant_id": assistant["id"]}).json()
    response = http.get(
        f"/threads/{thread['id']}/runs/{run['id']}/events", params={"after": 10**23}
    )
    assert error_of(response, 400)["param"] == "after"
    deadline = time.monotonic() + 60
    while http.get(f"/threads/{thread['id']}/runs/{run['id']}").json()["status"] in (
        "queued",
        "in_progress",
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "m", "top_p": False}, "top_p"),
        ({"model": "m", "temperature": "1"}, "temperature"),
        ({"model": "m", "name": 5}, "name"),
        ({"model": "m", "tool_resources": {"file_search": None}}, "tool_resources.file_search"),
        (
            {"model": "m", "tool_resources": {"code_interpreter": None}},
            "tool_resources.code_interpreter",
        ),
        (
            {"model": "m", "tools": [{"type": "file_search", "file_search": None}]},
            "tools[0].file_search",
        ),
    ],
)
def test_no_coercion(attack: Attack, body: dict[str, object], param: str) -> None:
    error = error_of(attack.http.post("/assistants", json=body), 400)
    assert error["param"] == param, error


def test_run_numbers_not_coerced(attack: Attack, real: dict[str, str]) -> None:
    body = _run_body(max_completion_tokens=True)
    path = _real("/threads/thread_x/runs", real)
    assert error_of(attack.http.post(path, json=body), 400)["param"] == ("max_completion_tokens")


def test_null_thread_body(attack: Attack) -> None:
    response = attack.http.post(
        "/threads", content=b"null", headers={"Content-Type": "application/json"}
    )
    error_of(response, 400)
    assert attack.http.post("/threads").status_code == 200  # no body at all: an empty thread


def test_file_search_tool_has_no_null(attack: Attack) -> None:
    body = {"model": "m", "tools": [{"type": "file_search"}, {"type": "code_interpreter"}]}
    assistant = attack.http.post("/assistants", json=body).json()
    assert assistant["tools"] == [{"type": "file_search"}, {"type": "code_interpreter"}]


# --- counts and long texts ----------------------------------------------------------------


def _messages(count: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": "m"} for _ in range(count)]


def _parts_message(parts: int, kind: str = "input_text") -> dict[str, object]:
    return {"role": "user", "content": [{"type": kind, "text": "p"}] * parts}


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/threads", {"messages": _messages(33)}, "messages"),
        (
            "/threads/runs",
            {"assistant_id": "asst_x", "thread": {"messages": _messages(33)}},
            "thread.messages",
        ),
        (
            "/threads/thread_x/runs",
            _run_body(additional_messages=_messages(33)),
            "additional_messages",
        ),
        ("/assistants", {"model": "m", "tools": [{"type": "code_interpreter"}] * 129}, "tools"),
        ("/assistants", {"model": "m", "metadata": {str(i): "v" for i in range(17)}}, "metadata"),
        (
            "/responses",
            {
                "model": "m",
                "input": "x",
                "tools": [{"type": "code_interpreter", "container": {"type": "auto"}}] * 129,
            },
            "tools",
        ),
        ("/responses", {"model": "m", "input": [{"role": "user", "content": "x"}] * 2049}, "input"),
        (
            "/conversations",
            {"items": [{"type": "message", "role": "user", "content": "x"}] * 21},
            "items",
        ),
        (
            "/threads/thread_x/messages",
            {"role": "user", "content": [{"type": "text", "text": "x"}] * 101},
            "content",
        ),
        ("/threads", {"messages": [_parts_message(101, "text")]}, "messages[0].content"),
        ("/responses", {"model": "m", "input": [_parts_message(101)]}, "input[0].content"),
        (
            "/responses",
            {"model": "m", "input": [_parts_message(1), _parts_message(101)]},
            "input[1].content",
        ),
        (
            "/responses",
            {
                "model": "m",
                "input": [
                    {
                        "type": "function_call_output",
                        "call_id": "c",
                        "output": [{"type": "input_text", "text": "o"}] * 101,
                    }
                ],
            },
            "input[0].output",
        ),
        # 8,192 content parts in all: the 82nd message of 100 crosses it, tool outputs count too
        ("/responses", {"model": "m", "input": [_parts_message(100)] * 82}, "input[81].content"),
        (
            "/responses/input_tokens",
            {
                "input": [_parts_message(100)] * 81
                + [
                    {
                        "type": "function_call_output",
                        "call_id": "c",
                        "output": [{"type": "input_text", "text": "o"}] * 93,
                    }
                ]
            },
            "input[81].output",
        ),
        ("/responses/input_tokens", {"input": [_parts_message(101)]}, "input[0].content"),
        ("/responses/compact", {"model": "m", "input": [_parts_message(101)]}, "input[0].content"),
        (
            "/conversations",
            {"items": [_parts_message(101)]},
            "items[0].content",
        ),
        (
            "/threads/thread_x/runs/run_x/submit_tool_outputs",
            {"tool_outputs": [{"tool_call_id": "c", "output": "o"}] * 129},
            "tool_outputs",
        ),
    ],
    ids=lambda x: x if isinstance(x, str) else None,
)
def test_count_caps(
    attack: Attack, real: dict[str, str], path: str, body: dict[str, object], param: str
) -> None:
    error = error_of(attack.http.post(_real(path, real), json=body), 400)
    assert error["param"] == param, error
    if "content parts in all" in error["message"]:
        assert error["message"].startswith(f"Invalid '{param}': the input has more than 8192")
    if "array too long" in error["message"]:  # the raw body's bound, or pydantic's
        assert error["message"].startswith(f"Invalid '{param}': array too long."), error
        assert "maximum length" in error["message"], error
    if path.startswith(("/responses", "/conversations")):
        assert error["code"] == "array_above_max_length", error


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/threads/thread_x/messages", {"role": "user", "content": "x" * 256_001}, "content"),
        ("/assistants", {"model": "m", "instructions": "x" * 256_001}, "instructions"),
        ("/threads/thread_x/runs", _run_body(instructions="x" * 256_001), "instructions"),
        (
            "/threads/thread_x/runs",
            _run_body(additional_instructions="x" * 256_001),
            "additional_instructions",
        ),
        ("/responses", {"model": "m", "input": "x", "instructions": "x" * 256_001}, "instructions"),
    ],
    ids=lambda x: x if isinstance(x, str) else None,
)
def test_long_texts(
    attack: Attack, real: dict[str, str], path: str, body: dict[str, object], param: str
) -> None:
    error = error_of(attack.http.post(_real(path, real), json=body), 400)
    assert error["param"].startswith(param), error
    assert "256000" in error["message"], error


# --- bodies ----------------------------------------------------------------------------------


def _raw(
    url: str, head: str, body: bytes = b"", *, timeout: float = 10
) -> tuple[int, dict[str, object], float]:
    """Send `head` (and `body`) on a raw socket; the status, the JSON error and the seconds it
    took to answer."""
    parts = urlsplit(url)
    started = time.perf_counter()
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.sendall(head.encode("latin-1") + body)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        head_part, _, rest = data.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head_part.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
    elapsed = time.perf_counter() - started
    status = int(head_part.split(b" ", 2)[1])
    return status, json.loads(rest[:length]), elapsed


def _head(method: str, path: str, key: str | None, length: int, *, chunked: bool = False) -> str:
    lines = [f"{method} {path} HTTP/1.1", "Host: x", "Content-Type: application/json"]
    if key is not None:
        lines.append(f"Authorization: Bearer {key}")
    lines.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {length}")
    return "\r\n".join(lines) + "\r\n\r\n"


def test_wrong_key_before_body(attack: Attack) -> None:
    """Three 150 MB posts with a wrong key: answered 401 from the headers alone."""
    for _ in range(3):
        status, body, elapsed = _raw(
            attack.hostile.url, _head("POST", "/v1/threads", "sk-wrong", 150 * 2**20)
        )
        assert status == 401
        assert body["error"]["code"] == "invalid_api_key"  # type: ignore[index]
        assert elapsed < 2


def test_declared_too_large(attack: Attack) -> None:
    key = attack.hostile.headers["Authorization"].split()[1]
    status, body, _ = _raw(attack.hostile.url, _head("POST", "/v1/threads", key, 150 * 2**20))
    assert status == 413
    assert "ASSISTANTD_MAX_REQUEST_BYTES" in body["error"]["message"]  # type: ignore[index]


def _chunked(total: int) -> Iterator[bytes]:
    yield b'{"metadata": {"k": "'
    sent = 0
    block = b"x" * 65536
    while sent < total:
        yield block
        sent += len(block)
    yield b'"}}'


def test_streamed_too_large(attack: Attack) -> None:
    """A body with no length is counted as it comes and cut off at the bound."""
    response = attack.http.post("/threads", content=_chunked(4 * MAX_REQUEST_BYTES))
    error = error_of(response, 413)
    assert "ASSISTANTD_MAX_REQUEST_BYTES" in error["message"]


def test_body_at_the_bound_is_read(attack: Attack) -> None:
    """Just under the bound is an ordinary request (here: a 400 for a too-long metadata value)."""
    body = {"metadata": {"k": "x" * (MAX_REQUEST_BYTES - 100)}}
    error = error_of(attack.http.post("/threads", json=body), 400)
    assert error["param"] == "metadata"


def test_uploads_keep_their_own_limit(attack: Attack) -> None:
    """A multipart upload larger than the JSON bound still works."""
    data = b"y" * (3 * MAX_REQUEST_BYTES)
    response = attack.http.post(
        "/files", files={"file": ("big.txt", data)}, data={"purpose": "assistants"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["bytes"] == len(data)
    attack.http.delete(f"/files/{response.json()['id']}")


def test_many_messages_do_not_freeze(attack: Attack) -> None:
    """The largest thread allowed (32 messages of 30 KB) is written while /healthz answers."""
    body = {"messages": [{"role": "user", "content": "z" * 30_000} for _ in range(32)]}
    for _ in range(3):
        response = attack.http.post("/threads", json=body)
        assert response.status_code == 200, response.text


def test_many_parts_refused_at_the_first_excess(attack: Attack) -> None:
    """A message of as many parts as the body bound allows is refused at its 101st part."""
    part = json.dumps({"type": "input_text", "text": "p"})
    count = (MAX_REQUEST_BYTES - 200) // (len(part) + 1)
    raw = '{"model":"m","input":[{"role":"user","content":[' + ",".join([part] * count) + "]}]}"
    for path, param in (("/responses", "input[0].content"), ("/conversations", None)):
        body = raw if path == "/responses" else raw.replace('"model":"m","input"', '"items"')
        started = time.perf_counter()
        response = attack.http.post(
            path, content=body, headers={"Content-Type": "application/json"}
        )
        elapsed = time.perf_counter() - started
        error = error_of(response, 400)
        assert error["param"] == (param or "items[0].content"), error
        assert error["code"] == "array_above_max_length", error
        assert elapsed < 1.0, f"{path}: {elapsed:.2f} s"
