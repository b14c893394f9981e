"""Wire models for messages."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from assistantd.kit.schemas import (
    MAX_ATTACHMENTS,
    MAX_CONTENT_PARTS,
    FileId,
    Metadata,
    RequestModel,
    Text,
    WireModel,
)

ImageDetail = Literal["auto", "low", "high"]


class ImageFileParam(RequestModel):
    file_id: FileId
    detail: ImageDetail = "auto"


class ImageUrlParam(RequestModel):
    url: str
    detail: ImageDetail = "auto"

    @field_validator("url")
    @classmethod
    def _absolute_uri(cls, value: str) -> str:
        if not urlsplit(value).scheme:
            raise ValueError(f"'{value[:100]}' is not a valid URL.")
        return value


_PAYLOAD_FIELDS = ("text", "image_file", "image_url")


class ContentPartParam(RequestModel):
    """One part of a message's `content` array: `text`, `image_file` or `image_url`.

    One flat model rather than a tagged union, so a validation error names the parameter as the
    client wrote it (`content[1].image_file.file_id`), with no union tag in the path.
    """

    type: Literal["text", "image_file", "image_url"]
    text: Text | None = None
    image_file: ImageFileParam | None = None
    image_url: ImageUrlParam | None = None

    @model_validator(mode="after")
    def _payload_matches_type(self) -> ContentPartParam:
        if getattr(self, self.type) is None:
            raise ValueError(f"a content part of type '{self.type}' needs '{self.type}'.")
        for other in _PAYLOAD_FIELDS:
            if other != self.type and other in self.model_fields_set:
                raise ValueError(f"a content part of type '{self.type}' does not take '{other}'.")
        return self


class AttachmentTool(RequestModel):
    type: Literal["code_interpreter", "file_search"]


class AttachmentParam(RequestModel):
    file_id: FileId
    tools: list[AttachmentTool] = Field(max_length=2)


def _string_or_parts(schema: dict[str, Any]) -> None:
    """`content`'s JSON schema: a string, or the parts."""
    parts = {**schema, "minItems": 1}
    schema.clear()
    schema["anyOf"] = [{"type": "string"}, parts]


class MessageCreate(RequestModel):
    role: Literal["user", "assistant"]
    # A string is shorthand for one text part; it is turned into that part before validation.
    content: list[ContentPartParam] = Field(
        max_length=MAX_CONTENT_PARTS, json_schema_extra=_string_or_parts
    )
    attachments: list[AttachmentParam] | None = Field(None, max_length=MAX_ATTACHMENTS)
    metadata: Metadata = None

    @field_validator("content", mode="before")
    @classmethod
    def _string_or_parts(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [{"type": "text", "text": value}]
        if not isinstance(value, list):
            raise ValueError("expected a string or an array of content parts.")
        if not value:
            raise ValueError(
                "empty array. Expected an array with minimum length 1, "
                "but got an empty array instead."
            )
        return value


class MessageModify(RequestModel):
    metadata: Metadata = None


class MessageObject(WireModel):
    id: str
    object: Literal["thread.message"] = "thread.message"
    created_at: int
    thread_id: str
    status: Literal["in_progress", "incomplete", "completed"]
    incomplete_details: dict[str, Any] | None
    completed_at: int | None
    incomplete_at: int | None
    role: Literal["user", "assistant"]
    content: list[dict[str, Any]]
    assistant_id: str | None
    run_id: str | None
    attachments: list[dict[str, Any]] | None
    metadata: dict[str, str] | None
