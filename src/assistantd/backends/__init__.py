"""Model backends: routing model names to OpenAI-compatible Chat Completions endpoints, and
streaming one model turn from them."""

from assistantd.backends.chat import (
    BackendError,
    ChatBackend,
    ChatEvent,
    ChatRequest,
    Finish,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    Usage,
    make_http_client,
)
from assistantd.backends.routing import ModelRoute, ModelRouter, ModelsFileError, UnknownModelError

__all__ = [
    "BackendError",
    "ChatBackend",
    "ChatEvent",
    "ChatRequest",
    "Finish",
    "ModelRoute",
    "ModelRouter",
    "ModelsFileError",
    "ReasoningDelta",
    "TextDelta",
    "ToolCallDelta",
    "UnknownModelError",
    "Usage",
    "make_http_client",
]
