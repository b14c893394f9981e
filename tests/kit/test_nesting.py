"""The nesting bound on raw JSON bodies, and encoding at any depth, without recursion."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from pydantic import BaseModel

from assistantd.kit import nesting
from assistantd.runs.events import encode


def _deep(levels: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(levels):
        value = [value]
    return value


def too_deep(body: bytes | str, limit: int = nesting.MAX_DEPTH) -> str | None:
    raw = body.encode() if isinstance(body, str) else body
    return asyncio.run(nesting.too_deep(raw, limit))


class TestTooDeep:
    def test_at_the_bound(self) -> None:
        assert too_deep(json.dumps({"x": _deep(99)})) is None  # the body's object + 99
        assert too_deep(json.dumps({"x": _deep(100)})) == "x" + "[0]" * 99

    def test_names_keys_and_indexes(self) -> None:
        body = {"a": [1, {"b": "s"}, {"c": {"d": _deep(10)}}]}
        assert too_deep(json.dumps(body), limit=6) == "a[2].c.d[0][0]"
        assert too_deep(json.dumps([[], [[[]]]]), limit=3) == "[1][0][0]"

    def test_brackets_in_strings_are_text(self) -> None:
        body = {"a": "[" * 500 + '\\"{', "b": '"]]]', "c": [[[]]]}
        assert too_deep(json.dumps(body), limit=4) is None
        assert too_deep(json.dumps(body), limit=3) == "c[0][0]"
        assert too_deep(json.dumps({"k[[[": {"v": [[]]}}), limit=3) == "k[[[.v[0]"

    def test_unparsable_depths(self) -> None:
        """Deeper than Python's own parser goes, and unterminated."""
        assert too_deep("[" * 1_000_000) == "[0]" * 100
        assert too_deep('{"x": ' + "[" * 200_000 + "]" * 200_000 + "}") == "x" + "[0]" * 99

    @pytest.mark.parametrize(
        "body",
        [
            "[" + "[]," * 100_000 + "[]]",
            json.dumps([_deep(20)] * 5_000),
            json.dumps({"input": [{"content": [{"text": "[[[[" * 10}]}] * 1_000}),
        ],
        ids=["wide", "many-teeth", "brackets-in-text"],
    )
    def test_wide_bodies_pass(self, body: str) -> None:
        assert too_deep(body) is None


class _Event(BaseModel):
    type: str = "e"
    payload: Any = None
    sequence_number: int | None = None


class TestEncodingAtAnyDepth:
    @pytest.mark.parametrize(
        "value",
        [
            {"a": [1, 2.5, None, True, False, 'é"\n\u2028', {"b": {}}], "c": [], "d": ()},
            {3: "int key", "x": {"y": [[], {}]}},
            "plain",
        ],
    )
    def test_dumps_is_json_dumps(self, value: Any) -> None:
        expected = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        assert nesting.dumps(value) == expected

    def test_dumps_deeper_than_the_stack(self) -> None:
        out = nesting.dumps({"x": _deep(50_000)})
        assert out == '{"x":' + "[" * 50_000 + "1" + "]" * 50_000 + "}"

    def test_event_encoder_past_pydantic_depth(self) -> None:
        """What pydantic's serializer and the C encoder refuse (about 250 and 1,000 levels)
        is written anyway, as the same JSON."""
        for levels in (300, 5_000):
            event = _Event(payload={"schema": _deep(levels)})
            text = encode(event)
            assert text.startswith('{"type":"e","payload":{"schema":[[[')
            assert text.count("[") == levels
            wrapped = encode({"type": "x", "response": event, "sequence_number": None})
            assert wrapped.startswith('{"type":"x","response":{"type":"e","payload"')
        shallow = _Event(payload=[1])
        assert encode(shallow) == shallow.model_dump_json()
