"""Wire models for containers and container files."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field
from pydantic.json_schema import SkipJsonSchema, WithJsonSchema

from assistantd.kit.schemas import FileId, RequestModel, WireModel

ContainerMemoryLimit = Literal["1g", "4g", "16g", "64g"]
ContainerStatus = Literal["running", "expired"]
ContainerFileSource = Literal["user", "assistant"]

DEFAULT_MEMORY_LIMIT: ContainerMemoryLimit = "1g"
DEFAULT_EXPIRY_MINUTES = 20  # OpenAI's: a container unused for 20 minutes expires
MAX_EXPIRY_MINUTES = 7 * 24 * 60  # ours: a week
MAX_NAME = 256
MAX_FILE_IDS = 50  # as OpenAI's `container: {"type": "auto", "file_ids"}`


class ContainerExpiresAfter(RequestModel):
    anchor: Literal["last_active_at"]
    minutes: int = Field(ge=1, le=MAX_EXPIRY_MINUTES)


class NetworkPolicyDisabled(RequestModel):
    type: Literal["disabled"]


class NetworkPolicyAllowlist(RequestModel):
    type: Literal["allowlist"]
    allowed_domains: list[str] = Field(min_length=1)
    domain_secrets: list[dict[str, Any]] | None = None


NetworkPolicy = Annotated[
    NetworkPolicyDisabled | NetworkPolicyAllowlist, Field(discriminator="type")
]


class ContainerCreate(RequestModel):
    name: str = Field(max_length=MAX_NAME)
    file_ids: list[FileId] | None = Field(None, max_length=MAX_FILE_IDS)
    expires_after: ContainerExpiresAfter | None = None
    memory_limit: ContainerMemoryLimit | None = None
    # An allowlist is parsed (to be refused in words): /openapi.json offers only `disabled`.
    network_policy: Annotated[
        NetworkPolicy | None,
        WithJsonSchema(
            {
                "anyOf": [
                    {
                        "type": "object",
                        "properties": {"type": {"const": "disabled"}},
                        "required": ["type"],
                        "additionalProperties": False,
                    },
                    {"type": "null"},
                ]
            }
        ),
    ] = None
    # Validated as a list only: any skill is refused (see `service.create`), so /openapi.json
    # does not offer it (an empty list or null is accepted).
    skills: SkipJsonSchema[list[dict[str, Any]] | None] = None


class ContainerFileCreate(RequestModel):
    """The JSON form of `POST /containers/{id}/files` (the multipart form carries `file`)."""

    file_id: FileId


class ExpiresAfterObject(WireModel):
    anchor: Literal["last_active_at"]
    minutes: int


class NetworkPolicyObject(WireModel):
    type: Literal["allowlist", "disabled"]


class ContainerObject(WireModel):
    id: str
    object: Literal["container"] = "container"
    created_at: int
    status: ContainerStatus
    expires_after: ExpiresAfterObject
    last_active_at: int
    memory_limit: ContainerMemoryLimit
    network_policy: NetworkPolicyObject
    name: str


class ContainerFileObject(WireModel):
    id: str
    object: Literal["container.file"] = "container.file"
    created_at: int
    bytes: int
    container_id: str
    path: str
    source: ContainerFileSource
