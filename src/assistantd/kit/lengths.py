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

import json
import re
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any

from assistantd.kit.nesting import TOKEN, TOKENS_PER_TURN, finish, frames_path, key_text

ANY_INDEX = "*"
# `kit.nesting`'s tokens and the literals between them (numbers, true, false, null): an array's
# first element is seen whatever it is.
_TOKEN = re.compile(TOKEN.pattern + rb"|[^\s\[\]{},:\"]+")


@dataclass(frozen=True)
class Bound:
    """At most `limit` elements in the array at `path` (keys, or `ANY_INDEX` for any index of
    an array): `("input", "*", "content")` is every `input[i].content`."""

    path: tuple[str, ...]
    limit: int
    # A count that all the arrays of the bounds naming it add to, bounded by `limit` in all
    # (the content parts of all of a response's input messages and tool outputs), not each.
    shared: str | None = None


@dataclass(frozen=True)
class TooLong:
    param: str  # `input[0].content`
    limit: int
    shared: str | None = None  # over a bound on a count of several arrays (`Bound.shared`)


# A body up to this size is parsed (C speed, a few ms at most) and its bounded arrays looked at
# where they are; a larger one is walked token by token, never parsed whole before its 400.
PARSE_BYTES = 1 << 20
# `parse`'s answer for a body that is not JSON, and `too_long`'s default for "not parsed yet".
NOT_JSON: Any = object()
UNPARSED: Any = object()


async def too_long(body: bytes, bounds: Sequence[Bound], parsed: Any = UNPARSED) -> TooLong | None:
    """The first array of JSON `body` longer than its bound, or None. `parsed`, when the caller
    parsed the body already (one of at most `PARSE_BYTES`), is its value; `NOT_JSON` when it
    did not parse."""
    if not bounds or body.count(b",") < min(bound.limit for bound in bounds):
        return None  # an array of n elements has n - 1 commas
    if len(body) <= PARSE_BYTES:
        if parsed is UNPARSED:
            parsed = parse(body)
        if parsed is NOT_JSON:
            return None  # the route's validation says what is wrong
        return _first_over(parsed, bounds)
    return await finish(_scan(body, bounds))


def parse(body: bytes) -> Any:
    """`body` as JSON, or `NOT_JSON`."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return NOT_JSON


def _bounds_at(frames: list[list[Any]], bounds: Sequence[Bound]) -> list[Bound]:
    """The bounds of an array opening where `frames` stand."""
    return [
        bound
        for bound in bounds
        if len(bound.path) == len(frames)
        and all(
            (want == ANY_INDEX) if not frame[0] else (frame[1] == want)
            for want, frame in zip(bound.path, frames, strict=True)
        )
    ]


def _scan(body: bytes, bounds: Sequence[Bound]) -> Generator[None, None, TooLong | None]:
    # One frame per open container: [is_object, key or index, whether a key comes next,
    # the array's bounds]. An array's index counts its elements from 0 once the first begins
    # (-1 before: `[]` has none); `counted` holds the elements of arrays already closed, per
    # bound on all the arrays at a path.
    frames: list[list[Any]] = []
    counted: dict[str, int] = {}
    for seen, match in enumerate(_TOKEN.finditer(body), 1):
        if seen % TOKENS_PER_TURN == 0:
            yield
        token = match.group()
        first = token[0]
        if frames and not frames[-1][0] and frames[-1][1] < 0 and first not in b"],":
            frames[-1][1] = 0  # an array's first element begins
            over = _over(frames, counted)
            if over is not None:
                return over
        if first == ord("{"):
            frames.append([True, None, True, ()])
        elif first == ord("["):
            frames.append([False, -1, False, _bounds_at(frames, bounds)])
        elif first in b"]}":
            if frames:
                top = frames.pop()
                for bound in top[3]:
                    if bound.shared is not None:
                        counted[bound.shared] = counted.get(bound.shared, 0) + top[1] + 1
        elif not frames:
            continue
        elif first == ord(","):
            top = frames[-1]
            if top[0]:
                top[1], top[2] = None, True
            else:
                top[1] += 1  # one more element follows
                over = _over(frames, counted)
                if over is not None:
                    return over
        elif frames[-1][0] and frames[-1][2]:  # an object's key
            frames[-1][1], frames[-1][2] = key_text(token), False
    return None


def _over(frames: list[list[Any]], counted: dict[str, int]) -> TooLong | None:
    """The bound the innermost array (its element `index` begun) now breaks, if any."""
    top = frames[-1]
    for bound in top[3]:
        elements = top[1] + 1
        if bound.shared is not None:
            elements += counted.get(bound.shared, 0)
        if elements > bound.limit:
            return TooLong(frames_path(frames[:-1]), bound.limit, bound.shared)
    return None


def _first_over(value: Any, bounds: Sequence[Bound]) -> TooLong | None:
    """What `_scan` finds on the body `value` was parsed from: the bounded arrays visited in the
    body's order, an array over its bound found at its first element too many (after what its
    earlier elements hold), a shared count over its bound where the array it crosses in is."""
    counted: dict[str, int] = {}
    # The paths that lead to a bounded array, and the arrays' own.
    wanted = {bound.path[:depth] for bound in bounds for depth in range(1, len(bound.path) + 1)}
    found: list[TooLong] = []

    def visit(node: Any, at: tuple[str, ...], frames: list[list[Any]]) -> bool:
        """Look into `node` (found at `at`, as bound paths spell it); True once `found`."""
        if isinstance(node, dict):
            for key, child in node.items():
                step = (*at, str(key))
                if isinstance(child, list | dict) and step in wanted:
                    frames.append([True, key])
                    hit = visit(child, step, frames)
                    frames.pop()
                    if hit:
                        return True
            return False
        if not isinstance(node, list):
            return False
        mine = [bound for bound in bounds if bound.path == at]
        inner = (*at, ANY_INDEX)
        descend = inner in wanted
        for index, child in enumerate(node):
            for bound in mine:
                before = counted.get(bound.shared, 0) if bound.shared is not None else 0
                if before + index + 1 > bound.limit:
                    found.append(TooLong(frames_path(frames), bound.limit, bound.shared))
                    return True
            if descend and isinstance(child, list | dict):
                frames.append([False, index])
                hit = visit(child, inner, frames)
                frames.pop()
                if hit:
                    return True
        for bound in mine:
            if bound.shared is not None:
                counted[bound.shared] = counted.get(bound.shared, 0) + len(node)
        return False

    visit(value, (), [])
    return found[0] if found else None
