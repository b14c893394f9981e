"""The GGUF header reader: the trained context length, past keys of every value type."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from assistantd.backends.gguf import GGUFError, trained_context_length
from assistantd.backends.local import bundled_model_path


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("<Q", len(data)) + data


def _gguf(path: Path, pairs: list[bytes]) -> Path:
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, len(pairs)) + b"".join(pairs))
    return path


def test_the_context_length_after_other_keys(tmp_path: Path) -> None:
    pairs = [
        _string("general.architecture") + struct.pack("<I", 8) + _string("llama"),
        _string("general.flag") + struct.pack("<IB", 7, 1),
        _string("tokenizer.ggml.tokens")
        + struct.pack("<IIQ", 9, 8, 2)
        + _string("a")
        + _string("bc"),
        _string("tokenizer.ggml.scores") + struct.pack("<IIQ", 9, 6, 2) + struct.pack("<ff", 1, 2),
        _string("llama.context_length") + struct.pack("<II", 4, 32768),
    ]
    assert trained_context_length(_gguf(tmp_path / "m.gguf", pairs)) == 32768


def test_none_without_the_key(tmp_path: Path) -> None:
    pairs = [_string("general.name") + struct.pack("<I", 8) + _string("x")]
    assert trained_context_length(_gguf(tmp_path / "m.gguf", pairs)) is None


@pytest.mark.parametrize(
    "data",
    [b"not a gguf", b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 99) + b"cut"],
)
def test_what_is_no_gguf_says_so(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "m.gguf"
    path.write_bytes(data)
    with pytest.raises(GGUFError):
        trained_context_length(path)


def test_the_bundled_model() -> None:
    path = bundled_model_path()
    if path is None:
        pytest.skip("the bundled model is not installed")
    assert trained_context_length(path) == 8192  # SmolLM2-135M-Instruct
