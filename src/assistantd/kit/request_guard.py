"""What every API request passes before a route sees it (a pure ASGI middleware).

- Authentication first: a request with a body and no valid key is answered 401 before a byte of
  the body is read (a client cannot make the server buffer 150 MB to learn its key is wrong).
- A bound on JSON bodies (`ASSISTANTD_MAX_REQUEST_BYTES`): a larger `Content-Length` is answered
  413 at once, and a body sent without one is counted as it arrives and cut off at the bound.
  File uploads (multipart bodies: `/files`, upload parts, container files) stream to the blob
  store under their own, larger limits and pass through.
- The text rule of `kit.text` on every string of the body, the query and the path: a NUL or an
  unpaired surrogate is a 400 naming the parameter, before anything reaches a database.
- The nesting bound of `kit.nesting` on JSON bodies: arrays and objects more than 100 levels deep
  are a 400 naming where, before anything parses the body (parsers and encoders recurse).
- The length bounds of `kit.lengths` on the arrays that carry a request's work (a response's
  `input` and each message's `content`, a conversation's `items`, a thread's `messages`...):
  the first array over its bound is a 400 naming it, found on the raw body, so a body of a
  million parts is refused as fast as one of 101.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistantd.auth.keys import PROJECT_SCOPE_KEY, authenticate
from assistantd.errors import (
    RESPONSES_FAMILY,
    APIError,
    InvalidRequestError,
    PayloadTooLargeError,
    render,
)
from assistantd.kit import lengths, nesting, text
from assistantd.kit.lengths import ANY_INDEX, Bound
from assistantd.kit.schemas import (
    MAX_ATTACHMENTS,
    MAX_CONTENT_PARTS,
    MAX_CONVERSATION_ITEMS,
    MAX_INPUT_ITEMS,
    MAX_INPUT_PARTS,
    MAX_THREAD_MESSAGES,
    MAX_TOOLS,
)

API_PREFIXES = ("/v1/", "/openai/")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _message_bounds(*at: str) -> list[Bound]:
    """The bounds of a message (or tool output) found at each element of the array `at`."""
    each = (*at, ANY_INDEX)
    return [
        Bound((*each, "content"), MAX_CONTENT_PARTS),
        Bound((*each, "output"), MAX_CONTENT_PARTS),
        Bound((*each, "attachments"), MAX_ATTACHMENTS),
    ]


# A response's request (also a WebSocket `response.create` message).
RESPONSE_BOUNDS = [
    Bound(("input",), MAX_INPUT_ITEMS),
    *_message_bounds("input"),
    Bound(("input", ANY_INDEX, "content"), MAX_INPUT_PARTS, shared="parts"),
    Bound(("input", ANY_INDEX, "output"), MAX_INPUT_PARTS, shared="parts"),
    Bound(("tools",), MAX_TOOLS),
]

# The arrays that carry a request's work, by route (the path's end; POST).
_BOUNDS: list[tuple[re.Pattern[str], list[Bound]]] = [
    (re.compile(r"/responses(/input_tokens|/compact)?$"), RESPONSE_BOUNDS),
    (
        re.compile(r"/conversations(/[^/]+/items)?$"),
        [Bound(("items",), MAX_CONVERSATION_ITEMS), *_message_bounds("items")],
    ),
    (
        re.compile(r"/threads$"),
        [Bound(("messages",), MAX_THREAD_MESSAGES), *_message_bounds("messages")],
    ),
    (
        re.compile(r"/threads/runs$"),
        [
            Bound(("thread", "messages"), MAX_THREAD_MESSAGES),
            *_message_bounds("thread", "messages"),
            Bound(("tools",), MAX_TOOLS),
        ],
    ),
    (
        re.compile(r"/threads/[^/]+/messages$"),
        [Bound(("content",), MAX_CONTENT_PARTS), Bound(("attachments",), MAX_ATTACHMENTS)],
    ),
    (
        re.compile(r"/threads/[^/]+/runs$"),
        [
            Bound(("additional_messages",), MAX_THREAD_MESSAGES),
            *_message_bounds("additional_messages"),
            Bound(("tools",), MAX_TOOLS),
        ],
    ),
]


def _bounds_of(scope: Scope) -> list[Bound]:
    if scope["method"] != "POST":
        return []
    path: str = scope["path"]
    return next((bounds for pattern, bounds in _BOUNDS if pattern.search(path)), [])


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _is_multipart(scope: Scope) -> bool:
    content_type = _header(scope, b"content-type") or ""
    return content_type.split(";", 1)[0].strip().lower().startswith("multipart/")


def _text_error(scope: Scope, param: str | None, problem: str) -> InvalidRequestError:
    where = f"'{param}'" if param else "the request"
    code = "invalid_value" if RESPONSES_FAMILY.search(scope["path"]) else None
    return InvalidRequestError(f"Invalid {where}: the string {problem}.", param=param, code=code)


def _check_url(scope: Scope) -> None:
    """The text rule on the query's names and values and on the path."""
    found = text.problem(scope["path"])
    if found is not None:
        raise _path_error(scope, found)
    query: bytes = scope.get("query_string", b"")
    if b"%" not in query:  # only a percent-escape can smuggle either in
        return
    # Decoded as Starlette decodes it for the routes (bytes that are no UTF-8 become U+FFFD).
    pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    for name, value in pairs:
        found = text.problem(name) or text.problem(value)
        if found is not None:
            raise _text_error(scope, name if text.problem(name) is None else None, found)


