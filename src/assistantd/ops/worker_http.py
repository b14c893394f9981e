"""The standalone worker's small HTTP port: `GET /metrics` and `GET /healthz`.

`assistantd worker` has no web framework (it never imports FastAPI); this answers the two probes
over plain asyncio streams, one request per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assistantd.ops import metrics

log = logging.getLogger(__name__)


class WorkerHttp:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        healthy: Callable[[], bool],
    ) -> None:
        self.sessions = sessions
        self.healthy = healthy
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> int:
        self._server = await asyncio.start_server(self._handle, host, port)
        bound = int(self._server.sockets[0].getsockname()[1])
        log.info("worker metrics and health on http://%s:%d", host, bound)
        return bound

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            method, _, rest = head.decode("latin-1").partition(" ")
            path = rest.split(" ", 1)[0].split("?", 1)[0]
            if method != "GET":
                await _answer(writer, 405, b"method not allowed\n", "text/plain")
            elif path == "/metrics":
                body = await metrics.render(self.sessions)
                await _answer(writer, 200, body, metrics.CONTENT_TYPE)
            elif path == "/healthz":
                ok = self.healthy()
                body = json.dumps({"status": "ok" if ok else "unavailable"}).encode()
                await _answer(writer, 200 if ok else 503, body, "application/json")
            else:
                await _answer(writer, 404, b"not found\n", "text/plain")
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except Exception:
            log.exception("worker http: request failed")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def _answer(
    writer: asyncio.StreamWriter, status: int, body: bytes, content_type: str
) -> None:
    reason = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Unavailable"}[status]
    writer.write(
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode("latin-1")
        + body
    )
    await writer.drain()
