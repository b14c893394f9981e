"""The server's own `/openapi.json`, made to tell the truth about what the routes answer.

FastAPI documents a 422 `HTTPValidationError` for every route with parameters; this server never
sends one (`errors.py` renders every failure as OpenAI's 400 envelope). One hook, here, rewrites
the generated document once: every API operation documents the errors it may answer, all with
the `{"error": {...}}` envelope, and each id in a path carries the pattern of the ids the server
mints for it (an id of the wrong kind is a 400, an unknown one a 404).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from assistantd.kit.ids import ID_MAX_LENGTH, THREAD_IDS, Prefix, id_pattern

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "ErrorResponse",
    "description": "OpenAI's error envelope; every error the API answers has this body.",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                "code": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            },
            "required": ["message", "type", "param", "code"],
        }
    },
    "required": ["error"],
}

_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "string"},
    }
}

# What any API operation may answer besides its success, and why.
ERRORS: dict[str, str] = {
    "400": "Invalid request: a malformed body, parameter or id, or a state that forbids it.",
    "401": "Missing or invalid API key.",
    "404": "No such object in this project, or no such route.",
    "409": "The object changed concurrently, or the operation conflicts with its state.",
    "413": "The request body is larger than the server accepts.",
    "429": "Too many requests or too much work in progress for this project.",
    "503": "A dependency (the database) is unavailable; retry after `Retry-After` seconds.",
}

# The ids a path names, by parameter (and, where a name is shared, by the path's resource).
# Not a conversation's `item_id`: the items a client sends may carry ids of its own.
_PATH_IDS: dict[str, str] = {
    "assistant_id": id_pattern(Prefix.ASSISTANT),
    "thread_id": id_pattern(*THREAD_IDS),
    "message_id": id_pattern(Prefix.MESSAGE),
    "run_id": id_pattern(Prefix.RUN),
    "step_id": id_pattern(Prefix.STEP),
    "file_id": id_pattern(Prefix.FILE),
    "upload_id": id_pattern(Prefix.UPLOAD),
    "vector_store_id": id_pattern(Prefix.VECTOR_STORE),
    "batch_id": id_pattern(Prefix.FILE_BATCH),
    "container_id": id_pattern(Prefix.CONTAINER),
    "conversation_id": id_pattern(Prefix.CONVERSATION),
    "response_id": id_pattern(Prefix.RESPONSE),
}
_CONTAINER_FILE_ID = id_pattern(Prefix.CONTAINER_FILE)
# Ids a query names: a thread's messages of one run (or response).
_QUERY_IDS: dict[str, str] = {"run_id": id_pattern(Prefix.RUN, Prefix.RESPONSE)}


def _error_response(status: str, reason: str) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": reason,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    if status in ("429", "503"):
        response["headers"] = _RETRY_AFTER
    return response


def _document_parameters(path: str, operation: dict[str, Any]) -> None:
    for parameter in operation.get("parameters", []):
        name, schema = parameter["name"], parameter["schema"]
        if parameter["in"] == "path" and name in _PATH_IDS:
            pattern = _PATH_IDS[name]
            if name == "file_id" and path.startswith("/v1/containers/"):
                pattern = _CONTAINER_FILE_ID
            schema.update(pattern=pattern, maxLength=ID_MAX_LENGTH)
        elif parameter["in"] == "query" and name in _QUERY_IDS:
            for option in schema.get("anyOf", [schema]):
                if option.get("type") == "string":
                    option.update(pattern=_QUERY_IDS[name], maxLength=ID_MAX_LENGTH)


def document(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` (FastAPI's document) with the errors and id patterns of every API operation."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    components["Error"] = ERROR_SCHEMA
    for path, item in schema.get("paths", {}).items():
        for operation in item.values():
            responses = operation["responses"]
            responses.pop("422", None)
            if not path.startswith("/v1/"):
                continue
            for status, reason in ERRORS.items():
                responses.setdefault(status, _error_response(status, reason))
            _document_parameters(path, operation)
    return schema


def install_openapi(app: FastAPI) -> None:
    """Serve `document(...)` of the app's routes as its `/openapi.json`."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
