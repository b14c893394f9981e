"""Wall-clock helpers: the wire speaks integer Unix seconds."""

from __future__ import annotations

import time


def now() -> int:
    """Current Unix time in whole seconds."""
    return int(time.time())
