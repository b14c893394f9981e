"""Base models for the wire, and the validated types several resources share."""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

MAX_METADATA_PAIRS = 16
MAX_METADATA_KEY = 64
MAX_METADATA_VALUE = 512


class WireModel(BaseModel):
    """Every object the API returns. Fields follow the order of OpenAI's API reference."""

    model_config = ConfigDict(extra="forbid")


class RequestModel(BaseModel):
    """Every request body: unknown fields are rejected, as OpenAI does."""

    model_config = ConfigDict(extra="forbid")

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
