"""The stream events of the calls a client runs, between their `response.output_item.added`
and `.done`: a function's arguments (`response.function_call_arguments.*`), a custom tool's
input (`response.custom_tool_call_input.*`, decoded from the `input` argument as the model
writes it), a shell call's commands (`response.shell_call_command.*`, once the call is
complete). Local shell, apply_patch and tool search calls have no events of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from assistantd.items import client_calls
from assistantd.runs.turn import PendingCall
from assistantd.sandbox.code_stream import CodeStream

Emit = Callable[..., None]


class ClientCallEvents:
    def __init__(self, emit: Emit, delta_extras: Callable[[], dict[str, Any]]) -> None:
        self._emit = emit
        self._extras = delta_extras
        self._inputs: dict[str, CodeStream] = {}

    def arguments(self, call: PendingCall, index: int, fragment: str) -> None:
        kind = call.item.type
        if kind == "function_call":
            self._emit(
                "response.function_call_arguments.delta",
                item_id=call.item.id,
                output_index=index,
                delta=fragment,
                **self._extras(),
            )
        elif kind == "custom_tool_call":
            text = self._inputs.setdefault(call.id, CodeStream("input")).feed(fragment)
            if text:
                self._emit(
                    "response.custom_tool_call_input.delta",
                    item_id=call.item.id,
                    output_index=index,
                    delta=text,
                )

    def done(self, call: PendingCall, index: int) -> None:
        """The call is complete: its item takes its final data; its closing events."""
        item = call.item
        item.data = client_calls.call_data(call.client, call.name, call.arguments)
        item.status = "completed"
        data = item.data
        if item.type == "function_call":
            self._emit(
                "response.function_call_arguments.done",
                item_id=item.id,
                output_index=index,
                name=data["name"],
                arguments=call.arguments,
            )
        elif item.type == "custom_tool_call":
            self._inputs.pop(call.id, None)
            self._emit(
                "response.custom_tool_call_input.done",
                item_id=item.id,
                output_index=index,
                input=data["input"],
            )
        elif item.type == "shell_call":
            for number, command in enumerate(data["action"]["commands"]):
                fields = {"output_index": index, "command_index": number}
                self._emit("response.shell_call_command.added", command="", **fields)
                self._emit(
                    "response.shell_call_command.delta", delta=command, **fields, **self._extras()
                )
                self._emit("response.shell_call_command.done", command=command, **fields)
