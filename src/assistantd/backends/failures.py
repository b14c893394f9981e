"""What went wrong with a model call: classified for retrying and worded for the user.

Every message names the backend URL and model and quotes what the upstream said, so that a run's
`last_error.message` tells its reader what to fix.
"""

from __future__ import annotations

import email.utils
import json
import time
from typing import Any, Literal

from assistantd.backends.routing import ModelRoute
from assistantd.backends.transport import Answer, TransportError
from assistantd.settings import Settings

BackendErrorCode = Literal[
    "rate_limit_exceeded", "server_error", "invalid_prompt", "context_length_exceeded"
]

# Retried like 5xx (the `openai` SDK retries these too); other 4xx are the request's fault.
RETRYABLE_STATUS = frozenset({408, 409, 429})
# How backends say a prompt does not fit: OpenAI's code, and the words of vLLM ("maximum
# context length"), llama.cpp ("exceed_context_size_error", "exceeds the available context
# size"), Ollama and others.
_CONTEXT_WORDS = (
    "context_length_exceeded",
    "maximum context length",
    "context length exceeded",
    "exceeds the context window",
    "exceed_context_size",
    "exceeds the available context size",
    "context window",
    "too many tokens",
    "prompt is too long",
    "input is too long",
)


class BackendError(Exception):
    """A model turn failed; `message` says which backend, what it answered, and what to do."""

    def __init__(self, code: BackendErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: BackendErrorCode = code
        self.message = message


class AttemptFailure(Exception):
    """One attempt failed; `ChatBackend.stream` decides whether to retry."""

    def __init__(
        self,
        code: BackendErrorCode,
        message: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.code: BackendErrorCode = code
        self.message = message
        self.retryable = retryable
        self.retry_after = retry_after


def describe(route: ModelRoute) -> str:
    model = repr(route.upstream_model)
    if route.name != route.upstream_model:
        model += f", requested as {route.name!r}"
    return f"model backend {route.base_url} (model {model})"


def status_failure(who: str, response: Answer) -> AttemptFailure:
    status = response.status
    message = f"The {who} answered HTTP {status}: {upstream_message(response)}"
    if status == 429:
        return AttemptFailure(
            "rate_limit_exceeded", message, retryable=True, retry_after=retry_after(response)
        )
    if status in RETRYABLE_STATUS or status >= 500:
        return AttemptFailure(
            "server_error", message, retryable=True, retry_after=retry_after(response)
        )
    if status < 400:  # a redirect we do not follow, or an odd 1xx/2xx
        return AttemptFailure("server_error", message, retryable=False)
    if too_long(response.text):
        return AttemptFailure("context_length_exceeded", message, retryable=False)
    return AttemptFailure("invalid_prompt", message, retryable=False)


def too_long(text: str) -> bool:
    """Whether a backend's error says the prompt does not fit the model's context window."""
    lowered = text.lower()
    return any(words in lowered for words in _CONTEXT_WORDS)


def error_body_failure(who: str, body: dict[str, Any]) -> AttemptFailure:
    error = body.get("error")
    detail = error_text(error) or json.dumps(body)[:500]
    text = json.dumps(error).lower() if error is not None else ""
    if "rate_limit" in text or "rate limit" in text:
        return AttemptFailure(
            "rate_limit_exceeded", f"The {who} reported: {detail}", retryable=True
        )
    if too_long(text):
        return AttemptFailure(
            "context_length_exceeded", f"The {who} reported: {detail}", retryable=False
        )
    return AttemptFailure("server_error", f"The {who} reported an error: {detail}", retryable=True)


def transport_failure(
    who: str, exc: TransportError, settings: Settings, *, mid_stream: bool
) -> AttemptFailure:
    reason = exc.reason or exc.kind
    if exc.kind == "connect_timeout":
        message = (
            f"Could not connect to the {who} within {settings.model_connect_timeout_seconds:g}s. "
            "Check that it is running and reachable."
        )
    elif exc.kind == "read_timeout":
        seconds = f"{settings.model_read_timeout_seconds:g}s"
        message = (
            f"The {who} stalled mid-response for more than {seconds}."
            if mid_stream
            else f"The {who} did not answer within {seconds}."
        )
    elif exc.kind == "connect":
        message = (
            f"Could not connect to the {who}: {reason}. Check that it is running and that "
            "ASSISTANTD_MODEL_BASE_URL or the models file points to it."
        )
    else:
        message = f"The connection to the {who} broke: {reason}"
    return AttemptFailure("server_error", message, retryable=True)


def upstream_message(response: Answer) -> str:
    try:
        body = json.loads(response.text)
    except json.JSONDecodeError:
        text = response.text.strip()
        return text[:500] or response.reason or "no details"
    if isinstance(body, dict):
        detail = error_text(body.get("error")) or error_text(body.get("detail"))
        detail = detail or error_text(body.get("message"))
        if detail:
            return detail
    return json.dumps(body)[:500]


def error_text(error: Any) -> str | None:
    if isinstance(error, str):
        return error
    if isinstance(error, dict):
        message = error.get("message")
        if isinstance(message, str):
            return message
    if isinstance(error, list) and error:  # FastAPI-style validation details
        return "; ".join(str(error_text(item) or item) for item in error)
    return None


def retry_after(response: Answer) -> float | None:
    """`retry-after-ms`, or `Retry-After` in seconds or as an HTTP date."""
    headers = response.headers
    try:
        if "retry-after-ms" in headers:
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        if "retry-after" in headers:
            return max(0.0, float(headers["retry-after"]))
    except ValueError:
        pass
    if "retry-after" in headers:
        try:
            when = email.utils.parsedate_to_datetime(headers["retry-after"])
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())
    return None
