"""Which backend serves a model name, and under what upstream name.

A run names a model (with Azure, the deployment name). Without a models file every name goes to
the default backend, `ASSISTANTD_MODEL_BASE_URL` (key `ASSISTANTD_MODEL_API_KEY`), unchanged.
`ASSISTANTD_MODELS_FILE` (YAML, or JSON when the name ends in `.json`) routes names explicitly:

    backends:                         # named OpenAI-compatible Chat Completions endpoints
      local:
        base_url: http://127.0.0.1:11434/v1
        api_key: null                 # optional; sent as `Authorization: Bearer ...`
        context_window: 8192          # optional defaults for every model on this backend
        max_output_tokens: null
      openai:
        base_url: https://api.openai.com/v1
        api_key: sk-...
    models:                           # names clients use -> backend and upstream model
      gpt-4-1106-preview:
        backend: local
        upstream_model: llama3        # default: the name itself
        context_window: 8192          # default: the backend's, else what the backend reports
                                      # (backends/windows.py), else ASSISTANTD_MODEL_CONTEXT_WINDOW
        max_output_tokens: 2048       # default: the backend's, else none
        reasoning_to_backend: false   # send earlier turns' reasoning back (`reasoning_content`)
        grammar: vllm                 # how the backend takes a custom tool's grammar
      gpt-4o: {backend: openai, context_window: 128000}
      small: qwen2.5:0.5b             # shorthand: upstream model on the default backend
    default:                          # optional catch-all for names not listed above
      backend: local
      upstream_model: llama3          # optional: send every other name as this model
      context_window: 8192

A model (or `default`) without `backend` uses `ASSISTANTD_MODEL_BASE_URL` if set, else the file's
only backend. Names match exactly, then case-insensitively. A name that is not listed goes to the
`default` section if there is one, else to `ASSISTANTD_MODEL_BASE_URL` if set; otherwise it is
unknown. `reasoning_to_backend: true` (default false) sends the reasoning of earlier turns back to
the backend as the assistant message's `reasoning_content` (what vLLM and DeepSeek accept; for
models that want their reasoning replayed, such as gpt-oss); otherwise the backend sees only the
answers. `grammar:` (on a model, the `default` section, or a backend for all its models) says
how the backend constrains output to a grammar: `vllm` (`structured_outputs`, vLLM 0.12+),
`vllm-guided` (`guided_regex` / `guided_grammar`, older vLLM) or `llama.cpp` (a GBNF `grammar`;
the embedded model has it); a forced call of a custom tool with a grammar is then decoded under it
(`backends.constrained`). Unset, the grammar is only described in the tool's text. The file is
read once, when the router is built; an invalid file raises
`ModelsFileError` naming the file and the problem.

With neither configured, the embedded local model (`assistantd.backends.local`, when wanted)
serves every name: processes that execute runs start it and `attach_local` its address.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from assistantd.backends.local import ForcedCalls, local_model_wanted
from assistantd.settings import Settings

__all__ = ["GrammarDialect", "ModelRoute", "ModelRouter", "ModelsFileError", "UnknownModelError"]


# How a backend takes a grammar to constrain its output to (`backends.constrained`).
GrammarDialect = Literal["vllm", "vllm-guided", "llama.cpp"]


@dataclass(frozen=True)
class ModelRoute:
    name: str  # the name the client used (model or Azure deployment name)
    base_url: str  # e.g. http://127.0.0.1:11434/v1, no trailing slash
    api_key: str | None
    upstream_model: str  # the model name sent upstream
    # Tokens, as the models file (or the embedded model) sizes it; None: ask the backend
    # (`backends.windows.ContextWindows`).
    context_window: int | None
    max_output_tokens: int | None
    # How a forced tool choice is sent (the embedded llama.cpp); None: as OpenAI defines it.
    forced_calls: ForcedCalls | None = None
    # Earlier turns' reasoning goes back to the backend (as `reasoning_content`).
    reasoning_to_backend: bool = False
    # How the backend constrains output to a grammar; None: it does not (`backends.constrained`).
    grammar: GrammarDialect | None = None


class UnknownModelError(Exception):
    """No backend serves this model name; `str(exc)` tells the user what to configure."""


class ModelsFileError(ValueError):
    """The models file cannot be read or is invalid."""


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _BackendSpec(_Spec):
    base_url: str
    api_key: str | None = None
    context_window: int | None = Field(None, gt=0)
    max_output_tokens: int | None = Field(None, gt=0)
    grammar: GrammarDialect | None = None


class _ModelSpec(_Spec):
    backend: str | None = None
    upstream_model: str | None = None
    context_window: int | None = Field(None, gt=0)
    max_output_tokens: int | None = Field(None, gt=0)
    reasoning_to_backend: bool = False
    grammar: GrammarDialect | None = None


class _ModelsFile(_Spec):
    backends: dict[str, _BackendSpec] = Field(default_factory=dict)
    models: dict[str, _ModelSpec] = Field(default_factory=dict)
    default: _ModelSpec | None = None

    @field_validator("models", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        # `name: upstream` is short for `name: {upstream_model: upstream}`
        if isinstance(value, dict):
            return {
                str(name): {"upstream_model": spec} if isinstance(spec, str) else spec
                for name, spec in value.items()
            }
        return value


@dataclass(frozen=True)
class _Backend:
    base_url: str
    api_key: str | None
    context_window: int | None = None
    max_output_tokens: int | None = None
    forced_calls: ForcedCalls | None = None
    grammar: GrammarDialect | None = None


@dataclass(frozen=True)
class ConfiguredBackend:
    label: str  # how the configuration names it
    base_url: str
    api_key: str | None
    models: list[str]  # the model names routed to it by name
    catch_all: bool  # every other name goes to it too


class ModelRouter:
    """Resolves model names to routes; built once from `Settings`."""

    def __init__(self, settings: Settings) -> None:
        self._env_backend = (
            _Backend(_strip(settings.model_base_url), settings.model_api_key)
            if settings.model_base_url
            else None
        )
        self._file = settings.models_file
        spec = _load(settings.models_file) if settings.models_file else None
        self._backends: dict[str, _Backend] = {}
        self._models: dict[str, _ModelSpec] = {}
        self._folded: dict[str, str] = {}
        self._catch_all: _ModelSpec | None = None
        if spec is not None:
            self._backends = {
                name: _Backend(
                    _strip(b.base_url),
                    b.api_key,
                    b.context_window,
                    b.max_output_tokens,
                    grammar=b.grammar,
                )
                for name, b in spec.backends.items()
            }
            self._models = dict(spec.models)
            self._folded = {name.casefold(): name for name in spec.models}
            self._catch_all = spec.default
            for label, entry in [*spec.models.items(), ("default", spec.default)]:
                if entry is not None:
                    self._check(label, entry)
        self._local_wanted = local_model_wanted(settings)
        self._local_name = settings.local_model_name
        self._local: _Backend | None = None
        self._local_limits = (
            settings.local_model_context_window,
            settings.local_model_max_output_tokens,
        )

    @property
    def local_wanted(self) -> bool:
        """Every name goes to the embedded model (no backend is configured)."""
        return self._local_wanted

    def attach_local(self, base_url: str, forced_calls: ForcedCalls | None = None) -> None:
        """The embedded model runs in this process at `base_url`."""
        context_window, max_output = self._local_limits
        self._local = _Backend(
            _strip(base_url), None, context_window, max_output, forced_calls or ForcedCalls()
        )

    def resolve(self, name: str) -> ModelRoute:
        """The route for `name`; raises `UnknownModelError` with what to configure."""
        if self._local_wanted:
            return self._local_route(name)
        entry = self._models.get(name)
        if entry is None and name.casefold() in self._folded:
            entry = self._models[self._folded[name.casefold()]]
        if entry is None:
            entry = self._catch_all
        if entry is None:
            if self._env_backend is None:
                raise UnknownModelError(self._unknown_message(name))
            entry = _ModelSpec()
        backend = self._backend_of(entry)
        if backend is None:
            raise UnknownModelError(self._unknown_message(name))
        return ModelRoute(
            name=name,
            base_url=backend.base_url,
            api_key=backend.api_key,
            upstream_model=entry.upstream_model or name,
            context_window=entry.context_window or backend.context_window,
            max_output_tokens=entry.max_output_tokens or backend.max_output_tokens,
            reasoning_to_backend=entry.reasoning_to_backend,
            grammar=entry.grammar or backend.grammar,
        )

    def configured(self) -> list[ConfiguredBackend]:
        """Each configured backend (not the embedded model) with the model names it serves."""
        found: list[ConfiguredBackend] = []
        named = [(f"backend {name!r}", backend) for name, backend in self._backends.items()]
        if self._env_backend is not None:
            named.insert(0, ("ASSISTANTD_MODEL_BASE_URL", self._env_backend))
        for label, backend in named:
            models = sorted(m for m, e in self._models.items() if self._backend_of(e) is backend)
            if self._catch_all is not None:
                catch_all = self._backend_of(self._catch_all) is backend
            else:
                catch_all = backend is self._env_backend
            found.append(
                ConfiguredBackend(label, backend.base_url, backend.api_key, models, catch_all)
            )
        return found

    def can_serve(self, name: str) -> bool:
        if self._local_wanted:
            return True  # API-only processes never run it; the workers do
        try:
            self.resolve(name)
        except UnknownModelError:
            return False
        return True

    def _local_route(self, name: str) -> ModelRoute:
        backend = self._local
        if backend is None:
            raise UnknownModelError(
                "The embedded model is not running in this process; configure a backend "
                "(ASSISTANTD_MODEL_BASE_URL or ASSISTANTD_MODELS_FILE) or let this process "
                "start the embedded model."
            )
        assert backend.context_window is not None
        return ModelRoute(
            name=name,
            base_url=backend.base_url,
            api_key=None,
            upstream_model=self._local_name,
            context_window=backend.context_window,
            max_output_tokens=backend.max_output_tokens,
            forced_calls=backend.forced_calls,
            grammar="llama.cpp",
        )

    def _backend_of(self, entry: _ModelSpec) -> _Backend | None:
        if entry.backend is not None:
            return self._backends[entry.backend]  # checked at load
        if self._env_backend is not None:
            return self._env_backend
        if len(self._backends) == 1:
            return next(iter(self._backends.values()))
        return None

    def _check(self, label: str, entry: _ModelSpec) -> None:
        if entry.backend is not None and entry.backend not in self._backends:
            known = ", ".join(sorted(self._backends)) or "none"
            raise ModelsFileError(
                f"{self._file}: model {label!r} names backend {entry.backend!r}, which is not "
                f"defined under `backends:` (defined: {known})."
            )
        if entry.backend is None and self._env_backend is None and len(self._backends) > 1:
            raise ModelsFileError(
                f"{self._file}: model {label!r} has no `backend:` and ASSISTANTD_MODEL_BASE_URL "
                "is not set; name one of the backends."
            )

    def _unknown_message(self, name: str) -> str:
        if self._file is None:
            return (
                f"No model backend is configured for model {name!r}; set "
                "ASSISTANTD_MODEL_BASE_URL to an OpenAI-compatible Chat Completions endpoint "
                "(e.g. http://127.0.0.1:11434/v1) or route the model in ASSISTANTD_MODELS_FILE."
            )
        listed = ", ".join(repr(m) for m in sorted(self._models)) or "no models"
        return (
            f"Model {name!r} is not configured: the models file {self._file} routes {listed}. "
            "Add it under `models:`, add a `default:` section, or set "
            "ASSISTANTD_MODEL_BASE_URL."
        )


def _strip(url: str) -> str:
    return url.rstrip("/")


def _load(path: Path) -> _ModelsFile:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ModelsFileError(f"Cannot read the models file {path}: {exc}") from exc
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ModelsFileError(f"The models file {path} is not valid: {exc}") from exc
    if data is None:
        data = {}
    try:
        return _ModelsFile.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ModelsFileError(f"The models file {path} is invalid: {problems}") from exc
