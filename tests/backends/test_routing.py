"""ModelRouter: the default backend, models files in YAML and JSON, and their errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from assistantd.backends import ModelRoute, ModelRouter, ModelsFileError, UnknownModelError
from assistantd.settings import Settings

LOCAL = "http://127.0.0.1:11434/v1"
REMOTE = "https://api.example.com/v1"


def router(**values: Any) -> ModelRouter:
    values.setdefault("model_base_url", None)
    values.setdefault("model_api_key", None)
    values.setdefault("models_file", None)
    values.setdefault("local_model", False)  # the embedded model: tests/backends/test_local.py
    return ModelRouter(Settings(**values))


def write(tmp_path: Path, name: str, data: Any) -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


FILE: dict[str, Any] = {
    "backends": {
        "local": {"base_url": LOCAL + "/", "context_window": 4096},
        "remote": {"base_url": REMOTE, "api_key": "sk-remote", "max_output_tokens": 1000},
    },
    "models": {
        "gpt-4-1106-preview": {
            "backend": "local",
            "upstream_model": "llama3",
            "context_window": 8192,
        },
        "gpt-4o": {"backend": "remote", "context_window": 128000},
        "tiny": {"backend": "local"},
    },
    "default": {"backend": "local", "upstream_model": "qwen2.5"},
}

YAML = """
backends:
  local:
    base_url: http://127.0.0.1:11434/v1/
    context_window: 4096
  remote:
    base_url: https://api.example.com/v1
    api_key: sk-remote
    max_output_tokens: 1000
models:
  gpt-4-1106-preview:
    backend: local
    upstream_model: llama3
    context_window: 8192
  gpt-4o: {backend: remote, context_window: 128000}
  tiny: {backend: local}
default:
  backend: local
  upstream_model: qwen2.5
