"""The current request schema: every field of OpenAI's spec and of the newest SDK is accepted,
does what OpenAI documents (or the nearest honest thing), and is refused with a 400 naming it
only when this server cannot serve it; and what Codex CLI sends works.

The Codex bodies in data/ are the captures of ../shared/reference/codex/ (Codex CLI 0.171).
"""

from __future__ import annotations

import copy
import json
import typing
from pathlib import Path
from typing import Any

import pytest
from openai import BadRequestError, OpenAI
from openai.types.responses.input_token_count_params import InputTokenCountParams
from openai.types.responses.response_create_params import ResponseCreateParamsBase

from assistantd.responses.schemas import CreateResponse, InputTokensRequest
from tests.responses.conftest import RESPONSE_KEYS, raw_events
from tests.support import strict_types
from tests.support.scripted_model import Reply, ScriptedModel

DATA = Path(__file__).parent / "data"
SPEC = Path("/work/shared/reference/responses-openapi.json")


def _spec_properties(name: str) -> set[str]:
    spec = json.loads(SPEC.read_text())
    schemas = spec["components"]["schemas"]

    def collect(schema: dict[str, Any]) -> set[str]:
        found = set(schema.get("properties", {}))
        for part in schema.get("allOf", []):
            if "$ref" in part:
                found |= collect(schemas[part["$ref"].rsplit("/", 1)[-1]])
            else:
                found |= collect(part)
        return found

    return collect(schemas[name])


class TestSchemaCoversTheReferences:
    def test_every_sdk_create_parameter(self) -> None:
        sdk = set(typing.get_type_hints(ResponseCreateParamsBase)) | {"stream"}
        missing = sdk - set(CreateResponse.model_fields)
        assert not missing

    def test_every_sdk_input_tokens_parameter(self) -> None:
        missing = set(typing.get_type_hints(InputTokenCountParams)) - set(
            InputTokensRequest.model_fields
        )
        assert not missing

    @pytest.mark.skipif(not SPEC.exists(), reason="the shared reference spec is not here")
    def test_every_spec_field(self) -> None:
        missing = _spec_properties("CreateResponse") - set(CreateResponse.model_fields)
        assert not missing
        assert not _spec_properties("TokenCountsBody") - set(InputTokensRequest.model_fields)


