"""Streaming `multipart/form-data`: parse a request body as it arrives, never holding a file.

`MultipartReader` is the incremental parser (bytes in, part events out; no I/O), built on
python-multipart's callback parser. `read_form` drives it over a body stream: file fields go
chunk by chunk into a sink the caller opens, the other fields are small strings it returns.

When reading fails (a bad form, a sink refusing more bytes), `read_form` reads and discards the
rest of the body (up to `DRAIN_LIMIT`) before re-raising: a server that answers while the client
is still sending and then closes the socket makes the client see a reset instead of the error.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from assistantd.errors import InvalidRequestError
from assistantd.kit import text as text_rule

MAX_FIELD_BYTES = 64 * 1024
MAX_FIELDS = 32
DRAIN_LIMIT = 64 * 1024 * 1024


@dataclass(frozen=True)
class PartInfo:
    """The headers of one part: its field name, file name and content type, if any."""

    name: str
    filename: str | None
    content_type: str | None


@dataclass(frozen=True)
class PartStart:
    info: PartInfo


@dataclass(frozen=True)
class PartData:
    data: bytes


@dataclass(frozen=True)
class PartEnd:
    pass


Event = PartStart | PartData | PartEnd


def _bad_form(detail: str) -> InvalidRequestError:
    return InvalidRequestError(f"Could not parse the multipart form: {detail}")


def boundary_of(content_type: str | None) -> bytes:
    """The boundary of a `multipart/form-data` Content-Type header, or a 400."""
    media_type, options = parse_options_header(content_type or "")
    if media_type != b"multipart/form-data":
        shown = content_type or "none"
        raise InvalidRequestError(
            f"Invalid Content-Type header ({shown}), expected multipart/form-data."
        )
    boundary = options.get(b"boundary")
    if not boundary:
        raise _bad_form("the Content-Type header has no boundary.")
    return boundary


def _text(raw: bytes) -> str:
    # Header bytes arrive raw; clients send UTF-8 names (RFC 7578 §5.1), old ones latin-1.
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


class MultipartReader:
    """Incremental parser: `feed` body chunks, get back the events they complete."""

    def __init__(self, content_type: str | None) -> None:
        self._events: list[Event] = []
        self._field = bytearray()
        self._value = bytearray()
        self._headers: dict[str, bytes] = {}
        self._ended = False
        try:
            self._parser = MultipartParser(
                boundary_of(content_type),
                callbacks={
                    "on_part_begin": self._part_begin,
                    "on_header_field": self._header_field,
                    "on_header_value": self._header_value,
                    "on_header_end": self._header_end,
                    "on_headers_finished": self._headers_finished,
                    "on_part_data": self._part_data,
                    "on_part_end": self._part_end,
                    "on_end": self._end,
                },
            )
        except FormParserError as exc:
            raise _bad_form(str(exc)) from exc

    # --- python-multipart callbacks (synchronous; they only queue events) -------------------

    def _part_begin(self) -> None:
        self._headers = {}

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[bytes(self._field).decode("latin-1").strip().lower()] = bytes(self._value)
        self._field.clear()
        self._value.clear()

    def _headers_finished(self) -> None:
        disposition = self._headers.get("content-disposition")
        if disposition is None:
            raise _bad_form("a part has no Content-Disposition header.")
        kind, options = parse_options_header(disposition.decode("latin-1"))
        name = options.get(b"name")
        if kind != b"form-data" or name is None:
            raise _bad_form("a part's Content-Disposition is not form-data with a name.")
        filename = options.get(b"filename")
        content_type = _text(self._headers.get("content-type", b"")).strip()
        self._events.append(
            PartStart(
                PartInfo(
                    name=_text(name),
                    filename=_text(filename) if filename is not None else None,
                    content_type=content_type or None,
                )
            )
        )

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if end > start:
            self._events.append(PartData(data[start:end]))

    def _part_end(self) -> None:
        self._events.append(PartEnd())

    def _end(self) -> None:
        self._ended = True

    # --- the interface ------------------------------------------------------------------------

    def feed(self, chunk: bytes) -> list[Event]:
        try:
            self._parser.write(chunk)
        except FormParserError as exc:
            raise _bad_form(str(exc)) from exc
        events, self._events = self._events, []
        return events

    def close(self) -> None:
        """The body ended: a 400 unless the closing boundary was seen."""
        if not self._ended:
            raise _bad_form("the body ended before the closing boundary.")


class FileSink(Protocol):
    """Where a file field's bytes go (a blob writer, say)."""

    async def write(self, data: bytes) -> None: ...


