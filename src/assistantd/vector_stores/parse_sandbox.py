"""Every document parser runs in a child process with a memory and a time budget.

A 230 KB .docx can hold a `word/document.xml` that inflates to 150 MB, and parsing that in the
server took it to 3.5 GB. So the parsers of `parsing` (text, html, json, pdf, docx, pptx) run in
`python -m assistantd.vector_stores.parse_sandbox`, which:

- reads the file on its stdin (the spooled upload's own descriptor, no copy),
- refuses an archive (docx, pptx) whose members unpack to more than `ingest_max_unpacked_mb`
  before parsing it,
- runs at a lower priority (nice 10) than the server's requests,
- lives under `RLIMIT_AS` = `ingest_parser_memory_mb` (an allocation past it is a MemoryError
  or the child's death, never the server's) and is killed after `ingest_parser_timeout_seconds`,
- writes the text back in frames: `S` + length + UTF-8 text per segment, `E` + length + JSON
  `{code, message}` for a ParseError. Long segments are cut into `MAX_SEGMENT` pieces, so the
  server never holds more than one piece of a huge page.

A file that breaks a bound fails as `invalid_file` with a `last_error` saying which.
"""

from __future__ import annotations

import json
import os
import resource
import struct
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePath
from typing import IO

from assistantd.vector_stores.parsing import ParseError, parser_for, segments

MAX_SEGMENT = 256 * 1024  # characters of text per frame
_HEADER = struct.Struct(">cI")
_ARCHIVES = frozenset({".docx", ".pptx"})
_ARCHIVE_TYPES = frozenset(
    {
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    }
)


@dataclass(frozen=True)
class ParserLimits:
    memory_mb: int = 512
    timeout_seconds: float = 120.0
    max_unpacked_mb: int = 256


def sandboxed_segments(
    fh: IO[bytes], filename: str, content_type: str | None, limits: ParserLimits
) -> Iterator[str]:
    """The file's text, segment by segment, parsed in a bounded child process (ParseError on
    failure, a broken bound included). `fh` must have a file descriptor."""
    parser_for(filename, content_type)  # unsupported types fail here, without a child
    fh.flush()
    args = [
        sys.executable,
        "-m",
        __name__,
        filename,
        content_type or "",
        str(limits.memory_mb),
        str(limits.max_unpacked_mb),
    ]
    proc = subprocess.Popen(
        args, stdin=fh.fileno(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    timed_out = threading.Event()

    def kill() -> None:
        timed_out.set()
        proc.kill()

    timer = threading.Timer(limits.timeout_seconds, kill)
    timer.daemon = True
    timer.start()
    assert proc.stdout is not None
    try:
        while True:
            header = proc.stdout.read(_HEADER.size)
            if len(header) < _HEADER.size:
                break
            kind, length = _HEADER.unpack(header)
            payload = proc.stdout.read(length)
            if kind == b"E":
                error = json.loads(payload)
                raise ParseError(error["code"], error["message"])
            yield payload.decode("utf-8")
        code = proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    if timed_out.is_set():
        raise ParseError(
            "invalid_file",
            f"Parsing the file took longer than {limits.timeout_seconds:g} seconds, the "
            "parser's limit (ASSISTANTD_INGEST_PARSER_TIMEOUT_SECONDS).",
        )
    if code != 0:
        raise ParseError("invalid_file", _memory_message(limits.memory_mb))


def _memory_message(memory_mb: int) -> str:
    return (
        f"Parsing the file needed more than {memory_mb} MB, the parser's limit "
        "(ASSISTANTD_INGEST_PARSER_MEMORY_MB)."
    )


# --- the child ---------------------------------------------------------------------------------


def _check_archive(fh: IO[bytes], filename: str, content_type: str, max_unpacked_mb: int) -> None:
    """Refuse a zip-based document whose members unpack to more than the limit."""
    suffix = PurePath(filename).suffix.lower()
    if suffix not in _ARCHIVES and not (not suffix and content_type in _ARCHIVE_TYPES):
        return
    try:
        with zipfile.ZipFile(fh) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ParseError("invalid_file", f"The document is not a valid archive: {exc}") from exc
    finally:
        fh.seek(0)
    if unpacked > max_unpacked_mb * 1024 * 1024:
        raise ParseError(
            "invalid_file",
            f"The document unpacks to {unpacked // (1024 * 1024)} MB, more than the limit of "
            f"{max_unpacked_mb} MB (ASSISTANTD_INGEST_MAX_UNPACKED_MB).",
        )


def _frame(out: IO[bytes], kind: bytes, payload: bytes) -> None:
    out.write(_HEADER.pack(kind, len(payload)))
    out.write(payload)


def _child(argv: list[str]) -> int:
    filename, content_type, memory_mb, max_unpacked_mb = argv
    limit = int(memory_mb) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.nice(10)  # background work: the server's requests come first on a busy machine
    out = sys.stdout.buffer
    memory_error = json.dumps(
        {"code": "invalid_file", "message": _memory_message(int(memory_mb))}
    ).encode()
    fh = os.fdopen(0, "rb", closefd=False)
    fh.seek(0)
    try:
        _check_archive(fh, filename, content_type, int(max_unpacked_mb))
        for segment in segments(fh, filename, content_type or None):
            for start in range(0, len(segment), MAX_SEGMENT):
                _frame(out, b"S", segment[start : start + MAX_SEGMENT].encode("utf-8", "replace"))
    except ParseError as exc:
        _frame(out, b"E", json.dumps({"code": exc.code, "message": exc.message}).encode())
    except MemoryError:
        _frame(out, b"E", memory_error)
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
