"""HTTP for model turns: one streamed POST per attempt, through aiohttp.

Every response asks its backend for a stream, so this request is on the path of every first
token. httpx spends about 1 ms of CPU getting a streamed answer's first line on loopback, aiohttp
about half of that (`bench/peers.py` shows the difference); the other outbound calls (embeddings,
model lists, web pages) keep the shared httpx client.

`ModelTransport.post` yields a `Reply`: the status and headers, then the body line by line (or
whole, for an error). Whatever goes wrong on the way is a `TransportError` of one of four kinds,
worded by `failures.transport_failure`. Leaving the `post` block before the body's end closes the
connection, so the backend stops generating; a body read to its end returns the connection to the
pool.

`HttpxTransport` does the same over an `httpx.AsyncClient` (unit tests hand it a mock transport).
"""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import aiohttp
import httpx
from aiohttp.helpers import BasicAuth, get_env_proxy_for_url
from yarl import URL

from assistantd.settings import Settings

_Proxy = tuple[URL | None, BasicAuth | None]
TransportKind = Literal["connect_timeout", "read_timeout", "connect", "broken"]


class TransportError(Exception):
    """The exchange with the backend failed below HTTP: `kind` says how."""

    def __init__(self, kind: TransportKind, reason: str) -> None:
        super().__init__(reason)
        self.kind: TransportKind = kind
        self.reason = reason


class BadURL(Exception):
    """The backend's URL cannot be requested (no scheme, not http(s), malformed)."""


@dataclass
class Answer:
    """A whole answer that is not a stream: what an error's wording needs."""

    status: int
    reason: str
    headers: Mapping[str, str]  # case-insensitive
    text: str


class Reply(Protocol):
    status: int
    headers: Mapping[str, str]  # case-insensitive

    def lines(self) -> AsyncIterator[str]:
        """The body's lines, without their ends (\\n, \\r\\n or \\r)."""
        ...

    async def answer(self) -> Answer:
        """The whole body, read now."""
        ...


class ModelTransport(Protocol):
    def post(
        self, url: str, payload: dict[str, Any], headers: dict[str, str]
    ) -> AbstractAsyncContextManager[Reply]: ...

    async def aclose(self) -> None: ...


def _body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


async def split_lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[str]:
    """Lines of a byte stream however it is cut; a \\r\\n split across chunks is one end."""
    pending = b""
    after_cr = False
    async for chunk in chunks:
        if not chunk:
            continue
        if after_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        after_cr = chunk.endswith(b"\r")
        pieces = (pending + chunk).splitlines(keepends=True)
        pending = b""
        if pieces and not pieces[-1].endswith((b"\n", b"\r")):
            pending = pieces.pop()
        for piece in pieces:
            yield piece.rstrip(b"\r\n").decode("utf-8", "replace")
    if pending:
        yield pending.decode("utf-8", "replace")


# --- aiohttp (the server's) ---------------------------------------------------------------------


def _ssl_context() -> ssl.SSLContext:
    """Verified TLS with the CA bundle httpx would use: SSL_CERT_FILE or SSL_CERT_DIR when set,
    else certifi's."""
    cert_file, cert_dir = os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")
    if cert_file or cert_dir:
        return ssl.create_default_context(cafile=cert_file or None, capath=cert_dir or None)
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


class _AiohttpReply:
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers

    async def lines(self) -> AsyncIterator[str]:
        async for line in split_lines(self._response.content.iter_any()):
            yield line

    async def answer(self) -> Answer:
        body = await self._response.read()
        return Answer(
            self.status,
            self._response.reason or "",
            self.headers,
            body.decode("utf-8", "replace"),
        )


