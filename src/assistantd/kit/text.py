"""The one rule for text: no NUL character and no unpaired surrogate, anywhere.

PostgreSQL's text and jsonb cannot hold NUL (`\\u0000`) and neither database can store half of a
surrogate pair (Python's `"\\ud83d"`, which is not Unicode text and has no UTF-8 form). Requests
carrying either are refused with a 400 naming the parameter (`RequestGuard`); what models and
tools produce is scrubbed where it is stored (`scrub`, `scrub_json`), so a run printing `chr(0)`
still completes on both databases.
"""

from __future__ import annotations

import json
import re
from typing import Any

# NUL, and any surrogate code point (a str that holds one is not valid Unicode text).
BAD_CHAR = re.compile("[\x00\ud800-\udfff]")
# In a JSON body, before parsing: the escapes that decode to those, and UTF-8-like bytes of a
# surrogate (which `json.loads` decodes with "surrogatepass"). A hit is only a suspicion (an
# escaped backslash before `u0000` matches too); the parsed body decides.
SUSPECT_JSON = re.compile(
    rb"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})|\xed[\xa0-\xbf]|\x00", re.ASCII
)
REPLACEMENT = "\ufffd"


def suspect_json(body: bytes) -> bool:
    """Whether `SUSPECT_JSON` has a hit in `body`, found faster: without a NUL or the lead byte
    of a surrogate (rare: also Hangul's), the pattern is tried only where an escape begins
    (`bytes.find` scans a 40 KB body in microseconds, the pattern in a tenth of a millisecond)."""
    if b"\x00" in body or b"\xed" in body:
        return SUSPECT_JSON.search(body) is not None
    at = body.find(b"\\u")
    while at >= 0:
        if SUSPECT_JSON.match(body, at):
            return True
        at = body.find(b"\\u", at + 2)
    return False


def has_bad_char(value: str) -> bool:
    """Whether `value` breaks the rule: an ASCII string (CPython knows, at no cost) can only
    hold a NUL, which `in` finds faster than the pattern."""
    if value.isascii():
        return "\x00" in value
    return BAD_CHAR.search(value) is not None


def problem(value: str) -> str | None:
    """What is wrong with `value` under the rule, in words, or None."""
    found = BAD_CHAR.search(value)
    if found is None:
        return None
    if found.group() == "\x00":
        return "contains a NUL character (\\u0000), which is not allowed"
    return "contains an unpaired surrogate (a lone half of a UTF-16 pair), which is not valid text"


def first_problem(value: Any, path: str = "") -> tuple[str, str] | None:
    """The first string (object key or value) in parsed JSON `value` breaking the rule:
    `(param path such as messages[0].content, problem)`, or None. Walks without recursion, so
    no depth is too deep for it."""
    # (param path, value, whether the value is an object key), next to look at last
    work: list[tuple[str, Any, bool]] = [(path, value, False)]
    while work:
        where, item, is_key = work.pop()
        if isinstance(item, str):
            found = problem(item)
            if found is not None:
                return (where, f"has a key that {found}" if is_key else found)
        elif isinstance(item, dict):
            children: list[tuple[str, Any, bool]] = []
            for key, child in item.items():
                child_path = f"{where}.{key}" if where else str(key)
                if isinstance(key, str):
                    children.append((where or child_path, key, True))
                children.append((child_path, child, False))
            work.extend(reversed(children))
        elif isinstance(item, list):
            work.extend(reversed([(f"{where}[{i}]", child, False) for i, child in enumerate(item)]))
    return None


def scrub(value: str) -> str:
    """`value` with NUL characters and unpaired surrogates replaced by U+FFFD (valid pairs, which
    only a str built from UTF-16 halves holds, are joined first)."""
    if not has_bad_char(value):
        return value
    try:
        value = value.encode("utf-16", "surrogatepass").decode("utf-16")
    except UnicodeDecodeError:
        pass
    return BAD_CHAR.sub(REPLACEMENT, value)


def scrubbed(value: Any) -> Any:
    """Parsed JSON `value` with every string `scrub`bed."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {scrubbed(k): scrubbed(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrubbed(v) for v in value]
    return value


ESCAPED_BAD = re.compile(r"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")


def loads_scrubbed(data: str) -> Any:
    """`json.loads` for what models send: text breaking the rule arrives scrubbed."""
    value = json.loads(data)
    return scrubbed(value) if ESCAPED_BAD.search(data) else value


def scrub_json(value: Any) -> str:
    """`json.dumps` for the database's JSON columns: text breaking the rule is scrubbed first
    (only when the cheap look at the output suggests any)."""
    out = json.dumps(value)
    if ESCAPED_BAD.search(out) is None:
        return out
    return json.dumps(scrubbed(value))
