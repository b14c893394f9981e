"""Per-request context for logs and metrics (a plain ASGI middleware, so streams pass through).

Each request gets an id: the client's `X-Request-Id` when it is a sane token, else a new
`req_...`; the response carries it back in `x-request-id` (where the openai SDK reads
`_request_id`). A path that names a run (`.../runs/run_...`) binds that run id too. When the
response ends, the request is counted under its route template and status.
"""

from __future__ import annotations

import re
import secrets
import time

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistantd.ops import logs, metrics

_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_RUN_IN_PATH = re.compile(r"/runs/(run_[A-Za-z0-9]+)")


class RequestContext:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        request = incoming if incoming and _SANE_ID.fullmatch(incoming) else _new_id()
        run = _RUN_IN_PATH.search(scope.get("path", ""))
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                MutableHeaders(scope=message).append("x-request-id", request)
            await send(message)

        with logs.bind(request=request, run=run.group(1) if run else None):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                metrics.observe_request(
                    scope.get("method", "GET"), _route(scope), status, time.perf_counter() - started
                )


def _route(scope: Scope) -> str:
    """The matched route's template with its prefix (`/openai/threads/{thread_id}`)."""
    # FastAPI keeps included routers unflattened; the prefixed template is on its route context.
    context = scope.get("fastapi", {}).get("effective_route_context")
    template = getattr(context, "path", None) or getattr(scope.get("route"), "path", None)
    return str(template) if template else "(unmatched)"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _new_id() -> str:
    return f"req_{secrets.token_hex(12)}"
