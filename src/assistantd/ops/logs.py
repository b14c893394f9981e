"""Logging for every assistantd process: text or one JSON object per line, with the request id
and run id of whatever the line is about.

The ids live in context variables. The API's request middleware sets `request_id` (the client's
`X-Request-Id`, else a new one; the response echoes it) and `run_id` when the path names a run;
the worker sets `run_id` in the task that executes a run, so every line logged while executing it,
the model backend's and the tools' included, carries the run id.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

from assistantd.settings import Settings

__all__ = ["bind", "configure_logging", "request_id", "run_id"]

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
run_id: ContextVar[str | None] = ContextVar("run_id", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(ids)s %(message)s"
# Chatty libraries: one line per HTTP call or docker request is too much at INFO.
_QUIET = ("httpx", "httpcore", "docker", "urllib3", "multipart", "python_multipart")


# Control characters (NUL, ESC, CR, LF...) a client may have put in a path or an id: escaped,
# so a log line is one line and no terminal obeys what a request wrote.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def _escaped(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape", "backslashreplace").decode("ascii")


class ContextIds(logging.Filter):
    """Puts the current request and run ids on every record, and escapes control characters
    in its message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if _CONTROL.search(message):
            record.msg, record.args = _CONTROL.sub(_escaped, message), None
        request, run = request_id.get(), run_id.get()
        parts = []
        if request:
            parts.append(f"request={request}")
        if run:
            parts.append(f"run={run}")
        record.__dict__.update(
            request_id=request, run_id=run, ids=f" [{' '.join(parts)}]" if parts else ""
        )
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, request_id, run_id, exc_info."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("request_id", "run_id"):
            value = getattr(record, key, None)
            if value:
                entry[key] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(settings: Settings) -> None:
    """Route every logger (uvicorn's too) through one stderr handler in the configured format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ContextIds())
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)


@contextmanager
def bind(*, run: str | None = None, request: str | None = None) -> Iterator[None]:
    """Set the ids for the lines logged inside the block."""
    tokens = []
    if run is not None:
        tokens.append((run_id, run_id.set(run)))
    if request is not None:
        tokens.append((request_id, request_id.set(request)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)
