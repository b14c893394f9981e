"""The token estimate heuristic."""

from __future__ import annotations

from assistantd.backends.tokens import (
    IMAGE_TOKENS,
    IMAGE_TOKENS_LOW,
    MESSAGE_OVERHEAD,
    REPLY_PRIMING,
    estimate_message_tokens,
    estimate_tokens,
    estimate_tools_tokens,
)


def test_text() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("abc") == 1
    assert estimate_tokens("abcd") == 1
    assert estimate_tokens("abcde") == 2
    assert estimate_tokens("x" * 400) == 100


def test_non_ascii_counts_per_character() -> None:
    assert estimate_tokens("日本語") == 3
    assert estimate_tokens("ab日") == 2


def test_messages() -> None:
    messages = [
        {"role": "system", "content": "x" * 40},
        {"role": "user", "content": [{"type": "text", "text": "y" * 8}]},
    ]
    assert estimate_message_tokens(messages) == REPLY_PRIMING + 2 * MESSAGE_OVERHEAD + 10 + 2


def test_empty_conversation() -> None:
    assert estimate_message_tokens([]) == REPLY_PRIMING


def test_images() -> None:
    low = {"type": "image_url", "image_url": {"url": "data:,", "detail": "low"}}
    auto = {"type": "image_url", "image_url": {"url": "data:,"}}
    messages = [{"role": "user", "content": [low, auto]}]
    expected = REPLY_PRIMING + MESSAGE_OVERHEAD + IMAGE_TOKENS_LOW + IMAGE_TOKENS
    assert estimate_message_tokens(messages) == expected


def test_tool_calls_and_results_count() -> None:
    bare = [{"role": "assistant", "content": None}]
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "x" * 80}}
    with_call = [
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "z" * 40},
    ]
    assert estimate_message_tokens(with_call) > estimate_message_tokens(bare) + 20 + 10


def test_tools() -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    assert estimate_tools_tokens([]) == 0
    assert estimate_tools_tokens([tool, tool]) == 2 * estimate_tools_tokens([tool]) > 8
