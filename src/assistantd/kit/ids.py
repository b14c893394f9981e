"""Object ids: OpenAI's prefixes, random and unguessable, and sortable by creation.

An id body is 28 characters of the base32hex alphabet, whose ASCII order is its numeric order:
9 characters of Unix milliseconds, 3 of a per-process counter (strictly increasing ids within one
process), then 16 random characters (80 bits from `secrets`). Lists sort by id, so a cursor keeps
its place even after the object it names was deleted, and ties inside one millisecond break
stably.
"""

from __future__ import annotations

import re
import secrets
import threading
import time

from assistantd.errors import InvalidRequestError

_ALPHABET = "0123456789abcdefghijklmnopqrstuv"
_RANDOM_CHARS = 16
_lock = threading.Lock()
_last_ms = 0
_counter = 0


def _encode(value: int, width: int) -> str:
    chars = []
    for _ in range(width):
        value, digit = divmod(value, 32)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))


def _tick() -> tuple[int, int]:
    global _last_ms, _counter
    with _lock:
        now = time.time_ns() // 1_000_000
        if now > _last_ms:
            _last_ms, _counter = now, 0
        else:
            _counter += 1
            if _counter >= 32**3:  # a very busy millisecond: borrow the next one
                _last_ms, _counter = _last_ms + 1, 0
        return _last_ms, _counter


def new_id(prefix: str) -> str:
    """A fresh id such as `asst_01k...`; `prefix` includes its separator (`asst_`, `file-`)."""
    ms, counter = _tick()
    rand = _encode(secrets.randbits(5 * _RANDOM_CHARS), _RANDOM_CHARS)  # one draw, not one a char
    return f"{prefix}{_encode(ms, 9)}{_encode(counter, 3)}{rand}"


def created_at_of(object_id: str) -> int:
    """Unix seconds encoded in an id made by `new_id`."""
    return created_at_ms_of(object_id) // 1000


def created_at_ms_of(object_id: str) -> int:
    """Unix milliseconds encoded in an id made by `new_id`."""
    body = object_id[object_id.index("_" if "_" in object_id else "-") + 1 :]
    ms = 0
    for ch in body[:9]:
        ms = ms * 32 + _ALPHABET.index(ch)
    return ms


def position_of(object_id: str, param: str | None = None) -> str:
    """The creation-ordered body of an id made by `new_id` (ids of kinds whose prefixes differ
    in length sort by it, not by the whole id). A value with no prefix is no id: a 400 naming
    `param` (a list's `after` or `before`)."""
    if "_" not in object_id and "-" not in object_id:
        raise InvalidRequestError(
            f"Invalid '{param}': '{object_id[:200]}'. Expected an ID that begins with its "
            "object's prefix, such as 'msg_'.",
            param=param,
            code="invalid_value",
        )
    return object_id[object_id.index("_" if "_" in object_id else "-") + 1 :]


ID_MAX_LENGTH = 128
_ID_CHARS = re.compile(rf"[A-Za-z0-9_-]{{1,{ID_MAX_LENGTH}}}")


def id_pattern(*prefixes: str) -> str:
    """The JSON schema pattern of ids with one of `prefixes` (what `check_prefix` accepts)."""
    alternatives = "|".join(prefixes)
    head = f"({alternatives})" if len(prefixes) > 1 else alternatives
    return f"^{head}[A-Za-z0-9_-]+$"


def check_prefix(value: str | None, prefix: str | tuple[str, ...], param: str) -> None:
    """400 (code `invalid_value`) for a malformed id, in OpenAI's words: one of the wrong kind
    (naming the first prefix allowed) or with characters no id has."""
    if value is None:
        return
    if not _ID_CHARS.fullmatch(value):
        raise InvalidRequestError(
            f"Invalid '{param}': '{value[:200]}'. Expected an ID that contains letters, numbers, "
            "underscores, or dashes, but this value contained additional characters.",
            param=param,
            code="invalid_value",
        )
    if not value.startswith(prefix):
        first = prefix if isinstance(prefix, str) else prefix[0]
        raise InvalidRequestError(
            f"Invalid '{param}': '{value}'. Expected an ID that begins with "
            f"'{first.rstrip('_-')}'.",
            param=param,
            code="invalid_value",
        )


class Prefix:
    """Every id prefix the server mints, in one place."""

    ASSISTANT = "asst_"
    THREAD = "thread_"
    CONVERSATION = "conv_"
    MESSAGE = "msg_"
    RUN = "run_"
    RESPONSE = "resp_"
    FUNCTION_CALL = "fc_"
    FUNCTION_CALL_OUTPUT = "fco_"
    CODE_INTERPRETER_CALL = "ci_"
    FILE_SEARCH_CALL = "fs_"
    WEB_SEARCH_CALL = "ws_"
    REASONING = "rs_"
    COMPACTION = "cmp_"
    CUSTOM_TOOL_CALL = "ctc_"
    CUSTOM_TOOL_CALL_OUTPUT = "ctco_"
    LOCAL_SHELL_CALL = "lsh_"
    LOCAL_SHELL_CALL_OUTPUT = "lsho_"
    SHELL_CALL = "sh_"
    SHELL_CALL_OUTPUT = "sho_"
    APPLY_PATCH_CALL = "apc_"
    APPLY_PATCH_CALL_OUTPUT = "apco_"
    TOOL_SEARCH_CALL = "tsc_"
    TOOL_SEARCH_OUTPUT = "tso_"
    ADDITIONAL_TOOLS = "at_"
    MCP_LIST_TOOLS = "mcpl_"
    MCP_CALL = "mcp_"
    MCP_APPROVAL_REQUEST = "mcpr_"
    MCP_APPROVAL_RESPONSE = "mcpa_"
    STEP = "step_"
    CALL = "call_"
    FILE = "file-"
    UPLOAD = "upload_"
    PART = "part_"
    VECTOR_STORE = "vs_"
    FILE_BATCH = "vsfb_"
    CONTAINER = "cntr_"
    CONTAINER_FILE = "cfile_"
    API_KEY = "key_"


# A thread made by either API: the Assistants API's threads are conversations and back.
THREAD_IDS = (Prefix.THREAD, Prefix.CONVERSATION)
