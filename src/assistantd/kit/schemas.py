"""Base models for the wire, and the validated types several resources share."""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema
from starlette.responses import Response

from assistantd.kit.ids import ID_MAX_LENGTH, Prefix, id_pattern

MAX_METADATA_PAIRS = 16
MAX_METADATA_KEY = 64
MAX_METADATA_VALUE = 512
INT32_MAX = 2_147_483_647  # a PostgreSQL integer; no count or token limit needs more
INT64_MAX = 2**63 - 1  # a bigint


class WireModel(BaseModel):
    """Every object the API returns. Fields follow the order of OpenAI's API reference."""

    model_config = ConfigDict(extra="forbid")


class WireResponse(Response):
    """A wire object as the answer of a route that may answer otherwise too (a stream), which
    FastAPI would serialize with its slow generic encoder (no `response_model`)."""

    media_type = "application/json"

    def __init__(self, obj: BaseModel, status_code: int = 200) -> None:
        super().__init__(obj.model_dump_json(by_alias=True), status_code)


class RequestModel(BaseModel):
    """Every request body and its parts: unknown fields are rejected, as OpenAI does, and values
    are not coerced (strict): `true` is no number and `"5"` no integer."""

    model_config = ConfigDict(extra="forbid", strict=True)

    def given(self) -> dict[str, Any]:
        """Only the fields the client actually sent (null included)."""
        return {name: getattr(self, name) for name in self.model_fields_set}


def _check_metadata(value: dict[str, str] | None) -> dict[str, str] | None:
    if value is None:
        return None
    if len(value) > MAX_METADATA_PAIRS:
        raise ValueError(
            f"too many properties. Expected an object with at most {MAX_METADATA_PAIRS} "
            f"properties, but got an object with {len(value)} properties instead."
        )
    for key, item in value.items():
        if len(key) > MAX_METADATA_KEY:
            raise ValueError(
                f"metadata key '{key[:20]}...' is too long: at most {MAX_METADATA_KEY} characters."
            )
        if len(item) > MAX_METADATA_VALUE:
            raise ValueError(
                f"metadata value for '{key}' is too long: at most {MAX_METADATA_VALUE} characters."
            )
    return value


Metadata = Annotated[dict[str, str] | None, AfterValidator(_check_metadata)]
"""Up to 16 pairs, keys up to 64 characters, string values up to 512."""

MAX_TEXT = 256_000  # instructions, and a message's text, as OpenAI's reference bounds them
MAX_TOOLS = 128  # tools of an assistant (OpenAI's bound), of a response (ours, the same)
MAX_THREAD_MESSAGES = 32  # messages of a thread create and a run's additional_messages (OpenAI's)
MAX_CONTENT_PARTS = 100  # parts of a message or of a tool output (ours: OpenAI states none)
MAX_ATTACHMENTS = 20  # attachments of a message (ours, as a code interpreter's file_ids)
MAX_INPUT_ITEMS = 2048  # items of a response's input (ours: OpenAI states none)
# Content parts of all of a response's input messages and tool outputs together (ours): what
# parsing and validating a request costs grows with its parts, and a request is validated in
# one go on the event loop, so this bounds that go (~50 ms here).
MAX_INPUT_PARTS = 8192
MAX_CONVERSATION_ITEMS = 20  # items one conversation create or items create adds (OpenAI's)

Text = Annotated[str, Field(max_length=MAX_TEXT)]
"""A long text field: instructions, a message's text."""


def _id_of(*prefixes: str) -> Any:
    """An id in a request body: its pattern, for `/openapi.json` only (the service checks it
    with `check_prefix`, in OpenAI's words, naming the field's full path)."""
    return Field(json_schema_extra={"pattern": id_pattern(*prefixes), "maxLength": ID_MAX_LENGTH})


FileId = Annotated[str, _id_of(Prefix.FILE)]
VectorStoreId = Annotated[str, _id_of(Prefix.VECTOR_STORE)]
AssistantId = Annotated[str, _id_of(Prefix.ASSISTANT)]


def _refuse_null(value: Any) -> Any:
    if value is None:
        raise PydanticCustomError("model_type", "Input should be an object")
    return value


class _NotNull:
    """Refuses `null` (validation) and leaves it out of the field's JSON schema (`/openapi.json`),
    so the document says what the server accepts."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_before_validator_function(_refuse_null, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        options = json_schema.get("anyOf")
        if isinstance(options, list):
            kept = [option for option in options if option != {"type": "null"}]
            if len(kept) == 1:
                del json_schema["anyOf"]
                json_schema.update(kept[0])
            else:
                json_schema["anyOf"] = kept
        return json_schema


NotNull = _NotNull()
"""For an optional object the reference does not make nullable: left out is fine, `null` is a
400 (`Annotated[X | None, NotNull] = None`)."""

Order = Literal["asc", "desc"]
Limit = Annotated[int, Field(ge=1, le=100)]

T = TypeVar("T")


class ListResponse(WireModel, Generic[T]):
    object: Literal["list"] = "list"
    data: list[T]
    first_id: str | None
    last_id: str | None
    has_more: bool


class DeletedObject(WireModel):
    id: str
    object: str
    deleted: bool = True
