"""Read every non-multipart request body as JSON, whatever its declared content type.

OpenAI parses the body of `curl -d '{...}'` (sent as `application/x-www-form-urlencoded`) or of a
request with no content type at all as JSON. FastAPI would hand such a body to the validator as
raw bytes and answer with a confusing type error, so this tiny ASGI middleware relabels it.
Multipart bodies (file uploads and upload parts) keep their type.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_JSON = b"application/json"


def _keeps_type(content_type: bytes) -> bool:
    media = content_type.split(b";", 1)[0].strip().lower()
    return media.startswith(b"multipart/") or media == _JSON or media.endswith(b"+json")


class JsonBodies:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in _BODY_METHODS:
            headers: list[tuple[bytes, bytes]] = scope["headers"]
            content_type = next((v for k, v in headers if k == b"content-type"), None)
            if content_type is None or not _keeps_type(content_type):
                relabelled = [(k, v) for k, v in headers if k != b"content-type"]
                relabelled.append((b"content-type", _JSON))
                scope = {**scope, "headers": relabelled}
        await self.app(scope, receive, send)
