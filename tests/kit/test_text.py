"""kit.text.suspect_json finds what SUSPECT_JSON's search finds, on every kind of byte string
near the pattern's edges (random strings over its alphabet, and the named cases)."""

from __future__ import annotations

import random

import pytest

from assistantd.kit.text import SUSPECT_JSON, suspect_json

NAMED = [
    b'{"a":"\\u0000"}',
    b'{"a":"\\ud800"}',
    b'{"a":"\\uDBFF"}',
    b'{"a":"\\u00e9"}',
    b'{"a":"\\u"}',
    b'{"a":"x\x00"}',
    b"\xed\xa0\x80",
    "한국어".encode(),
    b"\\\\u0000",
    b"",
]
ALPHABET = [b"\\", b"u", b"0", b"d", b"D", b"8", b"f", b"a", b"\xed", b"\xa0", b"\x9f", b"\x00"]


@pytest.mark.parametrize("body", NAMED)
def test_named_cases(body: bytes) -> None:
    assert suspect_json(body) == (SUSPECT_JSON.search(body) is not None)


def test_random_strings_agree_with_the_pattern() -> None:
    rng = random.Random(7)
    hits = 0
    for _ in range(20000):
        body = b"".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 14)))
        expected = SUSPECT_JSON.search(body) is not None
        assert suspect_json(body) == expected, body
        hits += expected
    assert 1000 < hits < 19000  # both answers are well represented
