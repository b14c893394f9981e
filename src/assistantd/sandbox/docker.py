"""A small async client for the Docker Engine API: just what the sandbox needs.

Plain HTTP calls go through httpx (over the unix socket, or TCP for `tcp://` hosts). Attaching to
a container's stdin/stdout hijacks the HTTP connection, which httpx cannot do, so `attach` speaks
that one request itself on a raw asyncio stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

API = "/v1.41"  # Docker 20.10; later engines still serve it

STDOUT = 1
STDERR = 2


class DockerError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class DockerUnavailable(DockerError):
    """The engine cannot be reached at all."""

    def __init__(self, message: str) -> None:
        super().__init__(0, message)


@dataclass(frozen=True)
class Endpoint:
    socket_path: str | None
    host: str
    port: int

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        parts = urlsplit(url)
        if parts.scheme == "unix":
            return cls(parts.path or "/var/run/docker.sock", "docker", 80)
        if parts.scheme in ("tcp", "http"):
            return cls(None, parts.hostname or "127.0.0.1", parts.port or 2375)
        raise ValueError(f"unsupported Docker host {url!r} (use unix:///path or tcp://host:port)")


class Attachment:
    """A container's stdin (write) and multiplexed stdout/stderr (read) on one connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def read_frame(self) -> tuple[int, bytes] | None:
        """The next (stream, payload) frame, or None at the end of the stream."""
        try:
            header = await self._reader.readexactly(8)
            kind, size = struct.unpack(">BxxxL", header)
            return kind, await self._reader.readexactly(size)
        except (asyncio.IncompleteReadError, ConnectionError):
            return None

    async def write(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()


class DockerClient:
    def __init__(self, url: str, *, timeout: float = 60.0) -> None:
        self.url = url
        self.endpoint = Endpoint.parse(url)
        if self.endpoint.socket_path is not None:
            transport = httpx.AsyncHTTPTransport(uds=self.endpoint.socket_path)
            base = "http://docker"
        else:
            transport = httpx.AsyncHTTPTransport()
            base = f"http://{self.endpoint.host}:{self.endpoint.port}"
        self._http = httpx.AsyncClient(
            transport=transport, base_url=base + API, timeout=httpx.Timeout(timeout)
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        ok: tuple[int, ...] = (200, 201, 204),
        timeout: float | None = None,
    ) -> httpx.Response:
        try:
            response = await self._http.request(
                method,
                path,
                params=params,
                json=body,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except (httpx.ConnectError, httpx.RemoteProtocolError, FileNotFoundError) as exc:
            raise DockerUnavailable(f"cannot reach the Docker engine at {self.url}: {exc}") from exc
        if response.status_code not in ok:
            try:
                message = str(response.json().get("message", response.text))
            except ValueError:
                message = response.text
            raise DockerError(response.status_code, message)
        return response

    async def ping(self) -> None:
        await self._call("GET", "/_ping", timeout=5.0)

    async def runtimes(self) -> set[str]:
        """The OCI runtimes the engine knows (`runc`, and those registered, e.g. `runsc`)."""
        response = await self._call("GET", "/info", timeout=10.0)
        return set((response.json().get("Runtimes") or {}).keys())

    async def wait(self, container: str, timeout: float) -> int:
        """Wait for a container to exit; its exit code."""
        response = await self._call("POST", f"/containers/{container}/wait", timeout=timeout)
        return int(response.json().get("StatusCode", -1))

    async def image(self, name: str) -> dict[str, Any] | None:
        response = await self._call("GET", f"/images/{quote(name, safe='')}/json", ok=(200, 404))
        return None if response.status_code == 404 else dict(response.json())

    async def create(self, name: str, config: dict[str, Any]) -> str:
        response = await self._call(
            "POST", "/containers/create", params={"name": name}, body=config
        )
        return str(response.json()["Id"])

    async def start(self, container: str) -> None:
        await self._call("POST", f"/containers/{container}/start", ok=(204, 304))

    async def rename(self, container: str, name: str) -> None:
        await self._call("POST", f"/containers/{container}/rename", params={"name": name})

    async def update(self, container: str, resources: dict[str, Any]) -> None:
        """Change a running container's resource limits (`Memory`, `MemorySwap`...)."""
        await self._call("POST", f"/containers/{container}/update", body=resources)

    async def kill(self, container: str, signal: str = "SIGKILL") -> None:
        await self._call(
            "POST",
            f"/containers/{container}/kill",
            params={"signal": signal},
            ok=(204, 404, 409),
        )

    async def remove(self, container: str) -> None:
        await self._call(
            "DELETE", f"/containers/{container}", params={"force": "true"}, ok=(204, 404, 409)
        )

    async def inspect(self, container: str) -> dict[str, Any] | None:
        response = await self._call("GET", f"/containers/{container}/json", ok=(200, 404))
        return None if response.status_code == 404 else dict(response.json())

    async def containers(self, labels: list[str]) -> list[dict[str, Any]]:
        """All containers (running or not) carrying every one of `labels` (`key` or `key=v`)."""
        filters = json.dumps({"label": labels})
        response = await self._call(
            "GET", "/containers/json", params={"all": "true", "filters": filters}
        )
        return list(response.json())

    async def attach(self, container: str) -> Attachment:
        """Attach to stdin, stdout and stderr (before `start`, to miss nothing)."""
        try:
            if self.endpoint.socket_path is not None:
                reader, writer = await asyncio.open_unix_connection(
                    self.endpoint.socket_path, limit=2**20
                )
            else:
                reader, writer = await asyncio.open_connection(
                    self.endpoint.host, self.endpoint.port, limit=2**20
                )
        except OSError as exc:
            raise DockerUnavailable(f"cannot reach the Docker engine at {self.url}: {exc}") from exc
        request = (
            f"POST {API}/containers/{container}/attach?stream=1&stdin=1&stdout=1&stderr=1 "
            f"HTTP/1.1\r\nHost: {self.endpoint.host}\r\nConnection: Upgrade\r\n"
            "Upgrade: tcp\r\nContent-Length: 0\r\n\r\n"
        )
        writer.write(request.encode())
        await writer.drain()
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            writer.close()
            raise DockerError(0, f"attach to {container}: bad response") from exc
        status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        status = int(status_line.split()[1]) if len(status_line.split()) > 1 else 0
        if status not in (101, 200):
            writer.close()
            raise DockerError(status, f"attach to {container}: {status_line}")
        return Attachment(reader, writer)
