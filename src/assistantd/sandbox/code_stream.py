"""The code of a code interpreter call, decoded while the model is still writing its arguments.

The model streams `{"code": "import numpy as np\\n..."}` in fragments; `CodeStream.feed` turns
each fragment into the code text it completes (escapes decoded, a `\\u` escape split across
fragments held back), so clients can watch the code being written. Arguments that are not a
JSON object are the code itself (some models send it raw, see `tool.parse_code`).
"""

from __future__ import annotations

import json
import re

_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


class CodeStream:
    def __init__(self, key: str = "code") -> None:
        """`key`: the argument that holds the text (a custom tool's is `input`)."""
        self._key = re.compile(rf'"{re.escape(key)}"\s*:\s*"')
        self.code = ""
        self._mode: str | None = None  # None until known: "json" or "raw"
        self._buffer = ""  # JSON text not yet turned into code
        self._in_value = False
        self._done = False

    def feed(self, fragment: str) -> str:
        """The code `fragment` adds (possibly empty)."""
        if self._done or not fragment:
            return ""
        if self._mode is None:
            head = (self._buffer + fragment).lstrip()
            if not head:
                self._buffer += fragment
                return ""
            self._mode = "json" if head.startswith("{") else "raw"
            if self._mode == "raw":
                fragment, self._buffer = self._buffer + fragment, ""
        if self._mode == "raw":
            self.code += fragment
            return fragment
        self._buffer += fragment
        if not self._in_value:
            found = self._key.search(self._buffer)
            if found is None:
                return ""
            self._buffer = self._buffer[found.end() :]
            self._in_value = True
        added = self._decode()
        self.code += added
        return added

    def _decode(self) -> str:
        out: list[str] = []
        text, i = self._buffer, 0
        while i < len(text):
            char = text[i]
            if char == '"':
                self._done = True
                self._buffer = ""
                return "".join(out)
            if char != "\\":
                out.append(char)
                i += 1
                continue
            if i + 1 >= len(text):
                break  # the escape continues in the next fragment
            kind = text[i + 1]
            if kind == "u":
                if i + 6 > len(text):
                    break
                unit = text[i : i + 6]
                # a surrogate pair comes as two escapes: decode them together
                if 0xD800 <= int(unit[2:], 16) <= 0xDBFF:
                    if i + 12 > len(text):
                        break
                    unit = text[i : i + 12]
                try:
                    out.append(json.loads(f'"{unit}"'))
                except ValueError:
                    out.append(unit)
                i += len(unit)
                continue
            out.append(_ESCAPES.get(kind, kind))
            i += 2
        self._buffer = text[i:]
        return "".join(out)
