"""WebSocket mode of the Responses API: `GET /v1/responses` (and Azure's prefixes) upgraded.

The key is checked at the upgrade (a bad one is an HTTP 401, no socket), and the connection
takes one of the project's stream slots (none left: an HTTP 429, see `kit.streams`). Then each
`response.create` message (the body of `POST /v1/responses`, streamed, never background) runs on
the engine exactly as an HTTP stream does, its events read from the same event log and sent one
text message each, in order; messages are served one after another (FIFO). A message that is no
JSON, or of no known type, or a request the API refuses, is answered with an `error` event and
the connection goes on.

An unstored (`store: false`) response is kept while the connection may continue it, so that
`previous_response_id` can name it on this connection (and only here), and removed when it may
not, or when the connection ends (`responses.kept`). A failed continuation forgets the response
it continued. `response.steer` is in `responses.steering`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from starlette.datastructures import State
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from assistantd.auth.keys import authenticate
from assistantd.db.models import Item
from assistantd.errors import (
    APIError,
    InvalidRequestError,
    NotFoundError,
    PayloadTooLargeError,
    ServerError,
    database_down,
    database_unavailable,
    render,
    validation_error,
)
from assistantd.kit import lengths, nesting, text
from assistantd.kit.request_guard import RESPONSE_BOUNDS, too_long_error
from assistantd.responses import create, service
from assistantd.responses.kept import Memory
from assistantd.responses.schemas import CreateResponse
from assistantd.responses.steering import Request, Steering
from assistantd.runs import repository as runs
from assistantd.runs import stream
from assistantd.runs.signals import head_start

log = logging.getLogger(__name__)

# The fields of a `response.create` message that are no part of `POST /v1/responses`.
_ENVELOPE = ("type", "stream_id")


def event_error(exc: APIError, *, stream_id: str | None = None) -> str:
    """OpenAI's WebSocket `error` event for `exc`: the HTTP status and the error envelope (with a
    code always: a refusal without its own says its type)."""
    error = exc.body()["error"]
    error["code"] = error["code"] or exc.type
    event: dict[str, Any] = {"type": "error", "status": exc.status_code, "error": error}
    if stream_id is not None:
        event["stream_id"] = stream_id
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False)


def with_lane(data: str, stream_id: str | None) -> str:
    """An event (one-line JSON object) with the `stream_id` of its request, if it had one."""
    if stream_id is None:
        return data
    return f'{data[:-1]},"stream_id":{json.dumps(stream_id)}}}'


def _unexpected(exc: Exception) -> APIError:
    if isinstance(exc, APIError):
        return exc
    if database_unavailable(exc):
        log.warning("database unavailable on a WebSocket response: %s", exc)
        return database_down()
    log.exception("a WebSocket response failed")
    return ServerError("The server had an error while processing your request.")


class Connection:
    """One accepted socket of one project."""

    def __init__(self, websocket: WebSocket, state: State, project: str) -> None:
        self.websocket = websocket
        self.state = state
        self.project = project
        self.memory = Memory(
            state.write_sessions, state.query_sessions, state.forgetter, state.sealer, project
        )
        self.requests: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.steering = Steering(self)
        self._sending = asyncio.Lock()

    async def serve(self) -> None:
        runner = asyncio.create_task(self._run())
        keeper = asyncio.create_task(self.memory.keep_alive())
        try:
            while True:
                message = await self.websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                await self._take(message.get("text") or message.get("bytes") or "")
        finally:
            keeper.cancel()
            runner.cancel()
            try:
                await runner
            except (asyncio.CancelledError, WebSocketDisconnect):
                pass
            except Exception:
                log.exception("the responses of a WebSocket connection failed")
            active = self.steering.active
            self.memory.close(active.id if active is not None else None)

    async def steer(self, response_id: str) -> None:
        """Ask the running response to end at its next turn boundary (`responses.steering`);
        if that cannot be asked, it ends as it would have, and the successor follows it."""
        try:
            async with self.state.write_sessions() as session:
                await runs.mark_steered(session, response_id)
                await session.commit()
        except Exception as exc:
            log.warning("response %s: could not ask it to stop for steering: %s", response_id, exc)

    async def send(self, data: str) -> None:
        async with self._sending:
            if self.websocket.application_state is WebSocketState.CONNECTED:
                await self.websocket.send_text(data)

    # --- messages ----------------------------------------------------------------------------

    async def _take(self, raw: str | bytes) -> None:
        try:
            message = await self._parse(raw)
        except APIError as exc:
            await self.send(event_error(exc))
            return
        kind = message.get("type")
        if kind == "response.create":
            self.requests.put_nowait(message)
        elif kind == "response.steer":
            await self.steering.steer(message)
        else:
            shown = json.dumps(kind) if kind is not None else "none"
            await self.send(
                event_error(
                    InvalidRequestError(
                        f"Invalid value: {shown}. Supported values are: 'response.create' and "
                        "'response.steer'.",
                        param="type",
                        code="invalid_value" if kind is not None else "missing_required_parameter",
                    )
                )
            )

    async def _parse(self, raw: str | bytes) -> dict[str, Any]:
        """The message as a JSON object, under the rules HTTP bodies pass (size, nesting, text)."""
        data = raw.encode() if isinstance(raw, str) else raw
        limit = self.state.settings.max_request_bytes
        if len(data) > limit:
            raise PayloadTooLargeError(f"The message is larger than {limit} bytes.")
        deep = await nesting.too_deep(data)
        if deep is not None:
            raise InvalidRequestError(
                f"Invalid '{deep}': JSON nested more than {nesting.MAX_DEPTH} levels deep.",
                param=deep,
                code="invalid_value",
            )
        long = await lengths.too_long(data, RESPONSE_BOUNDS)
        if long is not None:
            raise too_long_error(long, responses=True)
        try:
            message = json.loads(data)
        except (ValueError, RecursionError):
            raise InvalidRequestError(
                "We could not parse the JSON of your message. The API expects each WebSocket "
                "message to be a JSON object, but what was sent was not valid JSON.",
                code="invalid_json",
            ) from None
        if not isinstance(message, dict):
            raise InvalidRequestError(
                "Invalid message: expected a JSON object with a 'type'.", code="invalid_type"
            )
        hit = text.first_problem(message)
        if hit is not None:
            raise InvalidRequestError(
                f"Invalid '{hit[0]}': the string {hit[1]}.",
                param=hit[0] or None,
                code="invalid_value",
            )
        return message

    # --- responses ---------------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.state.settings.websocket_max_seconds
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    message = await self.requests.get()
            except TimeoutError:
                message = None
            if loop.time() >= deadline:  # between responses: a running one is never cut
                await self._expire()
                return
            assert message is not None
            stream_id = message.get("stream_id")
            try:
                request = self._request(message)
            except APIError as exc:
                lane = stream_id if isinstance(stream_id, str) else None
                await self.send(event_error(exc, stream_id=lane))
                continue
            try:
                await self.respond(request)
            except (asyncio.CancelledError, WebSocketDisconnect):
                raise
            except Exception as exc:  # a fault of ours: say so, and serve the next request
                await self.send(event_error(_unexpected(exc), stream_id=request.stream_id))

    async def _expire(self) -> None:
        """The connection's lifetime is over: OpenAI's error event for it, then a clean close
        (requests still queued are not served: the client sends them on a new connection)."""
        seconds = self.state.settings.websocket_max_seconds
        shown = f"{seconds / 60:g} minutes" if seconds % 60 == 0 else f"{seconds:g} seconds"
        await self.send(
            event_error(
                InvalidRequestError(
                    f"Responses websocket connection limit reached ({shown}). Create a new "
                    "websocket connection to continue.",
                    code="websocket_connection_limit_reached",
                )
            )
        )
        async with self._sending:
            if self.websocket.application_state is WebSocketState.CONNECTED:
                await self.websocket.close(code=1000, reason="connection limit reached")

    def _request(self, message: dict[str, Any]) -> Request:
        stream_id = message.get("stream_id")
        if stream_id is not None and not isinstance(stream_id, str):
            raise InvalidRequestError(
                "Invalid type for 'stream_id': expected a string.",
                param="stream_id",
                code="invalid_type",
            )
        fields = {name: value for name, value in message.items() if name not in _ENVELOPE}
        if fields.get("background"):
            raise InvalidRequestError(
                "Background responses are not supported over WebSocket: send 'background' only "
                "over HTTP.",
                param="background",
                code="unsupported_parameter",
            )
        if fields.get("stream") is False:
            raise InvalidRequestError(
                "Responses over WebSocket are always streamed: 'stream' may not be false.",
                param="stream",
                code="invalid_value",
            )
        fields["stream"] = True
        try:
            body = CreateResponse.model_validate(fields)
        except ValidationError as exc:
            errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
            raise validation_error(errors, fields, responses_family=True) from None
        return Request(body, stream_id)

    async def respond(self, request: Request) -> None:
        """Create the response and send its events, then what follows it (steering)."""
        while True:
            ended = await self._one(request)
            successor = await self.steering.after(request, ended)
            if successor is None:
                return
            request = successor

    async def _one(self, request: Request) -> dict[str, Any] | None:
        """Serve one response; its final response object (None when it was refused)."""
        body, lane, state = request.body, request.stream_id, self.state
        continued = body.previous_response_id
        remembered = self.memory.get(continued) if continued is not None else None
        unstored = body.store is False
        # An unstored response is kept for continuations, chained to the kept one it continues;
        # a stored one continuing a kept one copies its items (they go with the connection).
        keep = self.memory.keep(remembered) if unstored and body.conversation is None else None
        copied = remembered if keep is None else None
        if copied is not None:
            body = body.model_copy(update={"previous_response_id": copied.anchor})
        body = self.steering.commit(request, body)
        try:
            async with state.write_sessions() as session:
                earlier: Sequence[Item] = ()
                if copied is not None:
                    earlier = await self.memory.items(session, copied)
                run = await create.create_response(
                    session,
                    self.project,
                    body,
                    models=state.models,
                    signals=state.signals,
                    worker=state.worker,
                    sealer=state.sealer,
                    settings=state.settings,
                    earlier=earlier,
                    continues=continued if copied is not None else None,
                    keep=keep,
                    steerable=body.conversation is None and not body.context_management,
                )
                batches = stream.open_events(
                    state.query_sessions,
                    state.signals,
                    run.id,
                    0,
                    before_commit=True,
                    ending=service.ENDING,
                )
                await session.commit()
                if keep is not None:
                    self.memory.created(run.id, keep, continued)
                await head_start(session)
        except Exception as exc:
            if continued is not None:
                self.memory.release(continued)
            await self.send(event_error(_unexpected(exc), stream_id=lane))
            await self.steering.refused(request)
            return None
        self.steering.started(run.id, request)
        last: Any = None
        try:
            async for batch in batches:
                for event in batch:
                    self.steering.seen(event.seq)
                    await self.send(with_lane(event.data, lane))
                if batch:
                    last = batch[-1]
        except (WebSocketDisconnect, asyncio.CancelledError):
            raise
        except Exception as exc:
            await self.send(event_error(_unexpected(exc), stream_id=lane))
        if unstored and keep is None:
            state.forgetter.forget(run.id)  # in a conversation: never continued here
        response: dict[str, Any] | None = None
        if last is not None and last.name in service.ENDING.events:
            response = json.loads(last.data)["response"]
        if response is not None and response["status"] == "failed" and continued is not None:
            self.memory.release(continued)
        elif response is not None and keep is not None:
            anchor = remembered.anchor if remembered is not None else body.previous_response_id
            await self.memory.remember(run.id, keep, remembered, anchor, response["output"])
            return response
        if keep is not None:
            self.memory.release(run.id)
        return response


async def _deny(websocket: WebSocket, exc: APIError) -> None:
    """Refuse the upgrade with the error's HTTP response (a close where the server cannot)."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(render(exc))
    else:
        await websocket.close(code=1008, reason=exc.message[:120])


async def responses_socket(websocket: WebSocket) -> None:
    """The Responses API in WebSocket mode."""
    state = websocket.app.state
    headers = websocket.headers
    try:
        path = websocket.url.path
        if path.startswith("/openai/responses") and not websocket.query_params.get("api-version"):
            raise NotFoundError(
                "Resource not found: Azure OpenAI routes under /openai/ need the api-version "
                "query parameter, or use /openai/v1/responses, which needs none.",
                code="404",
            )
        project = await authenticate(
            state.keys, headers.get("authorization"), headers.get("api-key")
        )
        # The connection is one of the project's open streams while it lasts.
        slot = await state.streams.take(project)
    except APIError as exc:
        await _deny(websocket, exc)
        return
    try:
        await websocket.accept()
        with contextlib.suppress(WebSocketDisconnect):
            await Connection(websocket, state, project).serve()
    finally:
        slot.release()
