"""`response.steer` on a Responses WebSocket (see `responses.websocket`).

Steering input (user messages) for the response this connection is running is accepted
(`response.steer.accepted`, with a `steer_...` id) and queued. When that response ends:
- completed or incomplete with nothing for the client to supply: a successor response starts at
  once, with the target's settings, continuing it (`previous_response_id`) with the queued input
  in submission order; its `response.created` commits the input;
- stopped for client-owned tool output (function, custom, shell, apply_patch, tool search
  calls): the input stays queued and
  `response.steer.pending` follows `response.completed` with the stubs of what is needed; the
  client's next `response.create` continuing that response gets the queued input prepended to
  its own input;
- failed or cancelled: `response.steer.failed` (`response_not_active`) returns the input.
The running response ends at its next safe boundary: before its next model call (after the
tools its model called ran), it ends `incomplete` with `incomplete_details.reason` `steered`
(its output so far kept), and the successor follows at once. A response whose last model call
is under way when the input comes ends as it would have, and the successor follows it.
"""

from __future__ import annotations

import json
import secrets
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError

from assistantd.items.schemas import InputItem, MessageItem
from assistantd.responses.schemas import CreateResponse

if TYPE_CHECKING:
    from assistantd.responses.websocket import Connection

# Steering submissions queued for one response at most.
MAX_PENDING_STEERS = 32
# Finished responses a connection remembers, to tell "already completed" from "not found".
_FINISHED = 256
_MESSAGES: TypeAdapter[list[InputItem]] = TypeAdapter(list[InputItem])
_PARTS = frozenset({"input_text", "input_image", "input_file"})


@dataclass
class Steer:
    id: str
    previous_response_id: str
    given: Any  # the input as sent (returned as is when it cannot be committed)
    items: list[InputItem]


@dataclass
class Request:
    """A `response.create` to serve: its body, its lane, and the steering input it commits."""

    body: CreateResponse
    stream_id: str | None = None
    steers: list[Steer] = field(default_factory=list)


@dataclass
class Active:
    id: str
    request: Request
    seq: int = 0
    steers: list[Steer] = field(default_factory=list)


# The client-owned calls whose results a continuation needs, as `response.steer.pending`'s
# `required_input` stubs (identifying fields only) name them.
_OUTPUT_OF = {
    "function_call": "function_call_output",
    "custom_tool_call": "custom_tool_call_output",
    "shell_call": "shell_call_output",
    "apply_patch_call": "apply_patch_call_output",
    "local_shell_call": "local_shell_call_output",
}


def required_stub(item: dict[str, Any]) -> dict[str, Any] | None:
    kind = item.get("type")
    if kind == "tool_search_call" and item.get("execution") == "client":
        return {"type": "tool_search_output", "call_id": item["call_id"], "execution": "client"}
    if kind not in _OUTPUT_OF:
        return None
    stub = {"type": _OUTPUT_OF[kind], "call_id": item["call_id"]}
    if kind == "function_call":
        stub["name"] = item["name"]
    return stub


class SteerRefused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _items(given: Any) -> list[InputItem]:
    """Steering input as user messages; `SteerRefused` (`invalid_input`) for anything else."""
    if isinstance(given, str):
        if not given:
            raise SteerRefused("invalid_input", "Invalid 'input': expected a non-empty string.")
        return [MessageItem(role="user", content=given)]
    if not isinstance(given, list) or not given:
        raise SteerRefused(
            "invalid_input", "Invalid 'input': expected a string or a non-empty array."
        )
    for index, item in enumerate(given):
        where = f"input[{index}]"
        if not isinstance(item, dict) or set(item) - {"type", "role", "content"}:
            raise SteerRefused(
                "invalid_input",
                f"Invalid '{where}': a message with only 'type', 'role' and 'content'.",
            )
        if item.get("type", "message") != "message" or item.get("role") != "user":
            raise SteerRefused(
                "invalid_input", f"Invalid '{where}': steering accepts only user messages."
            )
        content = item.get("content")
        if isinstance(content, list) and any(
            not isinstance(part, dict) or part.get("type") not in _PARTS for part in content
        ):
            raise SteerRefused(
                "invalid_input",
                f"Invalid '{where}.content': only input_text, input_image and input_file parts.",
            )
    try:
        return _MESSAGES.validate_python([{"type": "message", **item} for item in given])
    except ValidationError as exc:
        raise SteerRefused("invalid_input", f"Invalid 'input': {exc.errors()[0]['msg']}") from None


