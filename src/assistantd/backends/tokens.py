"""Token counts estimated without a tokenizer (no downloads; backends differ anyway).

The heuristic, tuned to over- rather than under-count so that truncation keeps a margin:
- text: one token per 4 ASCII characters (rounded up), plus one per non-ASCII character (CJK
  and similar scripts run at roughly one token per character in BPE vocabularies);
- a message: its text plus `MESSAGE_OVERHEAD` tokens (role and separators, as OpenAI counts it),
  plus the name, tool-call names and arguments and `tool_call_id`; an image part counts
  `IMAGE_TOKENS_LOW` with `detail: low` and `IMAGE_TOKENS` otherwise (a 1024x1024 image at
  high detail);
- a conversation: the messages plus `REPLY_PRIMING` for the assistant reply that follows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

MESSAGE_OVERHEAD = 4
REPLY_PRIMING = 3
TOOL_CALL_OVERHEAD = 4
TOOL_DEFINITION_OVERHEAD = 8
IMAGE_TOKENS_LOW = 85
IMAGE_TOKENS = 765


def estimate_tokens(text: str) -> int:
    """Tokens in `text` (0 for the empty string)."""
    if not text:
        return 0
    ascii_chars = len(text) if text.isascii() else len(text.encode("ascii", "ignore"))
    return -(-ascii_chars // 4) + (len(text) - ascii_chars)


def estimate_message_tokens(messages: list[dict[str, Any]]) -> int:
    """Prompt tokens of Chat Completions `messages`, reply priming included."""
    return REPLY_PRIMING + sum(_message_tokens(message) for message in messages)


def estimate_tools_tokens(tools: Iterable[dict[str, Any]]) -> int:
    """Prompt tokens the tool definitions add (their JSON, plus a little per tool)."""
    return sum(
        TOOL_DEFINITION_OVERHEAD + estimate_tokens(json.dumps(tool, separators=(",", ":")))
        for tool in tools
    )


def _message_tokens(message: dict[str, Any]) -> int:
    tokens = MESSAGE_OVERHEAD + _content_tokens(message.get("content"))
    for key in ("name", "tool_call_id"):
        value = message.get(key)
        if isinstance(value, str):
            tokens += estimate_tokens(value)
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        tokens += TOOL_CALL_OVERHEAD
        tokens += estimate_tokens(str(function.get("name") or ""))
        tokens += estimate_tokens(str(function.get("arguments") or ""))
    return tokens


def _content_tokens(content: Any) -> int:
    if content is None:
        return 0
    if isinstance(content, str):
        return estimate_tokens(content)
    tokens = 0
    for part in content:
        if not isinstance(part, dict):
            tokens += estimate_tokens(str(part))
        elif part.get("type") == "image_url":
            image = part.get("image_url") or {}
            tokens += IMAGE_TOKENS_LOW if image.get("detail") == "low" else IMAGE_TOKENS
        elif isinstance(part.get("text"), str):
            tokens += estimate_tokens(part["text"])
        elif isinstance(part.get("refusal"), str):
            tokens += estimate_tokens(part["refusal"])
    return tokens
