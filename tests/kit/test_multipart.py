"""The streaming multipart parser, fed bodies cut at every awkward place."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterable, Mapping

import httpx
import pytest

from assistantd.errors import InvalidRequestError
from assistantd.kit.multipart import (
    MultipartReader,
    PartData,
    PartEnd,
    PartInfo,
    PartStart,
    declared_length,
    read_form,
    unflatten,
)

BOUNDARY = "b0undary"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def body_of(*parts: tuple[str, bytes]) -> bytes:
    """A multipart body from (headers, payload) pairs."""
    out = b""
    for headers, payload in parts:
        out += f"--{BOUNDARY}\r\n{headers}\r\n\r\n".encode() + payload + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


# A payload that keeps almost matching the delimiter: every proper prefix of "\r\n--b0undary".
TRICKY = b"".join(b"\r\n--b0undary"[:n] + b"x" for n in range(1, 12)) + b"\r\n--b0undar"
FILE_HEADERS = (
    'Content-Disposition: form-data; name="file"; filename="na\xefve r\xe9sum\xe9.txt"\r\n'
    "Content-Type: text/plain"
)
BODY = body_of(
    ('Content-Disposition: form-data; name="purpose"', b"assistants"),
    (FILE_HEADERS, TRICKY),
    ('Content-Disposition: form-data; name="expires_after[seconds]"', b"3600"),
)


def parse(chunks: Iterable[bytes]) -> list[tuple[PartInfo, bytes]]:
    reader = MultipartReader(CONTENT_TYPE)
    parts: list[tuple[PartInfo, bytes]] = []
    current: tuple[PartInfo, bytearray] | None = None
    for chunk in chunks:
        for event in reader.feed(chunk):
            if isinstance(event, PartStart):
                assert current is None
                current = (event.info, bytearray())
            elif isinstance(event, PartData):
                assert current is not None
                current[1].extend(event.data)
            else:
                assert isinstance(event, PartEnd)
                assert current is not None
                parts.append((current[0], bytes(current[1])))
                current = None
    reader.close()
    return parts


EXPECTED = [
    (PartInfo("purpose", None, None), b"assistants"),
    (PartInfo("file", "na\xefve r\xe9sum\xe9.txt", "text/plain"), TRICKY),
    (PartInfo("expires_after[seconds]", None, None), b"3600"),
]


def test_whole_body() -> None:
    assert parse([BODY]) == EXPECTED


def test_every_split_point() -> None:
    for cut in range(len(BODY) + 1):
        assert parse([BODY[:cut], BODY[cut:]]) == EXPECTED, cut


def test_every_pair_of_split_points_around_the_file() -> None:
    start = BODY.index(b'--b0undary\r\nContent-Disposition: form-data; name="file"')
    end = BODY.index(b"expires_after")
    for first in range(start, end):
        for second in range(first, end, 3):
            assert parse([BODY[:first], BODY[first:second], BODY[second:]]) == EXPECTED


def test_one_byte_at_a_time() -> None:
    assert parse(BODY[i : i + 1] for i in range(len(BODY))) == EXPECTED


def test_random_chunkings() -> None:
    rng = random.Random(7)
    for _ in range(200):
        cuts = sorted(rng.sample(range(1, len(BODY)), rng.randint(1, 12)))
        chunks = [BODY[a:b] for a, b in zip([0, *cuts], [*cuts, len(BODY)], strict=True)]
        assert parse(chunks) == EXPECTED


def test_body_written_by_httpx() -> None:
    """The encoder the openai SDK uses: a quoted, UTF-8 file name and a guessed type."""
    request = httpx.Request(
        "POST",
        "http://x/files",
        data={"purpose": "vision"},
        files={"file": ('quote"d \u65e5\u672c.png', b"\x89PNG\r\n--x")},
    )
    body = request.read()
    reader = MultipartReader(request.headers["content-type"])
    events = reader.feed(body)
    reader.close()
    starts = [event.info for event in events if isinstance(event, PartStart)]
    assert starts[0] == PartInfo("purpose", None, None)
    # httpx escapes a quote as %22 (HTML5 form encoding); we keep the name as sent.
    assert starts[1] == PartInfo("file", "quote%22d \u65e5\u672c.png", "image/png")
    data = b"".join(event.data for event in events if isinstance(event, PartData))
    assert data == b"vision\x89PNG\r\n--x"


def test_empty_file_part() -> None:
    body = body_of(('Content-Disposition: form-data; name="file"; filename="e"', b""))
    assert parse([body]) == [(PartInfo("file", "e", None), b"")]


def test_truncated_body_is_refused() -> None:
    reader = MultipartReader(CONTENT_TYPE)
    reader.feed(BODY[:-10])
    with pytest.raises(InvalidRequestError, match="closing boundary"):
        reader.close()


@pytest.mark.parametrize(
    "content_type",
    [None, "application/json", "multipart/form-data", "text/plain; boundary=x"],
)
def test_bad_content_type(content_type: str | None) -> None:
    with pytest.raises(InvalidRequestError):
        MultipartReader(content_type)


@pytest.mark.parametrize(
    "headers",
    [
        "Content-Type: text/plain",
        'Content-Disposition: attachment; name="file"',
        'Content-Disposition: form-data; filename="x"',
    ],
)
def test_part_without_a_form_data_name(headers: str) -> None:
    reader = MultipartReader(CONTENT_TYPE)
    with pytest.raises(InvalidRequestError):
        reader.feed(body_of((headers, b"x")))


def test_garbage_is_refused() -> None:
    reader = MultipartReader(CONTENT_TYPE)
    with pytest.raises(InvalidRequestError):
        reader.feed(b"--wrong\r\n\r\n")


# --- read_form ------------------------------------------------------------------------------


class Sink:
    def __init__(self) -> None:
        self.data = bytearray()
        self.writes = 0

    async def write(self, data: bytes) -> None:
        self.data += data
        self.writes += 1


class Body:
    """An async body that records how much of it was consumed."""

    def __init__(self, data: bytes, chunk: int) -> None:
        self.chunks = [data[i : i + chunk] for i in range(0, len(data), chunk)]
        self.consumed = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            self.consumed += 1
            yield chunk


async def test_read_form_streams_files_and_returns_fields() -> None:
    sinks: dict[str, Sink] = {}
    fields_at_open: list[dict[str, str]] = []

    async def open_file(info: PartInfo, fields: Mapping[str, str]) -> Sink:
        fields_at_open.append(dict(fields))
        sinks[info.name] = Sink()
        return sinks[info.name]

    body = Body(BODY, 5)
    fields = await read_form(body, CONTENT_TYPE, file_fields={"file"}, open_file=open_file)
    assert fields == {"purpose": "assistants", "expires_after[seconds]": "3600"}
    assert bytes(sinks["file"].data) == TRICKY
    assert sinks["file"].writes > 1  # streamed, not gathered
    assert fields_at_open == [{"purpose": "assistants"}]


async def test_read_form_drains_the_body_after_an_error() -> None:
    async def refuse(info: PartInfo, fields: Mapping[str, str]) -> Sink:
        raise InvalidRequestError("no")

    body = Body(BODY, 4)
    with pytest.raises(InvalidRequestError, match="no"):
        await read_form(body, CONTENT_TYPE, file_fields={"file"}, open_file=refuse)
    assert body.consumed == len(body.chunks)


async def test_read_form_refuses_duplicates_long_fields_and_bad_utf8() -> None:
    async def open_file(info: PartInfo, fields: Mapping[str, str]) -> Sink:
        return Sink()

    cases = {
        "Duplicate": body_of(
            ('Content-Disposition: form-data; name="purpose"', b"a"),
            ('Content-Disposition: form-data; name="purpose"', b"b"),
        ),
        "longer than": body_of(('Content-Disposition: form-data; name="purpose"', b"x" * 70000)),
        "UTF-8": body_of(('Content-Disposition: form-data; name="purpose"', b"\xff")),
    }
    for message, body in cases.items():
        with pytest.raises(InvalidRequestError, match=message):
            await read_form(
                Body(body, 1000), CONTENT_TYPE, file_fields={"file"}, open_file=open_file
            )


def test_unflatten() -> None:
    assert unflatten(
        {
            "purpose": "batch",
            "expires_after[anchor]": "created_at",
            "expires_after[seconds]": "3600",
            "a[b][c]": "1",
            "odd]": "2",
            "[x]": "3",
        }
    ) == {
        "purpose": "batch",
        "expires_after": {"anchor": "created_at", "seconds": "3600"},
        "a": {"b": {"c": "1"}},
        "odd]": "2",
        "[x]": "3",
    }
    with pytest.raises(InvalidRequestError, match="Conflicting"):
        unflatten({"a": "1", "a[b]": "2"})
    with pytest.raises(InvalidRequestError, match="Conflicting"):
        unflatten({"a[b]": "2", "a": "1"})


def test_declared_length() -> None:
    assert declared_length({"content-length": "12"}) == 12
    assert declared_length({"content-length": "x"}) is None
    assert declared_length({}) is None
