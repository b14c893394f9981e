"""Errors the API raises, and the one handler that renders all of them.

    APIError                          any failure with an OpenAI error envelope
    ├── InvalidRequestError           400 invalid_request_error (validation, bad ids, state)
    ├── AuthenticationError           401 invalid_request_error, code invalid_api_key
    ├── NotFoundError                 404 invalid_request_error (unknown or foreign ids, routes)
    ├── MethodNotAllowedError         405 invalid_request_error
    ├── PayloadTooLargeError          413 invalid_request_error
    ├── RateLimitError                429 rate_limit_error
    │   └── ProjectLimitError         429 `requests`, code rate_limit_exceeded, with Retry-After
    │                                 (a project has as much work or as many streams as it may)
    ├── ServerError                   500 server_error
    └── ServiceUnavailableError       503 service_unavailable_error, with Retry-After (the
                                      database is down: `database_unavailable` tells)

Every response body is `{"error": {"message", "type", "param", "code"}}`, all four keys present.
Raise these; never return them.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Sequence
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

log = logging.getLogger(__name__)


class APIError(Exception):
    status_code = 500
    type = "server_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code

    def headers(self) -> dict[str, str]:
        """Headers the response carries besides the body."""
        return {}

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


class ProjectLimitError(RateLimitError):
    """OpenAI's 429 for a limit on requests (its `type` is `requests`, as OpenAI's own for
    requests per minute), with `Retry-After` in seconds, which the official SDKs honour."""

    type = "requests"

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message, code="rate_limit_exceeded")
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class ServerError(APIError):
    status_code = 500
    type = "server_error"


class ServiceUnavailableError(APIError):
    status_code = 503
    type = "service_unavailable_error"

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


# SQLite's result codes (the primary, low byte) for a database that cannot be used right now,
# as opposed to a statement that is wrong: busy, locked, I/O error, full, cannot open, protocol.
_SQLITE_UNAVAILABLE = frozenset({5, 6, 10, 13, 14, 15})
DATABASE_RETRY_AFTER_SECONDS = 2


def database_unavailable(exc: BaseException) -> bool:
    """Whether `exc` (or what it was raised from) says the database cannot be reached or used
    right now (it is down, restarting, out of connections, its file cannot be opened), rather
    than that a statement failed."""
    seen: BaseException | None = exc
    for _ in range(8):  # the chain of causes, not forever
        if seen is None:
            return False
        if isinstance(seen, BaseExceptionGroup):
            return any(database_unavailable(inner) for inner in seen.exceptions)
        if _unavailable(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _unavailable(exc: BaseException) -> bool:
    if isinstance(exc, sa.TimeoutError):  # no pooled connection came free in time
        return True
    if isinstance(exc, sa.DBAPIError):
        if exc.connection_invalidated:
            return True
        if not isinstance(exc, sa.OperationalError | sa.InterfaceError):
            return False
        return _driver_unavailable(exc.orig)
    return _driver_unavailable(exc)


def _driver_unavailable(exc: BaseException | None) -> bool:
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return True  # connection failures, a server shutting down, a dropped connection
    if isinstance(exc, sqlite3.OperationalError):
        code = getattr(exc, "sqlite_errorcode", None)
        return code is not None and code & 0xFF in _SQLITE_UNAVAILABLE
    return False


def not_found(kind: str, object_id: str) -> NotFoundError:
    """OpenAI's wording: `No assistant found with id 'asst_x'.`"""
    return NotFoundError(f"No {kind} found with id '{object_id}'.")


_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def param_path(loc: Sequence[int | str], body: Any = None, *, missing: bool = True) -> str | None:
    """`("body", "tools", 0, "function", "name")` -> `tools[0].function.name`.

    pydantic puts union members in `loc` (a discriminated union's tag, or a member's name such
    as `literal['auto']`); those are not parameters. Walking the request body along `loc` tells
    them apart: a part is kept when the body has it there (or when it is the last part, the name
    of a missing field), and dropped otherwise.
    """
    parts = list(loc)
    walk = bool(parts) and parts[0] == "body" and body is not None
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    kept: list[int | str] = []
    current = body
    for index, part in enumerate(parts):
        if not walk:
            kept.append(part)
        elif isinstance(current, dict) and isinstance(part, str):
            if part in current:
                current = current[part]
                kept.append(part)
            elif missing and index == len(parts) - 1 and _FIELD_NAME.match(part):
                kept.append(part)
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            current = current[part]
            kept.append(part)
    out = ""
    for part in kept:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or None


_BAD_JSON = (
    "We could not parse the JSON body of your request. The API expects a JSON payload, "
    "but what was sent was not valid JSON."
)

_EXPECTED_TYPE = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a decimal",
    "float_parsing": "a decimal",
    "bool_type": "a boolean",
    "bool_parsing": "a boolean",
    "list_type": "an array",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _numeric_kind(value: Any) -> str:
    if isinstance(value, int) or (isinstance(value, str) and value.lstrip("-").isdigit()):
        return "integer"
    return "decimal"


