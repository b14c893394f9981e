"""ContextWindows: a model's window from the models file, else from what its backend reports
(vLLM, llama.cpp, Ollama), asked once per route, else ASSISTANTD_MODEL_CONTEXT_WINDOW, else
unknown; against the scripted model over real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from assistantd.backends.routing import ModelRoute
from assistantd.backends.windows import ContextWindows
from assistantd.settings import Settings
from tests.support.scripted_model import ScriptedModel

OLLAMA_SHOW = {
    "modelfile": "FROM llama3.2",
    "parameters": 'stop "<|eot_id|>"\nnum_ctx 2048',
    "model_info": {"general.architecture": "llama", "llama.context_length": 131072},
}


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> Iterator[ScriptedModel]:
    """A scripted backend built with the test's `@pytest.mark.parametrize("backend", [kwargs],
    indirect=True)` keyword arguments."""
    scripted = ScriptedModel(**getattr(request, "param", {})).start()
    yield scripted
    scripted.stop()


def route(backend: ScriptedModel, model: str = "gpt-4o", window: int | None = None) -> ModelRoute:
    return ModelRoute(model, backend.base_url, None, model, window, None)


def windows_of(backend: ScriptedModel, *names: str, **settings: Any) -> list[int | None]:
    """Ask for each model's window (twice, once concurrently) with one ContextWindows."""

    async def ask() -> list[int | None]:
        async with httpx.AsyncClient() as http:
            windows = ContextWindows(http, Settings(**settings))
            first = await asyncio.gather(*(windows.of(route(backend, n)) for n in names * 2))
            again = [await windows.of(route(backend, n)) for n in names]
            assert first == again + again
            return again

    return asyncio.run(ask())


@pytest.mark.parametrize(
    "backend", [{"model_info": {"gpt-4o": {"max_model_len": 4096}}}], indirect=True
)
def test_vllm_max_model_len_asked_once(backend: ScriptedModel) -> None:
    assert windows_of(backend, "gpt-4o", "gpt-4o-mini") == [4096, None]
    assert backend.hits("/v1/models") == 2  # once per route, although asked six times


@pytest.mark.parametrize(
    "backend",
    [
        {
            "models": ["model.gguf"],
            "model_info": {"model.gguf": {"owned_by": "llamacpp", "meta": {"n_ctx_train": 32768}}},
            "props": {"default_generation_settings": {"n_ctx": 4096}, "total_slots": 1},
        }
    ],
    indirect=True,
)
def test_llama_cpp_n_ctx_from_props(backend: ScriptedModel) -> None:
    # llama.cpp serves its one model under any name
    assert windows_of(backend, "whatever") == [4096]
    assert backend.hits("/props") == 1


@pytest.mark.parametrize(
    "backend",
    [{"models": ["model.gguf"], "model_info": {"model.gguf": {"meta": {"n_ctx_train": 32768}}}}],
    indirect=True,
)
def test_llama_cpp_n_ctx_train_without_props(backend: ScriptedModel) -> None:
    assert windows_of(backend, "model.gguf") == [32768]


@pytest.mark.parametrize(
    "backend",
    [
        {
            "models": ["llama3.2:latest", "qwen3:8b"],
            "ollama_show": {
                "llama3.2:latest": OLLAMA_SHOW,
                "qwen3:8b": {
                    "model_info": {"general.architecture": "qwen3", "qwen3.context_length": 40960}
                },
            },
        }
    ],
    indirect=True,
)
def test_ollama_num_ctx_else_the_models_length(backend: ScriptedModel) -> None:
    assert windows_of(backend, "llama3.2:latest", "qwen3:8b") == [2048, 40960]


def test_a_plain_backend_says_nothing(model: ScriptedModel) -> None:
    assert windows_of(model, "gpt-4o") == [None]
    assert windows_of(model, "gpt-4o", model_context_window=16000) == [16000]


@pytest.mark.parametrize(
    "backend", [{"model_info": {"gpt-4o": {"max_model_len": 4096}}}], indirect=True
)
def test_the_models_file_wins_without_asking(backend: ScriptedModel) -> None:
    async def ask() -> int | None:
        async with httpx.AsyncClient() as http:
            return await ContextWindows(http, Settings()).of(route(backend, window=128000))

    assert asyncio.run(ask()) == 128000
    assert backend.hits("/v1/models") == 0


def test_an_unreachable_backend_is_unknown() -> None:
    gone = ModelRoute("m", "http://127.0.0.1:9/v1", None, "m", None, None)

    async def ask() -> int | None:
        async with httpx.AsyncClient() as http:
            return await ContextWindows(http, Settings(model_connect_timeout_seconds=2)).of(gone)

    assert asyncio.run(ask()) is None
