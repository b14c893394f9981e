"""The Models API: the names the server answers to, through the official clients."""

from __future__ import annotations

import pytest
from openai import AuthenticationError, AzureOpenAI, NotFoundError, OpenAI

from tests.support.scripted_model import ScriptedModel


def test_the_default_backend_lists_its_models(client: OpenAI, model: ScriptedModel) -> None:
    listed = client.models.list()
    ids = [m.id for m in listed.data]
    assert set(model.models) <= set(ids)
    gpt = client.models.retrieve("gpt-4o")
    assert (gpt.id, gpt.object, gpt.owned_by) == ("gpt-4o", "model", "scripted")
    assert gpt.created > 0


def test_an_unlisted_model_is_a_404(client: OpenAI) -> None:
    with pytest.raises(NotFoundError) as caught:
        client.models.retrieve("no-such-model")
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["code"] == "model_not_found"
    assert body["param"] == "model"


def test_through_azure(azure_client: AzureOpenAI) -> None:
    assert "gpt-4o" in [m.id for m in azure_client.models.list().data]


def test_a_key_is_needed(client: OpenAI) -> None:
    anonymous = client.with_options(api_key="sk-wrong")
    with pytest.raises(AuthenticationError):
        anonymous.models.list()
    with pytest.raises(AuthenticationError):
        anonymous.models.retrieve("gpt-4o")