class TestHintsReachTheBackend:
    def test_penalties_caching_tier_and_identity(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        model.script(marker, Reply(text="hinted"))
        response = client.responses.create(
            model="gpt-4o",
            input=marker,
            service_tier="flex",
            prompt_cache_key="cache-key-1",
            prompt_cache_retention="24h",
            safety_identifier="user-hash-1",
            user="end-user-1",
            text={"verbosity": "low"},
            extra_body={"presence_penalty": 0.5, "frequency_penalty": -0.25},
        )
        assert response.status == "completed"
        (sent,) = model.requests(marker)
        for key, value in {
            "presence_penalty": 0.5,
            "frequency_penalty": -0.25,
            "service_tier": "flex",
            "prompt_cache_key": "cache-key-1",
            "prompt_cache_retention": "24h",
            "safety_identifier": "user-hash-1",
            "user": "end-user-1",
            "verbosity": "low",
        }.items():
            assert sent[key] == value, key
        raw = client.responses.with_raw_response.retrieve(response.id).http_response.json()
        strict_types.response(raw)
        assert list(raw) == RESPONSE_KEYS
        assert (raw["presence_penalty"], raw["frequency_penalty"]) == (0.5, -0.25)
        assert raw["service_tier"] == "flex"
        assert raw["prompt_cache_key"] == "cache-key-1"
        assert raw["prompt_cache_retention"] == "24h"
        assert raw["safety_identifier"] == "user-hash-1"
        assert raw["user"] == "end-user-1"
        assert raw["text"]["verbosity"] == "low"

    def test_nothing_is_sent_that_was_not_asked(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        model.script(marker, Reply(text="plain"))
        response = client.responses.create(model="gpt-4o", input=marker)
        (sent,) = model.requests(marker)
        for key in ("presence_penalty", "service_tier", "prompt_cache_key", "user", "verbosity"):
            assert key not in sent
        raw = client.responses.with_raw_response.retrieve(response.id).http_response.json()
        assert (raw["presence_penalty"], raw["frequency_penalty"]) == (0, 0)
        assert raw["service_tier"] == "default"
        for key in ("access_programs", "image", "prompt_cache_options"):
            assert key not in raw

    def test_fast_shows_as_priority(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        model.script(marker, Reply(text="quick"))
        response = client.responses.create(model="gpt-4o", input=marker, service_tier="fast")
        assert response.service_tier == "priority"
        assert model.requests(marker)[0]["service_tier"] == "fast"


class TestNewestOptions:
    def test_what_is_served_is_echoed(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        model.script(marker, Reply(text="options"))
        earlier = client.responses.create(model="gpt-4o", input=marker)
        response = client.responses.create(
            model="gpt-4o",
            input=marker,
            access_programs={"cyber": "standard"},
            image={"context_compression": "auto"},
            prompt_cache_options={
                "mode": "explicit",
                "ttl": "30m",
                "comparison_response_id": earlier.id,
            },
        )
        assert response.access_programs is not None
        assert response.access_programs.cyber == "standard"
        assert response.image is not None
        assert response.image.context_compression == "disabled"
        assert response.prompt_cache_options is not None
        assert (response.prompt_cache_options.mode, response.prompt_cache_options.ttl) == (
            "explicit",
            "30m",
        )
        assert response.prompt_cache_diagnostics is not None
        assert response.prompt_cache_diagnostics.type == "unavailable"
        raw = client.responses.with_raw_response.retrieve(response.id).http_response.json()
        strict_types.response(raw)  # every key is one the SDK's Response has
        assert model.requests(marker)[-1]["prompt_cache_options"] == {
            "mode": "explicit",
            "ttl": "30m",
        }
        missing = client.responses.create(
            model="gpt-4o",
            input=marker,
            prompt_cache_options={"comparison_response_id": "resp_nothing"},
        )
        assert missing.prompt_cache_diagnostics is not None
        assert missing.prompt_cache_diagnostics.type == "comparison_response_not_found"

    def test_a_cache_breakpoint_on_an_input_part(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        model.script(marker, Reply(text="prefix"))
        breakpoint_ = {"mode": "explicit", "ttl": "12h"}
        response = client.responses.create(
            model="gpt-4o",
            input=[
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "input_text",
                            "text": marker,
                            "prompt_cache_breakpoint": breakpoint_,
                        }
                    ],
                }
            ],
            prompt_cache_options={"mode": "explicit"},
        )
        assert response.output_text == "prefix"
        assert model.requests(marker)[0]["messages"][-1]["content"] == marker

    def test_background_options(self, client: OpenAI, model: ScriptedModel, marker: str) -> None:
        model.script(marker, Reply(text="windowed"))
        response = client.responses.create(
            model="gpt-4o",
            input=marker,
            background=True,
            background_options={"completion_window": "2h", "continuation_id": "batch-7"},
        )
        assert response.background is True
        with pytest.raises(BadRequestError) as err:
            client.responses.create(
                model="gpt-4o", input=marker, background_options={"completion_window": "8h"}
            )
        assert err.value.body["param"] == "background_options.completion_window"  # type: ignore[index]

    def test_client_metadata_is_kept_not_echoed(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        model.script(marker, Reply(text="codex"))
        response = client.responses.create(
            model="gpt-4o",
            input=marker,
            extra_body={"client_metadata": {"session_id": "s-1", "turn_id": "t-1"}},
        )
        assert response.status == "completed"
        raw = client.responses.with_raw_response.retrieve(response.id).http_response.json()
        assert "client_metadata" not in raw
        assert "session_id" not in json.dumps(model.requests(marker)[0])

    @pytest.mark.parametrize(
        ("extra", "param"),
        [
            ({"moderation": {"model": "omni-moderation-latest"}}, "moderation"),
            ({"access_programs": {"cyber": "daybreak_red"}}, "access_programs.cyber"),
            ({"image": {"context_compression": "enabled"}}, "image.context_compression"),
            ({"prompt_cache_options": {"prewarm": True}}, "prompt_cache_options.prewarm"),
            ({"presence_penalty": 3}, "presence_penalty"),
            ({"client_metadata": {"k": 1}}, "client_metadata.k"),
        ],
    )
    def test_what_cannot_be_served_is_a_400_naming_it(
        self, client: OpenAI, marker: str, extra: dict[str, Any], param: str
    ) -> None:
        with pytest.raises(BadRequestError) as err:
            client.responses.create(model="gpt-4o", input=marker, extra_body=extra)
        assert err.value.body["param"] == param  # type: ignore[index]

    def test_input_tokens_takes_a_personality(self, client: OpenAI) -> None:
        plain = client.responses.input_tokens.count(model="gpt-4o", input="How many?")
        styled = client.responses.input_tokens.count(
            model="gpt-4o", input="How many?", personality="friendly"
        )
        assert styled.input_tokens == plain.input_tokens > 0


def codex_body(name: str, marker: str) -> dict[str, Any]:
    """A captured Codex request with only its function tools (other tool types are another
    part of issue 20) and `marker` in its last user message."""
    body: dict[str, Any] = copy.deepcopy(json.loads((DATA / name).read_text()))
    body["tools"] = [tool for tool in body["tools"] if tool["type"] == "function"]
    users = [item for item in body["input"] if item.get("role") == "user"]
    users[-1]["content"][-1]["text"] += f" [{marker}]"
    return body


@pytest.mark.parametrize(
    "name",
    [
        "codex_request_gpt-5-codex_default_config.json",
        "codex_request_gpt-5.5.json",
        "codex_request_turn2_function_call_output.json",
    ],
)
def test_a_codex_request_streams_to_completion(
    client: OpenAI, model: ScriptedModel, marker: str, name: str
) -> None:
    body = codex_body(name, marker)
    assert "client_metadata" in body
    assert len(json.dumps(body)) > 30_000  # more than the old default window of 8,192 tokens
    model.script(marker, Reply(text=["Done", " with", " it."]))
    events = raw_events(client, "responses", body=body)
    assert events[-1]["type"] == "response.completed", events[-1]
    for event in events:
        strict_types.event(event)
    assert events[0]["type"] == "response.created"
    final = events[-1]["response"]
    assert final["store"] is False
    assert final["prompt_cache_key"] == body["prompt_cache_key"]
    assert final["output"][-1]["content"][0]["text"] == "Done with it."
    (sent,) = model.requests(marker)
    assert sent["prompt_cache_key"] == body["prompt_cache_key"]
    assert {t["function"]["name"] for t in sent["tools"]} == {t["name"] for t in body["tools"]}
    if "text" in body:
        assert sent["verbosity"] == body["text"]["verbosity"]
    # Not stored: the response is gone once its stream has ended.
    with pytest.raises(Exception, match="not found"):
        client.responses.retrieve(final["id"])
