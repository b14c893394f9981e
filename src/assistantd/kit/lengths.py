"""Arrays too long, found on the raw request body before anything parses it.

Python's JSON decoder and pydantic both read a whole array before any bound on its length is
checked: a message of a million `input_text` parts costs seconds of the event loop and a
gigabyte before its 400. `too_long` walks the body's tokens (as `kit.nesting` does, without
recursion, giving the event loop a turn every few milliseconds) and stops at the first array
longer than its bound, so a body is refused in time proportional to where it breaks one, not
to its size. A body with fewer commas than the smallest bound has no array to look at, and
costs one byte count.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any

from assistantd.kit.nesting import TOKEN, TOKENS_PER_TURN, frames_path, key_text

ANY_INDEX = "*"


@dataclass(frozen=True)
class Bound:
    """At most `limit` elements in the array at `path` (keys, or `ANY_INDEX` for any index of
    an array): `("input", "*", "content")` is every `input[i].content`."""

    path: tuple[str, ...]
    limit: int


@dataclass(frozen=True)
class TooLong:
    param: str  # `input[0].content`
    limit: int


async def too_long(body: bytes, bounds: Sequence[Bound]) -> TooLong | None:
    """The first array of JSON `body` longer than its bound, or None."""
    if not bounds or body.count(b",") < min(bound.limit for bound in bounds):
        return None  # an array of n elements has n - 1 commas
    steps = _scan(body, bounds)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            found: TooLong | None = done.value
            return found
        await asyncio.sleep(0)


def _bound_at(frames: list[list[Any]], bounds: Sequence[Bound]) -> int | None:
    """The bound of an array opening where `frames` stand."""
    for bound in bounds:
        if len(bound.path) == len(frames) and all(
            (want == ANY_INDEX) if not frame[0] else (frame[1] == want)
            for want, frame in zip(bound.path, frames, strict=True)
        ):
            return bound.limit
    return None


def _scan(body: bytes, bounds: Sequence[Bound]) -> Generator[None, None, TooLong | None]:
    # One frame per open container: [is_object, key or index, whether a key comes next,
    # the array's bound or None].
    frames: list[list[Any]] = []
    for seen, match in enumerate(TOKEN.finditer(body), 1):
        if seen % TOKENS_PER_TURN == 0:
            yield
        token = match.group()
        first = token[0]
        if first == ord("{"):
            frames.append([True, None, True, None])
        elif first == ord("["):
            frames.append([False, 0, False, _bound_at(frames, bounds)])
        elif first in b"]}":
            if frames:
                frames.pop()
        elif not frames:
            continue
        elif first == ord(","):
            top = frames[-1]
            if top[0]:
                top[1], top[2] = None, True
            else:
                top[1] += 1  # one more element follows
                if top[3] is not None and top[1] >= top[3]:
                    return TooLong(frames_path(frames[:-1]), top[3])
        elif frames[-1][0] and frames[-1][2]:  # an object's key
            frames[-1][1], frames[-1][2] = key_text(token), False
    return None
