"""The model transport takes its proxy from the environment (HTTP_PROXY, NO_PROXY), as httpx
does, over real sockets: a forward proxy gets the absolute URL; a host in NO_PROXY is asked
directly."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from assistantd.backends.transport import AiohttpTransport
from assistantd.settings import Settings

BODY = b'data: {"ok": true}\n\ndata: [DONE]\n\n'


class Listener:
    """A plain HTTP/1.1 server that notes each request line and answers a short SSE body."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Listener:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        self.lines.append(head.split(b"\r\n", 1)[0].decode())
        length = next(
            (
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        await reader.readexactly(length)
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(BODY), BODY)
        )
        await writer.drain()
        writer.close()


async def lines_of(transport: AiohttpTransport, url: str) -> list[str]:
    async with transport.post(url, {"model": "m"}, {}) as reply:
        assert reply.status == 200
        return [line async for line in reply.lines()]


@pytest.fixture
async def transport() -> AsyncIterator[AiohttpTransport]:
    made = AiohttpTransport(Settings())
    yield made
    await made.aclose()


async def test_a_proxy_from_the_environment_is_used(
    transport: AiohttpTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with Listener() as proxy:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        url = "http://model.invalid:8000/v1/chat/completions"
        for _ in range(2):  # the second request takes the looked-up proxy
            assert await lines_of(transport, url) == ['data: {"ok": true}', "", "data: [DONE]", ""]
    assert proxy.lines == [f"POST {url} HTTP/1.1"] * 2


async def test_no_proxy_hosts_are_asked_directly(
    transport: AiohttpTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with Listener() as proxy, Listener() as backend:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        await lines_of(transport, f"http://127.0.0.1:{backend.port}/v1/chat/completions")
    assert proxy.lines == []
    assert backend.lines == ["POST /v1/chat/completions HTTP/1.1"]