def _openai_wording(kind: str, err: Any) -> str | None:
    """OpenAI's phrasing of a pydantic error, where one is known."""
    ctx = err.get("ctx") or {}
    value = err.get("input")
    if kind in _EXPECTED_TYPE:
        return f"expected {_EXPECTED_TYPE[kind]}, but got {_json_type(value)} instead."
    if kind in ("too_long", "too_short"):
        actual = ctx.get("actual_length", len(value) if hasattr(value, "__len__") else "?")
        if kind == "too_long":
            return (
                f"array too long. Expected an array with maximum length {ctx.get('max_length')}, "
                f"but got an array with length {actual} instead."
            )
        if actual == 0:
            return (
                f"empty array. Expected an array with minimum length {ctx.get('min_length')}, "
                "but got an empty array instead."
            )
        return (
            f"array too short. Expected an array with minimum length {ctx.get('min_length')}, "
            f"but got an array with length {actual} instead."
        )
    if kind == "string_too_long":
        return (
            f"string too long. Expected a string with maximum length {ctx.get('max_length')}, "
            f"but got a string with length {len(value)} instead."
        )
    if kind == "string_too_short":
        if not value:
            return (
                f"empty string. Expected a string with minimum length {ctx.get('min_length')}, "
                "but got an empty string instead."
            )
        return (
            f"string too short. Expected a string with minimum length {ctx.get('min_length')}, "
            f"but got a string with length {len(value)} instead."
        )
    bounds = {
        "less_than_equal": ("above maximum", "<=", "le"),
        "less_than": ("above maximum", "<", "lt"),
        "greater_than_equal": ("below minimum", ">=", "ge"),
        "greater_than": ("below minimum", ">", "gt"),
    }
    if kind in bounds:
        where, op, key = bounds[kind]
        return (
            f"{_numeric_kind(value)} {where} value. Expected a value {op} "
            f"{_number(ctx.get(key))}, but got {_number(value)} instead."
        )
    return None


def _choices(expected: str) -> str:
    """pydantic's `'a', 'b' or 'c'` as OpenAI writes it: `'a', 'b', and 'c'`."""
    values: list[str] = re.findall(r"'[^']*'", expected)
    if len(values) <= 2:
        return " and ".join(values) or expected
    return ", ".join(values[:-1]) + ", and " + values[-1]


def _bad_value(param: str | None, value: Any, expected: str) -> InvalidRequestError:
    where = f" for '{param}'" if param else ""
    return InvalidRequestError(
        f"Invalid value{where}: '{value}'. Supported values are: {expected}.", param=param
    )


def _most_telling(errors: Sequence[Any], body: Any) -> Any:
    """The error to report. A value matching no member of a union yields one error per member;
    a mismatch of kind (`'auto'` versus an object) says less than one inside the right kind."""
    first = errors[0]
    if len(errors) == 1 or first.get("type") not in (*_EXPECTED_TYPE, "literal_error"):
        return first
    param = param_path(tuple(first.get("loc", ())), body, missing=False) or ""
    for other in errors[1:]:
        other_param = param_path(tuple(other.get("loc", ())), body) or ""
        if other_param.startswith(param) and other.get("type") not in (
            *_EXPECTED_TYPE,
            "literal_error",
        ):
            return other
    return first


# The Responses family (responses, conversations, containers) names each kind of error with a
# code, and says "Unknown parameter" where the Assistants API says "Unrecognized request
# argument supplied".
RESPONSES_FAMILY = re.compile(r"/(responses|conversations|containers)(/|$)")
# A bound's pydantic error: the context key of the bound, and the code's end.
_BOUND_CODES = {
    "less_than_equal": ("le", "above_max_value"),
    "less_than": ("lt", "above_max_value"),
    "greater_than_equal": ("ge", "below_min_value"),
    "greater_than": ("gt", "below_min_value"),
}
_LENGTH_CODES = {
    "too_long": "array_above_max_length",
    "too_short": "array_below_min_length",
    "string_too_long": "string_above_max_length",
    "string_too_short": "string_below_min_length",
}


def _coded(error: InvalidRequestError, kind: str, err: Any) -> InvalidRequestError:
    """The Responses family's `code` for a validation error."""
    if error.code is not None:
        return error
    if kind == "extra_forbidden":
        error.message = f"Unknown parameter: '{error.param}'."
        error.code = "unknown_parameter"
    elif kind == "missing":
        error.code = "missing_required_parameter"
    elif kind in _EXPECTED_TYPE:
        error.code = "invalid_type"
    elif kind in ("literal_error", "enum", "union_tag_invalid"):
        error.code = "invalid_value"
    elif kind in _BOUND_CODES:
        key, end = _BOUND_CODES[kind]
        # a float bound is a number field's: OpenAI calls its values decimals
        number = "decimal" if isinstance((err.get("ctx") or {}).get(key), float) else "integer"
        error.code = f"{number}_{end}"
        error.message = re.sub(r"\b(integer|decimal) (above|below)", rf"{number} \2", error.message)
    elif kind in _LENGTH_CODES:
        error.code = _LENGTH_CODES[kind]
    else:
        error.code = "invalid_value"
    return error


