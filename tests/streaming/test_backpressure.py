"""A client that does not read: the server stops producing its stream (the socket's send waits),
drops what its in-process feed cannot hold, and later serves the rest from the event log."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

from openai import OpenAI
from openai.types.beta import Assistant

from tests.streaming.conftest import wait_run, wait_until
from tests.streaming.support import Frame, parse_frames, text_run
from tests.support.scripted_model import Reply, ScriptedModel
from tests.support.server import LiveServer


def _read_chunked(sock: socket.socket) -> str:
    """The body of an HTTP/1.1 chunked response, read to the end."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    assert b"transfer-encoding: chunked" in head.lower()
    body = bytearray()
    while True:
        while b"\r\n" not in rest:
            rest += sock.recv(65536)
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        while len(rest) < size + 2:
            more = sock.recv(65536)
            assert more, "connection closed mid-chunk"
            rest += more
        if size == 0:
            return body.decode()
        body += rest[:size]
        rest = rest[size + 2 :]


def test_a_client_that_does_not_read_still_gets_every_event_in_order(
    server: LiveServer, api_key: str, client: OpenAI, assistant: Assistant, model: ScriptedModel
) -> None:
    marker = "backpressure-" + api_key[-8:]
    chunks = [f"token{i:04d} " for i in range(3000)]  # ~600 KB of frames: more than buffers hold
    model.script(marker, Reply(text=chunks))
    thread = client.beta.threads.create(messages=[{"role": "user", "content": marker}])
    url = urlsplit(server.url)
    body = json.dumps({"assistant_id": assistant.id, "stream": True}).encode()
    request = (
        f"POST /v1/threads/{thread.id}/runs HTTP/1.1\r\nHost: {url.netloc}\r\n"
        f"Authorization: Bearer {api_key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window
        sock.connect((url.hostname, url.port))
        sock.sendall(request)
        # Do not read until the run is over: the server must neither stall the run nor hold
        # the whole stream for us.
        runs = wait_until(
            lambda: client.beta.threads.runs.list(thread.id).data, bool, what="the run"
        )
        assert wait_run(client, thread.id, runs[0].id, timeout=60).status == "completed"
        text = _read_chunked(sock)
    frames: list[Frame] = list(parse_frames(iter(text.split("\n"))))
    assert [f.event for f in frames] == [*text_run(len(chunks)), "done"]
    assert [f.id for f in frames[:-1]] == list(range(1, len(frames)))
    deltas = [f.json()["delta"]["content"][0]["text"]["value"] for f in frames[7:-4]]
    assert deltas == chunks