class Steering:
    """The steering state of one connection."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.active: Active | None = None
        # Accepted input waiting for a client's continuation, by the response it continues.
        self.waiting: dict[str, list[Steer]] = {}
        self.finished: OrderedDict[str, None] = OrderedDict()

    async def steer(self, message: dict[str, Any]) -> None:
        target = message.get("previous_response_id")
        given = message.get("input")
        active = self.active
        try:
            extra = sorted(set(message) - {"type", "previous_response_id", "input"})
            if extra:
                raise SteerRefused(
                    "invalid_input",
                    f"Unknown parameter: '{extra[0]}'. response.steer accepts only "
                    "'type', 'previous_response_id' and 'input'.",
                )
            if not isinstance(target, str):
                raise SteerRefused(
                    "invalid_input", "Missing required parameter: 'previous_response_id'."
                )
            items = _items(given)
            if active is None or active.id != target:
                if target in self.finished:
                    raise SteerRefused(
                        "response_already_completed",
                        f"Response '{target}' has finished and accepts no steering input.",
                    )
                raise SteerRefused(
                    "response_not_found",
                    f"Response '{target}' is not running on this connection.",
                )
            body = active.request.body
            if body.conversation is not None or body.context_management:
                raise SteerRefused(
                    "steering_not_supported",
                    "Responses in a conversation or with automatic compaction cannot be steered.",
                )
            if len(active.steers) >= MAX_PENDING_STEERS:
                raise SteerRefused(
                    "too_many_pending_steers",
                    f"At most {MAX_PENDING_STEERS} steering submissions may wait for a response.",
                )
        except SteerRefused as refused:
            lane = active.request.stream_id if active is not None and active.id == target else None
            shown = target if isinstance(target, str) else ""
            await self._failed(None, shown, given, refused.code, refused.message, lane)
            return
        steer = Steer(f"steer_{secrets.token_hex(16)}", target, given, items)
        active.steers.append(steer)
        await self._send("response.steer.accepted", steer, active.request.stream_id, active.seq)
        if len(active.steers) == 1:
            await self.connection.steer(target)

    # --- the connection's responses ----------------------------------------------------------

    def commit(self, request: Request, body: CreateResponse) -> CreateResponse:
        """`body` with the steering input waiting for the response it continues, if any."""
        continued = request.body.previous_response_id
        if request.steers or continued is None or continued not in self.waiting:
            return body
        request.steers = self.waiting.pop(continued)
        own = body.input
        if isinstance(own, str):
            own = [MessageItem(role="user", content=own)]
        queued = [item for steer in request.steers for item in steer.items]
        return body.model_copy(update={"input": [*queued, *(own or ())]})

    def started(self, response_id: str, request: Request) -> None:
        self.active = Active(response_id, request)

    def seen(self, seq: int) -> None:
        if self.active is not None:
            self.active.seq = seq

    async def refused(self, request: Request) -> None:
        """The response that was to commit `request.steers` could not be created."""
        for steer in request.steers:
            await self._failed(
                steer.id,
                steer.previous_response_id,
                steer.given,
                "successor_creation_failed",
                "The response continuing the steered one could not be created.",
                request.stream_id,
            )

    async def after(self, request: Request, response: dict[str, Any] | None) -> Request | None:
        """What follows the active response's end: its successor, if steering asks for one."""
        active, self.active = self.active, None
        if active is None:
            return None
        self.finished[active.id] = None
        while len(self.finished) > _FINISHED:
            self.finished.popitem(last=False)
        steers = active.steers
        if not steers:
            return None
        lane = request.stream_id
        status = response["status"] if response is not None else "failed"
        if status not in ("completed", "incomplete"):
            for steer in steers:
                await self._failed(
                    steer.id,
                    steer.previous_response_id,
                    steer.given,
                    "response_not_active",
                    f"Response '{active.id}' ended {status}; its steering input was not applied.",
                    lane,
                )
            return None
        assert response is not None
        stubs = (required_stub(item) for item in response["output"])
        required = [stub for stub in stubs if stub is not None]
        if required:
            self.waiting.setdefault(active.id, []).extend(steers)
            for steer in steers:
                await self._send(
                    "response.steer.pending",
                    steer,
                    lane,
                    active.seq,
                    reason="waiting_for_required_input",
                    required_input=required,
                )
            return None
        queued = [item for steer in steers for item in steer.items]
        body = request.body.model_copy(update={"input": queued, "previous_response_id": active.id})
        return Request(body, lane, steers)

    # --- events ------------------------------------------------------------------------------

    async def _send(
        self, kind: str, steer: Steer, lane: str | None, seq: int, **fields: Any
    ) -> None:
        event: dict[str, Any] = {
            "type": kind,
            "sequence_number": seq,
            "steer": {"id": steer.id, "previous_response_id": steer.previous_response_id},
            **fields,
        }
        if lane is not None:
            event["stream_id"] = lane
        await self.connection.send(_dumps(event))

    async def _failed(
        self,
        steer_id: str | None,
        target: str,
        given: Any,
        code: str,
        message: str,
        lane: str | None,
    ) -> None:
        steer: dict[str, Any] = {"previous_response_id": target, "input": given}
        if steer_id is not None:
            steer["id"] = steer_id
        event: dict[str, Any] = {
            "type": "response.steer.failed",
            "sequence_number": self.active.seq if self.active is not None else 0,
            "error": {"code": code, "message": message, "type": "invalid_request_error"},
            "steer": steer,
        }
        if lane is not None:
            event["stream_id"] = lane
        await self.connection.send(_dumps(event))


def _dumps(event: dict[str, Any]) -> str:
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False)
