"""Token log probabilities: as a Chat Completions backend gives them, and as the Responses API
shows them.

The stored and `output_text` shape is the Responses API's `LogProb`: `token`, `logprob`, `bytes`,
`top_logprobs` (each `token`, `logprob`, `bytes`). Stream events carry `ResponseLogProb`s, which
are the same without `bytes`.
"""

from __future__ import annotations

from typing import Any

LogProb = dict[str, Any]


def parse_logprobs(given: Any) -> list[LogProb] | None:
    """A choice's `logprobs` (`{"content": [...]}`) as `LogProb`s; None when it has none."""
    if not isinstance(given, dict):
        return None
    tokens = given.get("content")
    if not isinstance(tokens, list) or not tokens:
        return None
    return [_logprob(token, top=True) for token in tokens if isinstance(token, dict)]


def _logprob(token: dict[str, Any], *, top: bool) -> LogProb:
    text = str(token.get("token") or "")
    raw = token.get("bytes")
    value = token.get("logprob")
    out: LogProb = {
        "token": text,
        "logprob": float(value) if isinstance(value, int | float) else 0.0,
        "bytes": raw if isinstance(raw, list) else list(text.encode()),
    }
    if top:
        alternatives = token.get("top_logprobs")
        out["top_logprobs"] = [
            _logprob(alternative, top=False)
            for alternative in alternatives or ()
            if isinstance(alternative, dict)
        ]
    return out


def event_logprobs(logprobs: list[LogProb]) -> list[dict[str, Any]]:
    """`LogProb`s in the stream events' `ResponseLogProb` shape (no `bytes`)."""
    return [
        {
            "token": lp["token"],
            "logprob": lp["logprob"],
            "top_logprobs": [
                {"token": top["token"], "logprob": top["logprob"]} for top in lp["top_logprobs"]
            ],
        }
        for lp in logprobs
    ]
