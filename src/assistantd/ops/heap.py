"""Garbage-collector settings for a long-running server process.

A full collection walks every tracked object, and after startup (SQLAlchemy, FastAPI, pydantic,
numpy, onnxruntime) that is over a million of them: a pause of tens of milliseconds that lands
on whichever request happens to allocate at the time, i.e. the p99. Objects alive once startup
is done live for the whole process, so they are moved out of the collector's sight.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    """Call once the process is ready to serve: later collections skip everything made so far."""
    gc.collect()
    gc.freeze()
