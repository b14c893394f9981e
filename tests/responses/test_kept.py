"""When a WebSocket connection lets go of the unstored responses it keeps (`responses.kept.Memory`):
a response goes once neither it nor a response continuing it may be continued, the oldest
remembered ones make room for the newest, and the connection's end takes them all but what a
response still running reads. A unit test: the removals are noted, not made."""

from __future__ import annotations

from typing import Any, cast

from assistantd.responses.kept import MEMORY_RESPONSES, Memory
from assistantd.responses.unstored import Forgetter

STORED = "resp_stored"  # a stored response the chain continues: nothing to convert


class Noted(Forgetter):
    def __init__(self) -> None:
        self.forgotten: list[str] = []

    def forget(self, response_id: str) -> None:
        self.forgotten.append(response_id)


def _memory() -> tuple[Memory, Noted]:
    noted = Noted()
    none = cast(Any, None)
    return Memory(none, none, noted, none, "project"), noted


async def _turn(memory: Memory, response_id: str, continued: str | None) -> None:
    """A response created and ended, remembered."""
    remembered = memory.get(continued) if continued is not None else None
    keep = memory.keep(remembered)
    memory.created(response_id, keep, continued)
    await memory.remember(response_id, keep, remembered, STORED, [])


async def test_a_response_goes_once_nothing_continuing_it_is_remembered() -> None:
    memory, noted = _memory()
    await _turn(memory, "resp_1", None)
    await _turn(memory, "resp_2", "resp_1")
    # a continuation of resp_1 that failed: resp_1 may not be continued any more, but resp_2,
    # which continues it, may
    keep = memory.keep(memory.get("resp_1"))
    memory.created("resp_3", keep, "resp_1")
    memory.release("resp_1")
    memory.release("resp_3")
    assert noted.forgotten == ["resp_3"]
    assert memory.get("resp_1") is None
    remembered = memory.get("resp_2")
    assert remembered is not None
    assert remembered.kept == ("resp_2", "resp_1")
    memory.release("resp_2")
    assert noted.forgotten == ["resp_3", "resp_2", "resp_1"]


async def test_the_oldest_make_room_and_their_chain_stays() -> None:
    memory, noted = _memory()
    previous = None
    for index in range(MEMORY_RESPONSES + 3):
        await _turn(memory, f"resp_{index}", previous)
        previous = f"resp_{index}"
    # the three oldest are no longer remembered, yet the newest continue them: they stay
    assert [memory.get(f"resp_{index}") is None for index in range(4)] == [True] * 3 + [False]
    assert noted.forgotten == []
    await _turn(memory, "resp_other", None)  # another chain: the fourth oldest makes room
    assert noted.forgotten == []
    last = memory.get(previous or "")
    assert last is not None
    assert len(last.kept) == MEMORY_RESPONSES + 3


async def test_the_end_takes_all_but_what_a_running_response_reads() -> None:
    memory, noted = _memory()
    await _turn(memory, "resp_a", None)
    await _turn(memory, "resp_b", "resp_a")
    await _turn(memory, "resp_other", None)
    keep = memory.keep(memory.get("resp_b"))
    memory.created("resp_running", keep, "resp_b")
    memory.close("resp_running")
    assert noted.forgotten == ["resp_other"]  # the rest: the sweep's, once no longer kept
    memory.close(None)  # nothing left
    assert noted.forgotten == ["resp_other"]


async def test_the_end_takes_all_when_nothing_runs() -> None:
    memory, noted = _memory()
    await _turn(memory, "resp_a", None)
    await _turn(memory, "resp_b", "resp_a")
    memory.close(None)
    assert sorted(noted.forgotten) == ["resp_a", "resp_b"]
