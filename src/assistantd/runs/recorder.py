"""How an execution appears on its API surface.

One engine executes Assistants runs and Responses responses (DESIGN.md, "Two API surfaces, one
engine"): the same claim, turn loop, tools, items, leases and event log. Only the rendering
differs, and it lives behind these two interfaces:

- a `Surface` renders status changes that happen outside an execution (created, queued, claimed,
  ended by the reaper) as events;
- a `Recorder` renders one execution's progress (text, tool calls, the end) as events, and keeps
  the rows its API has beyond items (the Assistants API's run steps).

`surface_of(run_id)` picks the surface by the id's prefix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from assistantd.db.models import Item, Run
from assistantd.kit.ids import Prefix
from assistantd.runs.events import EventWriter, Payload

if TYPE_CHECKING:
    from assistantd.runs.deps import RunDeps
    from assistantd.runs.turn import PendingCall
    from assistantd.tools.base import ToolResult

Events = list[tuple[str, Payload]]


@dataclass
class CallOutcome:
    """How one tool call of a turn ended: a server tool's result, an answer the engine gave
    itself (`output`, e.g. for a function that does not exist), or neither (waiting for the
    client)."""

    call: PendingCall
    result: ToolResult | None = None
    output: str | None = None


class Recorder(Protocol):
    # The thread new items go to while the execution runs: a run's thread; None for a response
    # (its conversation gets its items when it completes).
    items_thread_id: str | None
    # Whether function calls wait for the client's outputs (a run: `requires_action`); a
    # response ends instead, and the next response brings the outputs as input.
    waits_for_outputs: bool
    # Whether the model's reasoning becomes items (Responses); the Assistants API has none, so
    # a run's reasoning only counts in its usage.
    keeps_reasoning: bool

    def context_loaded(self, items: Sequence[Item]) -> None:
        """The items of the model's context for the next turn (what an earlier attempt of this
        run produced among them)."""
        ...

    # --- while the model streams (no awaiting: the stream must not wait) ---

    def reasoning_started(self, item: Item) -> None: ...

    def reasoning_text(self, item: Item, fragment: str) -> None: ...

    def reasoning_done(self, item: Item, text: str) -> None:
        """The reasoning item is complete with `text`: fill and close it, and its events."""
        ...

    def message_started(self, message: Item) -> None: ...

    def text(
        self,
        message: Item,
        fragment: str,
        *,
        save: dict[str, Any] | None = None,
        logprobs: list[dict[str, Any]] | None = None,
    ) -> None:
        """A text fragment (and its tokens' log probabilities, when asked for); `save`, when
        given, are the message's columns to store with it (a checkpoint)."""
        ...

    def call_started(self, call: PendingCall, position: int) -> None: ...

    def call_arguments(self, call: PendingCall, position: int, fragment: str) -> None: ...

    # --- a compaction of the context (a response's; see `autocompaction`) ---

    def compaction_started(self, item: Item) -> None:
        """A compaction item starts (not stored yet: it is when done)."""
        ...

    def compaction_progress(self, item: Item) -> None:
        """The summary is being sampled."""
        ...

    def compaction_done(self, item: Item) -> None:
        """The compaction item is complete (its data set): store it with its event."""
        ...

    # --- after the model's turn ---

    def calls_streamed(self, calls: Sequence[PendingCall]) -> None:
        """The turn's tool calls are complete (before any is executed)."""
        ...

    def tool_delta(self, call: PendingCall, position: int, delta: dict[str, Any]) -> None:
        """A server tool's progress (`delta` in the Assistants step's tool-call shape)."""
        ...

    def tool_done(self, call: PendingCall, position: int, result: ToolResult) -> None: ...

    def pending_parts(self) -> bool:
        """Whether tool output (images) waits for a message the model did not write."""
        ...

    async def message_closed(
        self,
        session: AsyncSession,
        message: Item,
        *,
        cut_short: bool,
        usage: dict[str, int],
        owns_usage: bool,
    ) -> None:
        """`message` (updated) is complete or cut short: stage its events, update own rows."""
        ...

    async def calls_closed(
        self,
        session: AsyncSession,
        run: Run,
        outcomes: Sequence[CallOutcome],
        usage: dict[str, int],
        *,
        waiting: bool,
    ) -> None:
        """The turn's calls are executed (or wait for the client, `waiting`): stage events,
        update own rows. The caller moves the run and commits."""
        ...

    def requires_action(self, run: Run) -> None:
        """`run` now waits for the client's function outputs: stage its event."""
        ...

    async def closing(
        self,
        session: AsyncSession,
        run: Run,
        status: str,
        closed: Sequence[Item],
        error: tuple[str, str] | None,
    ) -> None:
        """The run is ending with `status` (and `error`); `closed` are the items it left open,
        now closed. Stage their events (and whatever the surface announces before the end)."""
        ...

    async def ended(self, session: AsyncSession, run: Run) -> None:
        """`run` reached its terminal status in `session`: stage the final event."""
        ...

    def requeued(self, run: Run) -> Events:
        """Events for a run handed back to the queue."""
        ...


class Surface(Protocol):
    def recorder(self, deps: RunDeps, run: Run, writer: EventWriter) -> Recorder: ...

    def created(self, run: Run) -> Events:
        """The events of a new run (or response), queued."""
        ...

    async def claimed(self, session: AsyncSession, run: Run) -> Events:
        """A worker claimed `run` (again, when `run.attempts > 1`): tidy what an interrupted
        attempt left, and the events that announce it."""
        ...

    def requeued(self, run: Run) -> Events: ...

    async def ended_outside(
        self, session: AsyncSession, run: Run, error: tuple[str, str] | None
    ) -> Events:
        """`run` was moved to its terminal status by someone other than its executor (the
        reaper, expiry, a cancel while queued): close what it left open; its events."""
        ...


def surface_of(run_id: str) -> Surface:
    if run_id.startswith(Prefix.RESPONSE):
        from assistantd.responses.surface import RESPONSES

        return RESPONSES
    from assistantd.runs.thread_surface import THREADS

    return THREADS
