"""The catalog of model names: the models file's, a catch-all backend's own list, the embedded
model's (backends answered by httpx's MockTransport)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from assistantd.backends.routing import ModelRouter
from assistantd.errors import NotFoundError
from assistantd.models.service import ModelCatalog
from assistantd.settings import Settings


def _catalog(settings: Settings, handler: httpx.MockTransport) -> ModelCatalog:
    return ModelCatalog(ModelRouter(settings), httpx.AsyncClient(transport=handler), settings)


def _listing(request: httpx.Request) -> httpx.Response:
    if request.url.host == "env":
        return httpx.Response(200, json={"data": [{"id": "llama3", "owned_by": "ollama"}]})
    return httpx.Response(404, json={"error": "no"})


async def test_the_models_file_and_the_default_backends_list(tmp_path: Path) -> None:
    path = tmp_path / "models.json"
    path.write_text(
        json.dumps(
            {
                "backends": {"gpu": {"base_url": "http://gpu/v1"}},
                "models": {"big": {"backend": "gpu"}},
            }
        )
    )
    settings = Settings(model_base_url="http://env/v1", models_file=path, local_model=False)
    catalog = _catalog(settings, httpx.MockTransport(_listing))
    listed = await catalog.listed()
    assert [(m.id, m.owned_by) for m in listed] == [("big", "assistantd"), ("llama3", "ollama")]
    assert (await catalog.retrieve("llama3")).owned_by == "ollama"
    with pytest.raises(NotFoundError):
        await catalog.retrieve("other")  # the default backend lists what it serves


async def test_a_backend_that_lists_nothing_serves_any_name() -> None:
    settings = Settings(model_base_url="http://quiet/v1", models_file=None, local_model=False)
    catalog = _catalog(settings, httpx.MockTransport(_listing))
    assert await catalog.listed() == []
    assert (await catalog.retrieve("anything")).id == "anything"


async def test_the_embedded_model_is_listed_by_its_name() -> None:
    settings = Settings(model_base_url=None, models_file=None, local_model=True)
    catalog = _catalog(settings, httpx.MockTransport(_listing))
    [model] = await catalog.listed()
    assert model.id == settings.local_model_name
