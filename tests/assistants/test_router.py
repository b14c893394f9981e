"""Assistants through the official clients: every field, modify semantics, delete, list."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai import AzureOpenAI, BadRequestError, NotFoundError, OpenAI
from openai.types.beta import Assistant

ASSISTANT_KEYS = {
    "id",
    "object",
    "created_at",
    "name",
    "description",
    "model",
    "instructions",
    "tools",
    "tool_resources",
    "metadata",
    "temperature",
    "top_p",
    "response_format",
}

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}

JSON_SCHEMA_FORMAT = {
    "type": "json_schema",
    "json_schema": {
        "name": "answer",
        "description": "One number.",
        "schema": {"type": "object", "properties": {"n": {"type": "number"}}},
        "strict": True,
    },
}


def upload(client: OpenAI, name: str = "notes.txt") -> str:
    return client.files.create(file=(name, b"some notes\n"), purpose="assistants").id


def sent_keys(obj: Any) -> set[str]:
    """The keys the server actually put in the JSON (nulls included)."""
    return set(obj.model_dump(exclude_unset=True))


def bad_request(call: Any, *args: Any, **kwargs: Any) -> BadRequestError:
    with pytest.raises(BadRequestError) as err:
        call(*args, **kwargs)
    return err.value


class TestCreate:
    def test_defaults(self, client: OpenAI) -> None:
        assistant = client.beta.assistants.create(model="gpt-4o")
        assert assistant.id.startswith("asst_")
        assert sent_keys(assistant) == ASSISTANT_KEYS
        assert assistant.model_dump(exclude_unset=True) == {
            "id": assistant.id,
            "object": "assistant",
            "created_at": assistant.created_at,
            "name": None,
            "description": None,
            "model": "gpt-4o",
            "instructions": None,
            "tools": [],
            "tool_resources": {},
            "metadata": {},
            "temperature": 1.0,
            "top_p": 1.0,
            "response_format": "auto",
        }
        assert set(json.loads(assistant.model_dump_json())) == ASSISTANT_KEYS

    def test_every_field(self, client: OpenAI) -> None:
        file_ids = [upload(client, "a.csv"), upload(client, "b.csv")]
        assistant = client.beta.assistants.create(
            model="my-deployment",
            name="Analyst",
            description="Crunches numbers.",
            instructions="You are a careful analyst.",
            tools=[
                {"type": "code_interpreter"},
                {
                    "type": "file_search",
                    "file_search": {
                        "max_num_results": 7,
                        "ranking_options": {"ranker": "auto", "score_threshold": 0.25},
                    },
                },
                WEATHER,  # type: ignore[list-item]
            ],
            tool_resources={"code_interpreter": {"file_ids": file_ids}},
            metadata={"team": "data", "tier": "gold"},
            temperature=0.2,
            top_p=0.9,
            response_format=JSON_SCHEMA_FORMAT,  # type: ignore[arg-type]
        )
        assert sent_keys(assistant) == ASSISTANT_KEYS
        assert assistant.name == "Analyst"
        assert assistant.description == "Crunches numbers."
        assert assistant.instructions == "You are a careful analyst."
        assert assistant.model == "my-deployment"
        assert [tool.type for tool in assistant.tools] == [
            "code_interpreter",
            "file_search",
            "function",
        ]
        file_search = assistant.tools[1]
        assert file_search.type == "file_search"
        assert file_search.file_search is not None
        assert file_search.file_search.max_num_results == 7
        assert file_search.file_search.ranking_options is not None
        assert file_search.file_search.ranking_options.score_threshold == 0.25
        function = assistant.tools[2]
        assert function.type == "function"
        assert function.function.name == "get_weather"
        assert function.function.description == "Current weather in a city."
        assert function.function.parameters == WEATHER["function"]["parameters"]  # type: ignore[index]
        assert function.function.strict is True
        assert assistant.tool_resources is not None
        assert assistant.tool_resources.code_interpreter is not None
        assert assistant.tool_resources.code_interpreter.file_ids == file_ids
        assert assistant.metadata == {"team": "data", "tier": "gold"}
        assert assistant.temperature == 0.2
        assert assistant.top_p == 0.9
        assert assistant.response_format is not None
        assert assistant.response_format.model_dump(by_alias=True) == JSON_SCHEMA_FORMAT
        assert client.beta.assistants.retrieve(assistant.id) == assistant

    @pytest.mark.parametrize(
        "response_format",
        [
            "auto",
            {"type": "text"},
            {"type": "json_object"},
            JSON_SCHEMA_FORMAT,
            {"type": "json_schema", "json_schema": {"name": "bare"}},
        ],
    )
    def test_response_format(self, client: OpenAI, response_format: Any) -> None:
        assistant = client.beta.assistants.create(model="m", response_format=response_format)
        raw = assistant.model_dump(exclude_unset=True, by_alias=True)["response_format"]
        if isinstance(response_format, str):
            assert raw == response_format
        else:
            assert raw["type"] == response_format["type"]
            if "json_schema" in response_format:
                sent = response_format["json_schema"]
                assert {k: raw["json_schema"][k] for k in sent} == sent

    def test_function_without_parameters(self, client: OpenAI) -> None:
        assistant = client.beta.assistants.create(
            model="m", tools=[{"type": "function", "function": {"name": "ping"}}]
        )
        tool = assistant.tools[0]
        assert tool.type == "function"
        assert tool.function.name == "ping"
        assert not tool.function.strict

    def test_128_tools(self, client: OpenAI) -> None:
        tools: Any = [{"type": "function", "function": {"name": f"f{i}"}} for i in range(128)]
        assistant = client.beta.assistants.create(model="m", tools=tools)
        assert [t.function.name for t in assistant.tools if t.type == "function"] == [
            f"f{i}" for i in range(128)
        ]

    def test_129_tools(self, client: OpenAI) -> None:
        tools: Any = [{"type": "code_interpreter"}] * 129
        err = bad_request(client.beta.assistants.create, model="m", tools=tools)
        assert err.param == "tools"
        assert "maximum length 128" in err.message

    @pytest.mark.parametrize(("temperature", "top_p"), [(0, 0), (2, 1), (0.7, 0.3), (None, None)])
    def test_sampling_bounds_accepted(
        self, client: OpenAI, temperature: float | None, top_p: float | None
    ) -> None:
        assistant = client.beta.assistants.create(model="m", temperature=temperature, top_p=top_p)
        assert assistant.temperature == (1.0 if temperature is None else temperature)
        assert assistant.top_p == (1.0 if top_p is None else top_p)

    @pytest.mark.parametrize(
        ("field", "value"),
        [("temperature", -0.01), ("temperature", 2.01), ("top_p", -0.5), ("top_p", 1.5)],
    )
    def test_sampling_bounds_refused(self, client: OpenAI, field: str, value: float) -> None:
        err = bad_request(client.beta.assistants.create, model="m", **{field: value})
        assert err.param == field
        assert err.code is None

    @pytest.mark.parametrize(
        ("body", "param"),
        [
            ({"name": "n" * 257}, "name"),
            ({"description": "d" * 513}, "description"),
            ({"instructions": "i" * 256_001}, "instructions"),
            ({"tools": [{"type": "retrieval"}]}, "tools[0].type"),
            ({"tools": [{"type": "function", "function": {"name": "bad name"}}]}, None),
            ({"tools": [{"type": "function", "function": {"name": "f" * 65}}]}, None),
            ({"tools": [{"type": "function"}]}, "tools[0].function"),
            (
                {"tools": [{"type": "file_search", "file_search": {"max_num_results": 51}}]},
                "tools[0].file_search.max_num_results",
            ),
            (
                {"tools": [{"type": "file_search", "file_search": {"ranking_options": {}}}]},
                "tools[0].file_search.ranking_options.score_threshold",
            ),
            ({"response_format": {"type": "xml"}}, "response_format.type"),
            ({"reasoning_effort": "extreme"}, "reasoning_effort"),
            (
                {"tool_resources": {"code_interpreter": {"file_ids": ["file-x"] * 21}}},
                "tool_resources.code_interpreter.file_ids",
            ),
            (
                {"tool_resources": {"file_search": {"vector_store_ids": ["vs_a", "vs_b"]}}},
                "tool_resources.file_search.vector_store_ids",
            ),
        ],
    )
    def test_invalid(self, client: OpenAI, body: dict[str, Any], param: str | None) -> None:
        err = bad_request(client.beta.assistants.create, model="m", extra_body=body)
        if param is None:
            assert err.param is not None
            assert err.param.startswith("tools[0].function.name")
        else:
            assert err.param == param, err.message
        assert client.beta.assistants.list().data == []

    def test_missing_model(self, client: OpenAI) -> None:
        err = bad_request(client.beta.assistants.create, model=None)  # type: ignore[arg-type]
        assert err.param == "model"

    def test_file_search_vector_store(self, client: OpenAI) -> None:
        store = client.vector_stores.create(name="docs")
        assistant = client.beta.assistants.create(
            model="m",
            tools=[{"type": "file_search"}],
            tool_resources={"file_search": {"vector_store_ids": [store.id]}},
        )
        assert assistant.tool_resources is not None
        assert assistant.tool_resources.file_search is not None
        assert assistant.tool_resources.file_search.vector_store_ids == [store.id]
        assert client.beta.assistants.retrieve(assistant.id) == assistant

    def test_file_search_vector_stores_helper(self, client: OpenAI) -> None:
        file_id = upload(client)
        assistant = client.beta.assistants.create(
            model="m",
            tools=[{"type": "file_search"}],
            tool_resources={"file_search": {"vector_stores": [{"file_ids": [file_id]}]}},
        )
        assert assistant.tool_resources is not None
        assert assistant.tool_resources.file_search is not None
        [store_id] = assistant.tool_resources.file_search.vector_store_ids or []
        assert store_id.startswith("vs_")
        assert client.vector_stores.retrieve(store_id).id == store_id

    def test_unknown_vector_store(self, client: OpenAI) -> None:
        err = bad_request(
            client.beta.assistants.create,
            model="m",
            tool_resources={"file_search": {"vector_store_ids": ["vs_doesnotexist"]}},
        )
        assert "vs_doesnotexist" in err.message
        assert client.beta.assistants.list().data == []

    def test_unknown_file_in_tool_resources(self, client: OpenAI) -> None:
        err = bad_request(
            client.beta.assistants.create,
            model="m",
            tool_resources={"code_interpreter": {"file_ids": ["file-doesnotexist"]}},
        )
        assert "file-doesnotexist" in err.message
        assert client.beta.assistants.list().data == []

    def test_foreign_file_in_tool_resources(self, client: OpenAI, other_client: OpenAI) -> None:
        foreign = upload(other_client)
        err = bad_request(
            client.beta.assistants.create,
            model="m",
            tool_resources={"code_interpreter": {"file_ids": [foreign]}},
        )
        assert foreign in err.message

    def test_azure_client(self, client: OpenAI, azure_client: AzureOpenAI) -> None:
        created = azure_client.beta.assistants.create(
            model="gpt-4o-deployment", name="Math Tutor", tools=[{"type": "code_interpreter"}]
        )
        assert sent_keys(created) == ASSISTANT_KEYS
        assert client.beta.assistants.retrieve(created.id) == created
        assert azure_client.beta.assistants.retrieve(created.id) == created


class TestModify:
    @pytest.fixture
    def full(self, client: OpenAI) -> Assistant:
        return client.beta.assistants.create(
            model="m1",
            name="Name",
            description="Desc",
            instructions="Instr",
            tools=[{"type": "code_interpreter"}, WEATHER],  # type: ignore[list-item]
            tool_resources={"code_interpreter": {"file_ids": [upload(client)]}},
            metadata={"a": "1", "b": "2"},
            temperature=0.5,
            top_p=0.5,
            response_format={"type": "json_object"},
        )

    def test_only_given_fields_change(self, client: OpenAI, full: Assistant) -> None:
        renamed = client.beta.assistants.update(full.id, name="New name")
        assert renamed.model_dump() == {**full.model_dump(), "name": "New name"}
        assert client.beta.assistants.retrieve(full.id) == renamed

    @pytest.mark.parametrize(
        ("change", "expected"),
        [
            ({"model": "m2"}, {"model": "m2"}),
            ({"description": None}, {"description": None}),
            ({"instructions": "Other"}, {"instructions": "Other"}),
            ({"temperature": 1.5, "top_p": 0.1}, {"temperature": 1.5, "top_p": 0.1}),
            ({"temperature": None}, {"temperature": 1.0}),
            ({"response_format": "auto"}, {"response_format": "auto"}),
            ({"metadata": {"c": "3"}}, {"metadata": {"c": "3"}}),
            ({"tools": []}, {"tools": []}),
        ],
    )
    def test_each_field(
        self,
        client: OpenAI,
        full: Assistant,
        change: dict[str, Any],
        expected: dict[str, Any],
    ) -> None:
        updated = client.beta.assistants.update(full.id, **change)
        assert updated.model_dump() == {**full.model_dump(), **expected}

    def test_tools_replaced(self, client: OpenAI, full: Assistant) -> None:
        updated = client.beta.assistants.update(full.id, tools=[{"type": "file_search"}])
        assert [tool.type for tool in updated.tools] == ["file_search"]

    def test_tool_resources_override_per_tool(self, client: OpenAI, full: Assistant) -> None:
        store = client.vector_stores.create(name="docs")
        updated = client.beta.assistants.update(
            full.id, tool_resources={"file_search": {"vector_store_ids": [store.id]}}
        )
        assert updated.tool_resources is not None
        assert updated.tool_resources.file_search is not None
        assert updated.tool_resources.file_search.vector_store_ids == [store.id]
        # a tool not named keeps its resources
        assert updated.tool_resources == updated.tool_resources.model_copy(
            update={"code_interpreter": full.tool_resources.code_interpreter}  # type: ignore[union-attr]
        )

    def test_tool_resources_override(self, client: OpenAI, full: Assistant) -> None:
        replacement = [upload(client, "x.txt"), upload(client, "y.txt")]
        updated = client.beta.assistants.update(
            full.id, tool_resources={"code_interpreter": {"file_ids": replacement}}
        )
        assert updated.tool_resources is not None
        assert updated.tool_resources.code_interpreter is not None
        assert updated.tool_resources.code_interpreter.file_ids == replacement
        emptied = client.beta.assistants.update(
            full.id, tool_resources={"code_interpreter": {"file_ids": []}}
        )
        assert emptied.tool_resources is not None
        assert emptied.tool_resources.code_interpreter is not None
        assert emptied.tool_resources.code_interpreter.file_ids == []

    def test_empty_body_changes_nothing(self, client: OpenAI, full: Assistant) -> None:
        assert client.beta.assistants.update(full.id) == full

    def test_invalid_changes_nothing(self, client: OpenAI, full: Assistant) -> None:
        err = bad_request(client.beta.assistants.update, full.id, name="ok", temperature=3)
        assert err.param == "temperature"
        err = bad_request(
            client.beta.assistants.update,
            full.id,
            name="ok",
            tool_resources={"code_interpreter": {"file_ids": ["file-missing"]}},
        )
        assert client.beta.assistants.retrieve(full.id) == full

    def test_unknown_field(self, client: OpenAI, full: Assistant) -> None:
        err = bad_request(client.beta.assistants.update, full.id, extra_body={"file_ids": []})
        assert err.message.endswith("Unrecognized request argument supplied: file_ids")

    def test_vector_stores_helper_is_not_a_modify_field(
        self, client: OpenAI, full: Assistant
    ) -> None:
        err = bad_request(
            client.beta.assistants.update,
            full.id,
            extra_body={"tool_resources": {"file_search": {"vector_stores": [{"file_ids": []}]}}},
        )
        assert err.message.endswith("Unrecognized request argument supplied: vector_stores")
        assert err.param == "tool_resources.file_search.vector_stores"

    def test_azure_client(self, azure_client: AzureOpenAI, full: Assistant) -> None:
        updated = azure_client.beta.assistants.update(full.id, metadata={"via": "azure"})
        assert updated.metadata == {"via": "azure"}
        assert updated.name == full.name


class TestDelete:
    def test_delete(self, client: OpenAI) -> None:
        assistant = client.beta.assistants.create(model="m")
        deleted = client.beta.assistants.delete(assistant.id)
        assert deleted.model_dump(exclude_unset=True) == {
            "id": assistant.id,
            "object": "assistant.deleted",
            "deleted": True,
        }
        with pytest.raises(NotFoundError):
            client.beta.assistants.retrieve(assistant.id)
        with pytest.raises(NotFoundError):
            client.beta.assistants.delete(assistant.id)
        with pytest.raises(NotFoundError):
            client.beta.assistants.update(assistant.id, name="x")
        assert client.beta.assistants.list().data == []

    def test_azure_client(self, client: OpenAI, azure_client: AzureOpenAI) -> None:
        assistant = client.beta.assistants.create(model="m")
        assert azure_client.beta.assistants.delete(assistant.id).deleted is True
        with pytest.raises(NotFoundError):
            client.beta.assistants.retrieve(assistant.id)


class TestList:
    @pytest.fixture
    def ids(self, client: OpenAI) -> list[str]:
        """Seven assistants, in creation order."""
        return [client.beta.assistants.create(model="m", name=f"a{i}").id for i in range(7)]

    def test_default_page(self, client: OpenAI, ids: list[str]) -> None:
        page = client.beta.assistants.list()
        assert [a.id for a in page.data] == ids[::-1]
        raw = page.model_dump(exclude_unset=True)
        assert raw["object"] == "list"
        assert raw["first_id"] == ids[-1]
        assert raw["last_id"] == ids[0]
        assert raw["has_more"] is False

    @pytest.mark.parametrize("order", ["asc", "desc"])
    @pytest.mark.parametrize("limit", [1, 2, 3, 7, 100])
    def test_auto_pagination(self, client: OpenAI, ids: list[str], order: Any, limit: int) -> None:
        expected = ids if order == "asc" else ids[::-1]
        walked = [a.id for a in client.beta.assistants.list(limit=limit, order=order)]
        assert walked == expected

    def test_pages(self, client: OpenAI, ids: list[str]) -> None:
        first = client.beta.assistants.list(limit=3, order="asc")
        assert [a.id for a in first.data] == ids[:3]
        assert first.has_more is True
        second = first.get_next_page()
        assert [a.id for a in second.data] == ids[3:6]
        third = second.get_next_page()
        assert [a.id for a in third.data] == ids[6:]
        assert third.has_more is False
        assert not third.has_next_page()

    def test_before(self, client: OpenAI, ids: list[str]) -> None:
        page = client.beta.assistants.list(limit=2, order="asc", before=ids[4])
        assert [a.id for a in page.data] == ids[2:4]
        assert page.has_more is True
        page = client.beta.assistants.list(limit=2, order="desc", before=ids[4])
        assert [a.id for a in page.data] == [ids[6], ids[5]]
        assert page.has_more is False

    def test_after_and_before(self, client: OpenAI, ids: list[str]) -> None:
        page = client.beta.assistants.list(order="asc", after=ids[1], before=ids[5])
        assert [a.id for a in page.data] == ids[2:5]

    def test_deleted_cursor_keeps_its_place(self, client: OpenAI, ids: list[str]) -> None:
        client.beta.assistants.delete(ids[3])
        page = client.beta.assistants.list(order="asc", after=ids[3])
        assert [a.id for a in page.data] == ids[4:]

    def test_empty(self, client: OpenAI) -> None:
        page = client.beta.assistants.list()
        assert page.model_dump(exclude_unset=True) == {
            "object": "list",
            "data": [],
            "first_id": None,
            "last_id": None,
            "has_more": False,
        }

    def test_azure_auto_pagination(self, azure_client: AzureOpenAI, ids: list[str]) -> None:
        walked = [a.id for a in azure_client.beta.assistants.list(limit=2, order="asc")]
        assert walked == ids

    def test_items_have_every_field(self, client: OpenAI, ids: list[str]) -> None:
        for assistant in client.beta.assistants.list(limit=100):
            assert sent_keys(assistant) == ASSISTANT_KEYS