def _path_error(scope: Scope, found: str) -> InvalidRequestError:
    """The error for a path breaking the rule, naming the path parameter (an id) it is in."""
    for route in scope["app"].router.routes:
        match, child = route.matches(scope)
        if match is Match.NONE:
            continue
        for name, value in child.get("path_params", {}).items():
            if isinstance(value, str) and text.problem(value) is not None:
                return InvalidRequestError(
                    f"Invalid '{name}': '{value}'. Expected an ID that contains letters, "
                    "numbers, underscores, or dashes, but this value contained additional "
                    "characters.",
                    param=name,
                    code="invalid_value",
                )
        break
    return _text_error(scope, None, f"of the URL path {found}")


# Where the guard leaves a JSON body it parsed (one of at most `lengths.PARSE_BYTES`) for the
# route, which would parse it again (`deps.TransactionRoute`).
PARSED_BODY = "assistantd.parsed_body"


async def _check_body(scope: Scope, body: bytes) -> None:
    deep = await nesting.too_deep(body)
    if deep is not None:
        code = "invalid_value" if RESPONSES_FAMILY.search(scope["path"]) else None
        raise InvalidRequestError(
            f"Invalid '{deep}': JSON nested more than {nesting.MAX_DEPTH} levels deep (arrays "
            "and objects, the request body itself counting as one), which is not allowed.",
            param=deep,
            code=code,
        )
    parsed = lengths.parse(body) if len(body) <= lengths.PARSE_BYTES else lengths.UNPARSED
    long = await lengths.too_long(body, _bounds_of(scope), parsed)
    if long is not None:
        raise too_long_error(long, responses=RESPONSES_FAMILY.search(scope["path"]) is not None)
    if parsed is not lengths.NOT_JSON and parsed is not lengths.UNPARSED:
        scope[PARSED_BODY] = parsed
    if not text.suspect_json(body):
        return
    if parsed is lengths.UNPARSED:
        parsed = lengths.parse(body)
    if parsed is lengths.NOT_JSON:
        return  # the route's validation says what is wrong
    hit = text.first_problem(parsed)
    if hit is not None:
        raise _text_error(scope, hit[0] or None, hit[1])


def too_long_error(long: lengths.TooLong, *, responses: bool) -> InvalidRequestError:
    """OpenAI's words for an array over its bound (the Responses family's code with them)."""
    if long.shared is not None:
        return InvalidRequestError(
            f"Invalid '{long.param}': the input has more than {long.limit} content parts in "
            "all (messages and tool outputs together).",
            param=long.param,
            code="array_above_max_length" if responses else None,
        )
    return InvalidRequestError(
        f"Invalid '{long.param}': array too long. Expected an array with maximum length "
        f"{long.limit}, but got an array with length above {long.limit} instead.",
        param=long.param,
        code="array_above_max_length" if responses else None,
    )


class RequestGuard:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(API_PREFIXES):
            await self.app(scope, receive, send)
            return
        try:
            _check_url(scope)
            if scope["method"] in _BODY_METHODS:
                scope[PROJECT_SCOPE_KEY] = await authenticate(
                    scope["app"].state.keys,
                    _header(scope, b"authorization"),
                    _header(scope, b"api-key"),
                )
                if not _is_multipart(scope):
                    body = await self._read_body(scope, receive)
                    await _check_body(scope, body)
                    receive = _replay(body, receive)
        except APIError as exc:
            await render(exc)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        limit = self.max_body_bytes
        declared = _header(scope, b"content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > limit:
            raise self._too_large(int(declared))
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away; the route sees an empty body and nobody hears
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise self._too_large(None)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    def _too_large(self, declared: int | None) -> PayloadTooLargeError:
        size = f" ({declared} bytes)" if declared is not None else ""
        return PayloadTooLargeError(
            f"The request body{size} is larger than this server's limit of "
            f"{self.max_body_bytes} bytes (ASSISTANTD_MAX_REQUEST_BYTES).",
            code="request_too_large",
        )


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands over the body already read, then defers to the real one."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
