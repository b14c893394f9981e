"""JSON nested deeply: the request bound, and encoding that never recurses.

Python's JSON decoder and encoder, pydantic's serializer and any recursive walk over parsed JSON
each stop somewhere between 250 and 1,000 levels (a `RecursionError`, a "maximum serialization
depth"). So no request body may nest arrays and objects more than `MAX_DEPTH` levels deep (its
own object counting as one): `too_deep` finds the first place that does, for a 400 naming it,
before anything parses the body. It reads raw bytes, never recurses, costs two byte counts for a
body with fewer brackets than the bound, a pass at C speed for most others, and gives the event
loop a turn every few milliseconds however large the body.

`dumps` is `json.dumps` without recursion, for what must be written whatever its depth.
"""

from __future__ import annotations

import asyncio
import json
import operator
import re
from collections.abc import Callable, Generator
from itertools import accumulate, count
from typing import Any, TypeVar

import pydantic_core
from pydantic import BaseModel

MAX_DEPTH = 100
T = TypeVar("T")

# Everything but brackets (deleted to leave a body's structure), then brackets as weights:
# an opening one 2, a closing one 0, so that 2 * opened - seen is the depth.
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_WEIGHTS = bytes.maketrans(b"[{]}", b"\x02\x02\x00\x00")
_SLICE = 1 << 18  # bytes per look at the bound (a few ms at most)
_PAIR = b"\x02\x00"
_PASSES = 12  # each costs about what the exact count costs a twelfth of
TOKENS_PER_TURN = 8192
TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{},]')


async def too_deep(body: bytes, limit: int = MAX_DEPTH) -> str | None:
    """The parameter path (`tools[0].parameters.properties...`) of the first array or object in
    JSON `body` that lies deeper than `limit` levels, or None."""
    return await finish(_too_deep(body, limit))


async def finish(steps: Generator[None, None, T]) -> T:
    """Run a walk that yields every `TOKENS_PER_TURN` tokens to its end, giving the event loop
    a turn at each yield; its return value."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            found: T = done.value
            return found
        await asyncio.sleep(0)


def _too_deep(body: bytes, limit: int) -> Generator[None, None, str | None]:
    if not (yield from _may_exceed(body, limit)):
        return None
    return (yield from _scan(body, limit))


def _may_exceed(body: bytes, limit: int) -> Generator[None, None, bool]:
    """Whether the brackets of `body`, those inside strings included, ever stand more than
    `limit` deep (a bound: brackets in strings only make it larger)."""
    depth = 0
    for start in range(0, len(body), _SLICE):
        weights = body[start : start + _SLICE].translate(None, _NOT_BRACKETS).translate(_WEIGHTS)
        opened, seen = weights.count(2), len(weights)
        if depth + opened > limit:
            # Dropping the innermost pairs lowers every peak by one and leaves the depth after
            # the slice as it was: passes shrink the exact count's work.
            passes = 0
            while passes < _PASSES and (fewer := weights.replace(_PAIR, b"")) != weights:
                weights, passes = fewer, passes + 1
            peak = max(map(operator.sub, accumulate(weights), count(1)), default=0)
            if depth + peak + passes > limit:
                return True
        depth += 2 * opened - seen
        yield
    return False


def _scan(body: bytes, limit: int) -> Generator[None, None, str | None]:
    """The exact walk: tokens outside strings, with the path to where the walk stands."""
    # One frame per open container: [is_object, key or index, whether a key comes next].
    frames: list[list[Any]] = []
    for seen, match in enumerate(TOKEN.finditer(body), 1):
        if seen % TOKENS_PER_TURN == 0:
            yield
        token = match.group()
        first = token[0]
        if first in b"[{":
            if len(frames) + 1 > limit:
                return frames_path(frames)
            frames.append([first == ord("{"), None if first == ord("{") else 0, True])
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
                top[1] += 1
        elif frames[-1][0] and frames[-1][2]:  # an object's key
            frames[-1][1], frames[-1][2] = key_text(token), False
    return None


def key_text(token: bytes) -> str:
    try:
        key = json.loads(token)
    except ValueError:
        key = token[1:-1].decode("utf-8", "replace")
    return str(key)


def frames_path(frames: list[list[Any]]) -> str:
    out = ""
    for frame in frames:
        is_object, label = frame[0], frame[1]
        if is_object:
            out += f".{label}" if out else str(label)
        else:
            out += f"[{label}]"
    return out


class _Raw(str):
    """Text `dumps` writes as it is (punctuation), not as a JSON string."""


_CEILING = 1_000_000  # levels: a cycle, not data


def dumps(value: Any, default: Callable[[Any], Any] | None = None) -> str:
    """`json.dumps(value, separators=(",", ":"), ensure_ascii=False)` at any depth, without
    recursion. A pydantic model is written as its `model_dump()`, anything else JSON has no
    word for as `default` (else pydantic's JSON form of it) says."""
    out: list[str] = []
    work: list[Any] = [value]
    depth = 0
    while work:
        item = work.pop()
        if isinstance(item, _Raw):
            out.append(item)
            if item in ("]", "}"):
                depth -= 1
        elif isinstance(item, str) or item is None or isinstance(item, bool | int | float):
            out.append(json.dumps(item, ensure_ascii=False))
        elif isinstance(item, dict | list | tuple):
            depth += 1
            if depth > _CEILING:
                raise ValueError("Circular reference detected")
            work.extend(reversed(_parts(item)))
        elif isinstance(item, BaseModel):
            work.append(item.model_dump())
        else:
            work.append(default(item) if default else pydantic_core.to_jsonable_python(item))
    return "".join(out)


def _parts(container: dict[Any, Any] | list[Any] | tuple[Any, ...]) -> list[Any]:
    """What a container is written as, in order: punctuation and the values between."""
    if isinstance(container, dict):
        parts: list[Any] = [_Raw("{")]
        for index, (key, item) in enumerate(container.items()):
            name = key if isinstance(key, str) else json.dumps(key).strip('"')
            comma = "," if index else ""
            parts += [_Raw(f"{comma}{json.dumps(name, ensure_ascii=False)}:"), item]
        return [*parts, _Raw("}")]
    parts = [_Raw("[")]
    for index, item in enumerate(container):
        if index:
            parts.append(_Raw(","))
        parts.append(item)
    return [*parts, _Raw("]")]