"""


class TestWithoutModelsFile:
    def test_every_name_goes_to_the_default_backend(self) -> None:
        models = router(model_base_url=LOCAL + "/", model_api_key="k", model_context_window=4000)
        assert models.resolve("gpt-4o") == ModelRoute(
            name="gpt-4o",
            base_url=LOCAL,
            api_key="k",
            upstream_model="gpt-4o",
            context_window=None,  # ASSISTANTD_MODEL_CONTEXT_WINDOW applies after the backend's
            max_output_tokens=None,
        )
        assert models.can_serve("anything")

    def test_no_context_window_is_assumed(self) -> None:
        assert router(model_base_url=LOCAL).resolve("m").context_window is None

    def test_nothing_configured(self) -> None:
        models = router()
        with pytest.raises(UnknownModelError) as info:
            models.resolve("x")
        assert str(info.value).startswith("No model backend is configured for model 'x'; set")
        assert "ASSISTANTD_MODEL_BASE_URL" in str(info.value)
        assert not models.can_serve("x")


@pytest.mark.parametrize(("filename", "content"), [("models.yaml", YAML), ("models.json", FILE)])
class TestModelsFile:
    def test_listed_models(self, tmp_path: Path, filename: str, content: Any) -> None:
        models = router(models_file=write(tmp_path, filename, content))
        assert models.resolve("gpt-4-1106-preview") == ModelRoute(
            "gpt-4-1106-preview", LOCAL, None, "llama3", 8192, None
        )
        assert models.resolve("gpt-4o") == ModelRoute(
            "gpt-4o", REMOTE, "sk-remote", "gpt-4o", 128000, 1000
        )
        # backend defaults apply when the model does not say
        assert models.resolve("tiny") == ModelRoute("tiny", LOCAL, None, "tiny", 4096, None)

    def test_case_insensitive_fallback(self, tmp_path: Path, filename: str, content: Any) -> None:
        models = router(models_file=write(tmp_path, filename, content))
        route = models.resolve("GPT-4O")
        assert route.name == "GPT-4O"
        assert route.base_url == REMOTE

    def test_default_section_catches_the_rest(
        self, tmp_path: Path, filename: str, content: Any
    ) -> None:
        models = router(models_file=write(tmp_path, filename, content), model_base_url=REMOTE)
        assert models.resolve("my-deployment") == ModelRoute(
            "my-deployment", LOCAL, None, "qwen2.5", 4096, None
        )


class TestModelsFileRules:
    def test_unlisted_name_without_default_uses_the_env_backend(self, tmp_path: Path) -> None:
        data = {"backends": {"b": {"base_url": REMOTE}}, "models": {"m": {"backend": "b"}}}
        models = router(models_file=write(tmp_path, "m.json", data), model_base_url=LOCAL)
        assert models.resolve("other").base_url == LOCAL
        assert models.resolve("m").base_url == REMOTE

    def test_unlisted_name_without_default_or_env_is_unknown(self, tmp_path: Path) -> None:
        data = {"backends": {"b": {"base_url": REMOTE}}, "models": {"m": {"backend": "b"}}}
        path = write(tmp_path, "m.json", data)
        models = router(models_file=path)
        with pytest.raises(UnknownModelError) as info:
            models.resolve("other")
        message = str(info.value)
        assert "'other'" in message
        assert str(path) in message
        assert "'m'" in message
        assert not models.can_serve("other")
        assert models.can_serve("m")

    def test_model_without_backend_uses_env_backend(self, tmp_path: Path) -> None:
        data = {"backends": {"b": {"base_url": REMOTE}}, "models": {"m": {"upstream_model": "u"}}}
        models = router(models_file=write(tmp_path, "m.json", data), model_base_url=LOCAL)
        assert models.resolve("m") == ModelRoute("m", LOCAL, None, "u", None, None)

    def test_model_without_backend_uses_the_only_backend(self, tmp_path: Path) -> None:
        data = {"backends": {"b": {"base_url": REMOTE}}, "models": {"m": "u"}}
        models = router(models_file=write(tmp_path, "m.json", data))
        assert models.resolve("m") == ModelRoute("m", REMOTE, None, "u", None, None)

    def test_shorthand_and_default_without_backends(self, tmp_path: Path) -> None:
        path = write(tmp_path, "m.yaml", "models:\n  small: qwen2.5:0.5b\ndefault: {}\n")
        models = router(models_file=path, model_base_url=LOCAL)
        assert models.resolve("small").upstream_model == "qwen2.5:0.5b"
        assert models.resolve("big").upstream_model == "big"

    def test_reasoning_to_backend_is_per_model(self, tmp_path: Path) -> None:
        path = write(
            tmp_path,
            "m.yaml",
            "models:\n  oss: {reasoning_to_backend: true}\n  qwen: {}\n"
            "default: {reasoning_to_backend: true}\n",
        )
        models = router(models_file=path, model_base_url=LOCAL)
        assert models.resolve("oss").reasoning_to_backend is True
        assert models.resolve("qwen").reasoning_to_backend is False
        assert models.resolve("other").reasoning_to_backend is True
        assert router(model_base_url=LOCAL).resolve("m").reasoning_to_backend is False

    def test_grammar_dialect_per_model_or_backend(self, tmp_path: Path) -> None:
        path = write(
            tmp_path,
            "m.yaml",
            "backends:\n  vllm: {base_url: 'http://v/v1', grammar: vllm}\n"
            "  llama: {base_url: 'http://l/v1'}\n"
            "models:\n  a: {backend: vllm}\n  b: {backend: vllm, grammar: vllm-guided}\n"
            "  c: {backend: llama, grammar: llama.cpp}\n  d: {backend: llama}\n",
        )
        models = router(models_file=path)
        assert [models.resolve(m).grammar for m in "abcd"] == [
            "vllm",
            "vllm-guided",
            "llama.cpp",
            None,
        ]
        assert router(model_base_url=LOCAL).resolve("m").grammar is None

    def test_an_unknown_grammar_dialect_is_refused(self, tmp_path: Path) -> None:
        path = write(tmp_path, "m.yaml", "models:\n  a: {grammar: ebnf}\n")
        with pytest.raises(ModelsFileError, match="grammar"):
            router(models_file=path, model_base_url=LOCAL)

    def test_nothing_reachable(self, tmp_path: Path) -> None:
        models = router(models_file=write(tmp_path, "m.yaml", "models:\n  small: qwen\n"))
        with pytest.raises(UnknownModelError):
            models.resolve("small")

    def test_empty_file(self, tmp_path: Path) -> None:
        models = router(models_file=write(tmp_path, "m.yaml", ""), model_base_url=LOCAL)
        assert models.resolve("x").base_url == LOCAL


class TestInvalidModelsFile:
    def test_unknown_backend(self, tmp_path: Path) -> None:
        data = {"backends": {"a": {"base_url": LOCAL}}, "models": {"m": {"backend": "nope"}}}
        with pytest.raises(ModelsFileError, match=r"model 'm' names backend 'nope'.*defined: a"):
            router(models_file=write(tmp_path, "m.json", data))

    def test_ambiguous_backend(self, tmp_path: Path) -> None:
        data = {
            "backends": {"a": {"base_url": LOCAL}, "b": {"base_url": REMOTE}},
            "models": {"m": {}},
        }
        with pytest.raises(ModelsFileError, match="model 'm' has no `backend:`"):
            router(models_file=write(tmp_path, "m.json", data))

    def test_typo_in_a_key(self, tmp_path: Path) -> None:
        data = {"backends": {"a": {"base_url": LOCAL, "apikey": "x"}}}
        with pytest.raises(ModelsFileError, match=r"backends\.a\.apikey"):
            router(models_file=write(tmp_path, "m.json", data))

    def test_bad_context_window(self, tmp_path: Path) -> None:
        data = {"models": {"m": {"context_window": 0}}}
        with pytest.raises(ModelsFileError, match=r"models\.m\.context_window"):
            router(models_file=write(tmp_path, "m.json", data), model_base_url=LOCAL)

    def test_unparseable_yaml(self, tmp_path: Path) -> None:
        with pytest.raises(ModelsFileError, match="not valid"):
            router(models_file=write(tmp_path, "m.yaml", "models: [unclosed"))

    def test_unparseable_json(self, tmp_path: Path) -> None:
        with pytest.raises(ModelsFileError, match="not valid"):
            router(models_file=write(tmp_path, "m.json", "{"))

    def test_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(ModelsFileError, match="Cannot read"):
            router(models_file=tmp_path / "absent.yaml")


class TestConfigured:
    """What the start-up log names: each backend, with the models routed to it."""

    def test_the_default_backend_serves_every_name(self) -> None:
        [backend] = router(model_base_url="http://h:1/v1/", model_api_key="k").configured()
        assert (backend.label, backend.base_url, backend.api_key) == (
            "ASSISTANTD_MODEL_BASE_URL",
            "http://h:1/v1",
            "k",
        )
        assert (backend.models, backend.catch_all) == ([], True)

    def test_a_models_file(self, tmp_path: Path) -> None:
        path = write(
            tmp_path,
            "models.yaml",
            {
                "backends": {"gpu": {"base_url": "http://gpu/v1"}, "cpu": {"base_url": "http://c"}},
                "models": {"big": {"backend": "gpu"}, "b2": {"backend": "gpu"}, "s": {}},
                "default": {"backend": "cpu"},
            },
        )
        found = router(model_base_url="http://env/v1", models_file=path).configured()
        assert [(b.label, b.models, b.catch_all) for b in found] == [
            ("ASSISTANTD_MODEL_BASE_URL", ["s"], False),
            ("backend 'gpu'", ["b2", "big"], False),
            ("backend 'cpu'", [], True),
        ]

    def test_none_without_a_backend(self) -> None:
        assert router().configured() == []
