"""Errors the API raises, and the one handler that renders all of them.

    APIError                          any failure with an OpenAI error envelope
    ├── InvalidRequestError           400 invalid_request_error (validation, bad ids, state)
    ├── AuthenticationError           401 invalid_request_error, code invalid_api_key
    ├── NotFoundError                 404 invalid_request_error (unknown or foreign ids, routes)
    ├── MethodNotAllowedError         405 invalid_request_error
    ├── PayloadTooLargeError          413 invalid_request_error
    ├── RateLimitError                429 rate_limit_error
    └── ServerError                   500 server_error

Every response body is `{"error": {"message", "type", "param", "code"}}`, all four keys present.
Raise these; never return them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)


class APIError(Exception):
    status_code = 500
    type = "server_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


class InvalidRequestError(APIError):
    status_code = 400
    type = "invalid_request_error"


class AuthenticationError(APIError):
    status_code = 401
    type = "invalid_request_error"


class NotFoundError(APIError):
    status_code = 404
    type = "invalid_request_error"


class MethodNotAllowedError(APIError):
    status_code = 405
    type = "invalid_request_error"


class PayloadTooLargeError(APIError):
    status_code = 413
    type = "invalid_request_error"


class RateLimitError(APIError):
    status_code = 429
    type = "rate_limit_error"


class ServerError(APIError):
    status_code = 500
    type = "server_error"


def not_found(kind: str, object_id: str) -> NotFoundError:
    """OpenAI's wording: `No assistant found with id 'asst_x'.`"""
    return NotFoundError(f"No {kind} found with id '{object_id}'.")


def param_path(loc: Sequence[int | str]) -> str | None:
    """`("body", "tools", 0, "function", "name")` -> `tools[0].function.name`."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or None


_BAD_JSON = (
    "We could not parse the JSON body of your request. The API expects a JSON payload, "
    "but what was sent was not valid JSON."
)


def validation_error(errors: Sequence[Any]) -> InvalidRequestError:
    """Translate the first pydantic error into OpenAI's wording."""
    if not errors:
        return InvalidRequestError("Invalid request.")
    err = errors[0]
    kind = err.get("type", "")
    loc = tuple(err.get("loc", ()))
    param = param_path(loc)
    if kind == "json_invalid":
        return InvalidRequestError(_BAD_JSON)
    if kind == "extra_forbidden":
        name = str(loc[-1]) if loc else "?"
        return InvalidRequestError(f"Unrecognized request argument supplied: {name}", param=param)
    if kind == "missing":
        if param is None:
            return InvalidRequestError("Missing request body.")
        return InvalidRequestError(f"Missing required parameter: '{param}'.", param=param)
    message = str(err.get("msg", "invalid value"))
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    if param is None:
        return InvalidRequestError(message)
    return InvalidRequestError(f"Invalid '{param}': {message}", param=param)


def _render(exc: APIError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status_code, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """The one place that turns exceptions into responses."""

    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError) -> JSONResponse:
        return _render(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _render(validation_error(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        error: APIError
        if exc.status_code == 404:
            error = NotFoundError(f"Invalid URL ({request.method} {request.url.path})")
        elif exc.status_code == 405:
            error = MethodNotAllowedError(
                f"Method {request.method} is not allowed for {request.url.path}."
            )
        elif exc.status_code == 413:
            error = PayloadTooLargeError(str(exc.detail))
        elif exc.status_code < 500:
            error = InvalidRequestError(str(exc.detail))
            error.status_code = exc.status_code
        else:
            error = ServerError(str(exc.detail))
        return _render(error, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _render(ServerError("The server had an error while processing your request."))