class AiohttpTransport:
    """One aiohttp session for the process's model calls, made on first use (on the running
    loop), sized and timed by the `ASSISTANTD_MODEL_*` settings; proxies from the environment as
    httpx takes them (`HTTP(S)_PROXY`, `NO_PROXY`), looked up once per backend origin: aiohttp's
    own `trust_env` looks them and `~/.netrc` up in a thread on every request, and that request
    then waits for a thread of the loop's default executor before it connects."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[tuple[str, str | None, int | None], _Proxy] = {}

    def _proxy(self, url: str) -> _Proxy:
        try:
            parsed = URL(url)
        except ValueError:  # aiohttp says what is wrong with it
            return None, None
        origin = (parsed.scheme, parsed.host, parsed.port)
        found = self._proxies.get(origin)
        if found is None:
            try:
                found = get_env_proxy_for_url(parsed)
            except LookupError:  # none for this URL
                found = (None, None)
            self._proxies[origin] = found
        return found

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            settings = self._settings
            read = settings.model_read_timeout_seconds
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=settings.model_max_connections,
                    limit_per_host=0,
                    ssl=_ssl_context(),
                    keepalive_timeout=5.0,  # httpx's default keep-alive expiry
                ),
                # `connect` bounds the wait for a pooled connection too (httpx's pool = read)
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=read + settings.model_connect_timeout_seconds,
                    sock_connect=settings.model_connect_timeout_seconds,
                    sock_read=read,
                ),
                trust_env=False,  # see `_proxy`
                auto_decompress=True,
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    @asynccontextmanager
    async def post(
        self, url: str, payload: dict[str, Any], headers: dict[str, str]
    ) -> AsyncIterator[Reply]:
        session = self._open()
        sent = {"Content-Type": "application/json", "User-Agent": "assistantd", **headers}
        try:
            proxy, proxy_auth = self._proxy(url)
            response = await session.post(
                url, data=_body(payload), headers=sent, proxy=proxy, proxy_auth=proxy_auth
            )
        except (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError) as exc:
            raise BadURL(str(exc) or url) from exc
        except aiohttp.ConnectionTimeoutError as exc:
            raise TransportError("connect_timeout", str(exc)) from exc
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise TransportError("read_timeout", str(exc)) from exc
        except aiohttp.ClientConnectorError as exc:
            raise TransportError("connect", str(exc.os_error or exc)) from exc
        except aiohttp.ClientError as exc:
            raise TransportError("broken", str(exc) or type(exc).__name__) from exc
        finished = False
        try:
            yield _AiohttpReply(response)
            finished = response.content.at_eof()
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise TransportError("read_timeout", str(exc)) from exc
        except aiohttp.ClientError as exc:
            raise TransportError("broken", str(exc) or type(exc).__name__) from exc
        finally:
            if finished:
                response.release()  # back to the pool
            else:
                response.close()  # an answer left half-read: its connection goes

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


# --- httpx --------------------------------------------------------------------------------------


class _HttpxReply:
    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self.status = response.status_code
        self.headers: Mapping[str, str] = response.headers

    async def lines(self) -> AsyncIterator[str]:
        async for line in split_lines(self._response.aiter_bytes()):
            yield line

    async def answer(self) -> Answer:
        await self._response.aread()
        response = self._response
        return Answer(self.status, response.reason_phrase, self.headers, response.text)


class HttpxTransport:
    """The same exchange over an `httpx.AsyncClient` (the caller's, closed by the caller)."""

    def __init__(self, http: httpx.AsyncClient, settings: Settings) -> None:
        self._http = http
        read = settings.model_read_timeout_seconds
        self._timeout = httpx.Timeout(
            connect=settings.model_connect_timeout_seconds, read=read, write=read, pool=read
        )

    @asynccontextmanager
    async def post(
        self, url: str, payload: dict[str, Any], headers: dict[str, str]
    ) -> AsyncIterator[Reply]:
        try:
            async with self._http.stream(
                "POST", url, json=payload, headers=headers, timeout=self._timeout
            ) as response:
                yield _HttpxReply(response)
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            raise BadURL(str(exc)) from exc
        except httpx.ConnectTimeout as exc:
            raise TransportError("connect_timeout", str(exc)) from exc
        except httpx.TimeoutException as exc:
            raise TransportError("read_timeout", str(exc)) from exc
        except httpx.ConnectError as exc:
            raise TransportError("connect", str(exc) or type(exc).__name__) from exc
        except httpx.TransportError as exc:
            raise TransportError("broken", str(exc) or type(exc).__name__) from exc

    async def aclose(self) -> None:
        """The client is the caller's."""