def validation_error(
    errors: Sequence[Any], body: Any = None, *, responses_family: bool = False
) -> InvalidRequestError:
    """Translate the first pydantic error into OpenAI's wording (the Responses family's, with
    its codes, for `responses_family`)."""
    if not errors:
        return InvalidRequestError("Invalid request.")
    err = _most_telling(errors, body)
    error = _translated(err, body)
    return _coded(error, err.get("type", ""), err) if responses_family else error


def _translated(err: Any, body: Any) -> InvalidRequestError:
    kind = err.get("type", "")
    loc = tuple(err.get("loc", ()))
    param = param_path(loc, body, missing=kind == "missing")
    if kind == "json_invalid":
        return InvalidRequestError(_BAD_JSON)
    if kind == "extra_forbidden":
        name = str(loc[-1]) if loc else "?"
        return InvalidRequestError(f"Unrecognized request argument supplied: {name}", param=param)
    if kind == "missing":
        if param is None:
            return InvalidRequestError("Missing request body.")
        return InvalidRequestError(f"Missing required parameter: '{param}'.", param=param)
    if kind in ("literal_error", "enum"):
        expected = _choices(str((err.get("ctx") or {}).get("expected", "")))
        return _bad_value(param, err.get("input"), expected)
    if kind == "union_tag_invalid":
        ctx = err.get("ctx") or {}
        discriminator = str(ctx.get("discriminator", "type")).strip("'")
        if _FIELD_NAME.match(discriminator):  # not a function that tells the kind
            param = f"{param}.{discriminator}" if param else discriminator
        return _bad_value(param, ctx.get("tag"), _choices(str(ctx.get("expected_tags", ""))))
    wording = _openai_wording(kind, err)
    if wording is not None and kind in _EXPECTED_TYPE:
        if param is None:
            return InvalidRequestError(f"Invalid request body: {wording}")
        return InvalidRequestError(f"Invalid type for '{param}': {wording}", param=param)
    message = wording or str(err.get("msg", "invalid value"))
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    if param is None:
        return InvalidRequestError(message)
    return InvalidRequestError(f"Invalid '{param}': {message}", param=param)


def render(exc: APIError, headers: dict[str, str] | None = None) -> JSONResponse:
    """The response for `exc` (also used by middleware that answers before any route)."""
    headers = {**exc.headers(), **(headers or {})}
    if exc.status_code >= 500:
        # The server may drop the connection after an unexpected error: say so, or the
        # client's next request on this keep-alive connection fails.
        headers["Connection"] = "close"
    return JSONResponse(exc.body(), status_code=exc.status_code, headers=headers or None)


def _invalid_url(request: Request) -> str:
    """OpenAI's words for an unknown route; when the path is an API route without its `/v1`
    (a client's base URL without it), they say which URL was meant."""
    message = f"Invalid URL ({request.method} {request.url.path})"
    path = request.url.path
    if path.startswith(("/v1/", "/openai/")):
        return message
    meant = "/v1" + path
    scope = {"type": "http", "path": meant, "method": request.method}
    if any(route.matches(scope)[0] != Match.NONE for route in request.app.router.routes):
        base = str(request.base_url).rstrip("/")
        return (
            f"{message}: the API is under /v1 ({request.method} {meant}); set the client's "
            f"base_url to {base}/v1"
        )
    return message


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at this path (Starlette's 405 names only the first
    route's, and each method here is a route of its own)."""
    scope = {"type": "http", "path": request.url.path, "method": ""}
    # A path both `/responses/compact` and `/responses/{response_id}` match is the former.
    matching = [
        route
        for route in request.app.router.routes
        if route.matches(scope)[0] != Match.NONE and getattr(route, "methods", None)
    ]
    fewest = min((len(route.param_convertors) for route in matching), default=0)
    methods = {
        method
        for route in matching
        if len(route.param_convertors) == fewest
        for method in route.methods
    }
    return ", ".join(sorted(methods))


def install_error_handlers(app: FastAPI) -> None:
    """The one place that turns exceptions into responses."""

    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError) -> JSONResponse:
        return render(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        family = RESPONSES_FAMILY.search(request.url.path) is not None
        return render(validation_error(exc.errors(), exc.body, responses_family=family))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        error: APIError
        if exc.status_code == 404:
            error = NotFoundError(_invalid_url(request))
        elif exc.status_code == 405:
            error = MethodNotAllowedError(
                f"Method {request.method} is not allowed for {request.url.path}."
            )
            return render(error, headers={"Allow": _allowed_methods(request)})
        elif exc.status_code == 413:
            error = PayloadTooLargeError(str(exc.detail))
        elif exc.status_code < 500:
            error = InvalidRequestError(str(exc.detail))
            error.status_code = exc.status_code
        else:
            error = ServerError(str(exc.detail))
        return render(error, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        if database_unavailable(exc):
            log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
            return render(database_down())
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return render(ServerError("The server had an error while processing your request."))


def database_down() -> ServiceUnavailableError:
    """The error for a request the database could not serve (its cause is logged, not sent)."""
    return ServiceUnavailableError(
        "The server is not ready: its database is unavailable. Please retry after a brief wait.",
        retry_after=DATABASE_RETRY_AFTER_SECONDS,
    )
