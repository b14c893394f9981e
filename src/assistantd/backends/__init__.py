"""Model backends: routing model names to OpenAI-compatible Chat Completions endpoints, knowing
their context windows, and streaming one model turn from them."""

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
from assistantd.backends.windows import ContextWindows

__all__ = [
    "BackendError",
    "ChatBackend",
    "ChatEvent",
    "ChatRequest",
    "ContextWindows",
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