OpenFile = Callable[[PartInfo, Mapping[str, str]], Awaitable[FileSink]]
"""Called when a file field starts, with the text fields read so far; may raise to refuse."""


def declared_length(headers: Mapping[str, str]) -> int | None:
    """The request's Content-Length, if it sent a usable one."""
    value = headers.get("content-length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


async def drain(chunks: AsyncIterator[bytes], limit: int = DRAIN_LIMIT) -> None:
    """Read and drop what is left of a body, up to `limit` bytes; never raises."""
    seen = 0
    try:
        async for chunk in chunks:
            seen += len(chunk)
            if seen > limit:
                return
    except Exception:  # the client went away: nothing left to be polite to
        return


async def read_form(
    body: AsyncIterable[bytes],
    content_type: str | None,
    *,
    file_fields: Collection[str],
    open_file: OpenFile,
    max_field_bytes: int = MAX_FIELD_BYTES,
    max_fields: int = MAX_FIELDS,
) -> dict[str, str]:
    """Stream a form: parts named in `file_fields` into sinks from `open_file`; return the rest.

    A field may appear once. Text fields are UTF-8 and at most `max_field_bytes` long.
    """
    chunks = aiter(body)
    fields: dict[str, str] = {}
    seen: set[str] = set()
    sink: FileSink | None = None
    text: bytearray | None = None
    name = ""
    try:
        reader = MultipartReader(content_type)
        async for chunk in chunks:
            for event in reader.feed(chunk):
                if isinstance(event, PartStart):
                    name = event.info.name
                    if name in seen:
                        raise InvalidRequestError(
                            f"Duplicate parameter '{name}' in the form.", param=name
                        )
                    seen.add(name)
                    if len(seen) > max_fields:
                        raise _bad_form(f"more than {max_fields} fields.")
                    if name in file_fields:
                        _check_text(name, event.info.filename, "file name")
                        sink = await open_file(event.info, fields)
                    else:
                        text = bytearray()
                elif isinstance(event, PartData):
                    if sink is not None:
                        await sink.write(event.data)
                    elif text is not None:
                        text += event.data
                        if len(text) > max_field_bytes:
                            raise InvalidRequestError(
                                f"Invalid '{name}': longer than {max_field_bytes} bytes.",
                                param=name,
                            )
                else:
                    if text is not None:
                        try:
                            fields[name] = text.decode("utf-8")
                        except UnicodeDecodeError as exc:
                            raise InvalidRequestError(
                                f"Invalid '{name}': not valid UTF-8.", param=name
                            ) from exc
                        _check_text(name, fields[name], "string")
                    sink, text = None, None
        reader.close()
    except Exception:
        await drain(chunks)
        raise
    return fields


def _check_text(name: str, value: str | None, what: str) -> None:
    """The text rule of `kit.text` (no NUL, no lone surrogate) on a field or a file name: the
    request guard reads no multipart body, so it is applied here."""
    found = text_rule.problem(value) if value is not None else None
    if found is not None:
        raise InvalidRequestError(
            f"Invalid '{name}': the {what} {found}.", param=name, code="invalid_value"
        )


_NESTED = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]+\])+)$")
_SEGMENT = re.compile(r"\[([^\[\]]+)\]")


def unflatten(fields: Mapping[str, str]) -> dict[str, Any]:
    """`{"expires_after[seconds]": "3600"}` -> `{"expires_after": {"seconds": "3600"}}`.

    The bracket encoding the `openai` SDK uses for nested values in a multipart form; keys that
    are not of that shape are kept as they are.
    """
    out: dict[str, Any] = {}
    for key, value in fields.items():
        match = _NESTED.match(key)
        if match is None:
            if isinstance(out.get(key), dict):
                raise InvalidRequestError(f"Conflicting form fields for '{key}'.", param=key)
            out[key] = value
            continue
        path = [match[1], *_SEGMENT.findall(match[2])]
        node = out
        for seg in path[:-1]:
            child = node.setdefault(seg, {})
            if not isinstance(child, dict):
                raise InvalidRequestError(f"Conflicting form fields for '{seg}'.", param=seg)
            node = child
        if isinstance(node.get(path[-1]), dict):
            raise InvalidRequestError(f"Conflicting form fields for '{key}'.", param=key)
        node[path[-1]] = value
    return out
