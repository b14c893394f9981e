"""The array bounds of `kit.lengths`: a body small enough to parse is checked on the parsed value,
a larger one token by token, and both find the same first array over its bound."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import pytest

from assistantd.kit import lengths
from assistantd.kit.lengths import TooLong
from assistantd.kit.request_guard import _BOUNDS, RESPONSE_BOUNDS

PART = {"type": "input_text", "text": "p"}
ALL_BOUNDS = [RESPONSE_BOUNDS, *(bounds for _, bounds in _BOUNDS)]


def scanned(raw: bytes, bounds: list[lengths.Bound]) -> TooLong | None:
    steps = lengths._scan(raw, bounds)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            found: TooLong | None = done.value
            return found


def message(rng: random.Random) -> dict[str, Any]:
    key = rng.choice(["content", "output", "attachments"])
    element = rng.choice([PART, 1, "s", None, True, [1], {"a": [1, 2]}])
    body: dict[str, Any] = {"role": "user", key: [element] * rng.randint(0, 130)}
    if rng.random() < 0.3:
        body["content"] = [PART] * rng.randint(0, 120)
    return body


def test_parsed_and_scanned_bodies_break_the_same_bound_first() -> None:
    rng = random.Random(20261207)
    broken = 0
    for _ in range(400):
        key = rng.choice(["input", "items", "messages", "additional_messages"])
        body: dict[str, Any] = {key: [message(rng) for _ in range(rng.randint(0, 90))]}
        if rng.random() < 0.2:
            body = {"thread": {"messages": body[key]}}
        if rng.random() < 0.2:
            body["tools"] = [{"type": "function"}] * rng.randint(100, 140)
        separators = (",", ":") if rng.random() < 0.5 else (", ", ": ")
        raw = json.dumps(body, separators=separators).encode()
        for bounds in ALL_BOUNDS:
            found = lengths._first_over(json.loads(raw), bounds)
            assert found == scanned(raw, bounds), body
            broken += found is not None
    assert broken > 100  # the bodies do break bounds, of every kind


@pytest.mark.parametrize(
    ("body", "param", "limit"),
    [
        ({"input": [{"role": "user", "content": [PART] * 101}]}, "input[0].content", 100),
        ({"input": [{"content": [PART] * 100}] * 82}, "input[81].content", 8192),
        ({"input": [{"content": "x"}] * 2049}, "input", 2048),
        ({"input": [{"content": [1] * 101}]}, "input[0].content", 100),  # literals count too
    ],
)
def test_both_ways_name_the_array(body: dict[str, Any], param: str, limit: int) -> None:
    raw = json.dumps(body).encode()
    small = asyncio.run(lengths.too_long(raw, RESPONSE_BOUNDS))
    padded = raw[:-1] + b',"metadata":{"pad":"' + b"x" * lengths.PARSE_BYTES + b'"}}'
    large = asyncio.run(lengths.too_long(padded, RESPONSE_BOUNDS))
    assert small is not None
    assert large is not None
    assert (small.param, small.limit) == (large.param, large.limit) == (param, limit)
