"""Helpers for the Conversations contract tests."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from openai import OpenAI


@pytest.fixture
def marker() -> str:
    """A token unique to this test: put it in an item, script the model for it."""
    return f"mk-{secrets.token_hex(6)}"


def listed(client: OpenAI, conversation_id: str) -> list[dict[str, Any]]:
    """Every item of a conversation, oldest first, as the server sent them."""
    return [
        item.model_dump(exclude_unset=True)
        for item in client.conversations.items.list(conversation_id, order="asc", limit=100)
    ]


def texts(item: dict[str, Any]) -> list[str]:
    """The texts of a message item's parts."""
    return [part.get("text", part.get("refusal")) for part in item["content"]]


def chat_texts(body: dict[str, Any]) -> list[tuple[str, str]]:
    """A chat request's messages as (role, text) pairs; tool calls as `call:name(args)` and
    tool results as `tool:output`. Developer messages count as system ones (backends take
    them as such)."""
    out: list[tuple[str, str]] = []
    for message in body["messages"]:
        content = message.get("content")
        if isinstance(content, list):
            content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
        if message["role"] == "tool":
            out.append(("tool", f"{message['tool_call_id']}={content}"))
            continue
        if content:
            role = "system" if message["role"] == "developer" else message["role"]
            out.append((role, content))
        for call in message.get("tool_calls") or ():
            fn = call["function"]
            out.append(("call", f"{call['id']}:{fn['name']}({fn['arguments']})"))
    return out
