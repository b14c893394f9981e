"""What a GGUF file says about its model, read from its header without loading it.

Only the metadata the embedded model needs: the context length the model was trained on
(`{architecture}.context_length`). The format: magic `GGUF`, a version, the tensor and key
counts, then key/value pairs (a length-prefixed key, a value type, the value), all little-endian.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

_MAGIC = b"GGUF"
# Value types: their fixed sizes (the string and array types are read apart).
_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_INTEGERS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 10: "<Q", 11: "<q"}
_STRING, _ARRAY = 8, 9


class GGUFError(ValueError):
    """The file is not a GGUF this reader understands."""


def trained_context_length(path: Path) -> int | None:
    """The context length `path`'s model was trained on, or None if its header has none."""
    with path.open("rb") as file:
        if file.read(4) != _MAGIC:
            raise GGUFError(f"{path} is not a GGUF file")
        version, _tensors, keys = struct.unpack("<IQQ", _exactly(file, 20))
        if version < 2:
            raise GGUFError(f"{path} is GGUF version {version}; versions 2 and 3 are read")
        for _ in range(keys):
            key = _string(file)
            kind = struct.unpack("<I", _exactly(file, 4))[0]
            if key.endswith(".context_length") and kind in _INTEGERS:
                raw = _exactly(file, _SIZES[kind])
                return int(struct.unpack(_INTEGERS[kind], raw)[0])
            _skip(file, kind)
    return None


def _exactly(file: BinaryIO, count: int) -> bytes:
    data = file.read(count)
    if len(data) != count:
        raise GGUFError("the GGUF header ends early")
    return data


def _string(file: BinaryIO) -> str:
    length = struct.unpack("<Q", _exactly(file, 8))[0]
    return _exactly(file, length).decode("utf-8", "replace")


def _skip(file: BinaryIO, kind: int) -> None:
    if kind in _SIZES:
        file.seek(_SIZES[kind], 1)
    elif kind == _STRING:
        file.seek(struct.unpack("<Q", _exactly(file, 8))[0], 1)
    elif kind == _ARRAY:
        item_kind, count = struct.unpack("<IQ", _exactly(file, 12))
        if item_kind in _SIZES:
            file.seek(_SIZES[item_kind] * count, 1)
        else:
            for _ in range(count):
                _skip(file, item_kind)
    else:
        raise GGUFError(f"unknown GGUF value type {kind}")
