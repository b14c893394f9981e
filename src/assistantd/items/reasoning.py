"""Reasoning items: what a reasoning model thought before it answered.

An item's data holds `content` (`reasoning_text` parts, the model's own words), `summary`
(`summary_text` parts, when the request asked for one) and `encrypted_content`: the reasoning
sealed under the server key (`kit.sealed`, kind `reasoning`), which a stateless client
(`store: false`) carries to its next request instead of the text. An item that came back that
way keeps the opened text privately (`_text`) for the model's later turns.

A backend gives no summary of its reasoning, so the honest nearest thing is used: the reasoning's
first paragraph (`auto`, `concise`), or its first three paragraphs, one part each (`detailed`).
"""

from __future__ import annotations

from typing import Any

from assistantd.errors import InvalidRequestError
from assistantd.kit.sealed import Sealer

SEALED_KIND = "reasoning"
_DETAILED_PARTS = 3


def summary(text: str, mode: str | None) -> list[dict[str, Any]]:
    """The `summary` parts of reasoning `text` for the requested `reasoning.summary` mode."""
    if not mode:
        return []
    paragraphs = [p.strip() for p in text.strip().split("\n\n") if p.strip()]
    count = _DETAILED_PARTS if mode == "detailed" else 1
    return [{"type": "summary_text", "text": p} for p in paragraphs[:count]]


def data(text: str, summary_mode: str | None, sealer: Sealer | None) -> dict[str, Any]:
    """A completed reasoning item's data; sealed too when `sealer` is given."""
    out: dict[str, Any] = {
        "summary": summary(text, summary_mode),
        "content": [{"type": "reasoning_text", "text": text}],
    }
    if sealer is not None:
        out["encrypted_content"] = sealer.seal(SEALED_KIND, {"text": text})
    return out


def opened(sealer: Sealer, token: str, *, param: str) -> str:
    """The reasoning text `token` seals; a 400 `invalid_encrypted_content` naming `param` if it
    is not one of this server's reasoning tokens."""
    payload = sealer.open(SEALED_KIND, token, param=param)
    text = payload.get("text") if isinstance(payload, dict) else None
    if not isinstance(text, str):
        raise InvalidRequestError(
            "The encrypted content is not a reasoning item's.",
            param=param,
            code="invalid_encrypted_content",
        )
    return text


def text_of(data: dict[str, Any]) -> str:
    """What the model reasoned, as stored: the opened sealed text, else the content parts'."""
    if isinstance(data.get("_text"), str):
        return str(data["_text"])
    parts = data.get("content") or []
    return "".join(str(p.get("text", "")) for p in parts if isinstance(p, dict))
