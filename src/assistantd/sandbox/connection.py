"""The server's end of the kernel protocol: JSON lines over an attached container's stdio."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from typing import Any

from assistantd.kit.text import loads_scrubbed
from assistantd.sandbox.docker import STDERR, STDOUT, Attachment

log = logging.getLogger(__name__)


class KernelGone(Exception):
    """The kernel's stream ended: the process (and so the container) is gone."""


class KernelConnection:
    def __init__(self, attachment: Attachment, name: str) -> None:
        self.name = name
        self._attachment = attachment
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._write_lock = asyncio.Lock()
        self.ready: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.closed = asyncio.Event()
        self._reader = asyncio.create_task(self._read(), name=f"kernel-reader-{name}")

    @property
    def alive(self) -> bool:
        return not self.closed.is_set()

    async def request(
        self, op: str, payload: dict[str, Any] | None = None, *, timeout: float
    ) -> dict[str, Any]:
        """Send one request and wait for its reply; KernelGone if the kernel dies first,
        TimeoutError if it does not answer within `timeout` seconds."""
        if not self.alive:
            raise KernelGone(self.name)
        request_id = secrets.token_hex(8)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        line = json.dumps({**(payload or {}), "op": op, "id": request_id}).encode() + b"\n"
        try:
            async with self._write_lock:
                await self._attachment.write(line)
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:  # an OSError too, but not a broken connection
            raise
        except (ConnectionError, OSError) as exc:
            raise KernelGone(self.name) from exc
        finally:
            self._pending.pop(request_id, None)

    async def _read(self) -> None:
        buffer = b""
        try:
            while True:
                frame = await self._attachment.read_frame()
                if frame is None:
                    return
                kind, payload = frame
                if kind == STDERR:
                    log.debug("kernel %s: %s", self.name, payload.decode(errors="replace"))
                    continue
                if kind != STDOUT:
                    continue
                buffer += payload
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    self._dispatch(line)
        finally:
            self.closed.set()
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(KernelGone(self.name))
            if not self.ready.done():
                self.ready.set_exception(KernelGone(self.name))
                self.ready.exception()  # retrieved: nobody may be waiting
            await self._attachment.close()

    def _dispatch(self, line: bytes) -> None:
        try:
            # What code prints may hold half a surrogate pair: no text, so scrubbed on arrival.
            message = loads_scrubbed(line.decode("utf-8", "replace"))
        except ValueError:
            log.warning("kernel %s: unreadable line %r", self.name, line[:200])
            return
        if message.get("event") == "ready":
            if not self.ready.done():
                self.ready.set_result(message)
            return
        future = self._pending.get(str(message.get("id")))
        if future is not None and not future.done():
            future.set_result(message)

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
