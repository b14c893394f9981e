"""Prometheus metrics of an assistantd process, served at `GET /metrics` by `serve` and, when
`ASSISTANTD_WORKER_HTTP_PORT` is set, by `assistantd worker`.

| metric | type | labels | what |
|---|---|---|---|
| `assistantd_http_requests_total` | counter | method, route, status | API requests answered |
| `assistantd_http_request_duration_seconds` | histogram | method, route | until the last byte |
| `assistantd_run_duration_seconds` | histogram | status | creation to terminal status |
| `assistantd_runs_queued` | gauge | | runs waiting for a worker (whole database) |
| `assistantd_runs_executing` | gauge | | runs this process executes now |
| `assistantd_sandbox_sessions` | gauge | | code interpreter sessions this process holds |
| `assistantd_ingestion_backlog` | gauge | | vector store files being ingested (database) |

`route` is the route's template (`/v1/threads/{thread_id}/runs`), never the raw path. Run
durations are observed by the process that writes the terminal status (a worker, or the API for a
cancel of a queued run), so sum the histogram over all processes. The queue depth and ingestion
backlog are counted in the database when scraped, so any one process reports the cluster's.
Hooks for other parts: `SANDBOX_SESSIONS` (set or `set_function` by the sandbox manager),
`RUNS_EXECUTING` (the worker), `observe_run_end` (the run state machine).
"""

from __future__ import annotations

import logging
import time

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assistantd.kit.ids import created_at_ms_of

__all__ = [
    "CONTENT_TYPE",
    "INGESTION_BACKLOG",
    "RUNS_EXECUTING",
    "RUNS_QUEUED",
    "SANDBOX_SESSIONS",
    "observe_request",
    "observe_run_end",
    "render",
]

log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST

HTTP_REQUESTS = Counter(
    "assistantd_http_requests", "API requests answered.", ["method", "route", "status"]
)
HTTP_DURATION = Histogram(
    "assistantd_http_request_duration_seconds",
    "API request duration, until the response's last byte (streams included).",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
RUN_DURATION = Histogram(
    "assistantd_run_duration_seconds",
    "Runs from creation to their terminal status, by that status.",
    ["status"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)
RUNS_QUEUED = Gauge("assistantd_runs_queued", "Runs waiting for a worker (whole database).")
RUNS_EXECUTING = Gauge("assistantd_runs_executing", "Runs this process is executing.")
SANDBOX_SESSIONS = Gauge(
    "assistantd_sandbox_sessions", "Code interpreter sandbox sessions this process holds."
)
INGESTION_BACKLOG = Gauge(
    "assistantd_ingestion_backlog",
    "Vector store files waiting for or in ingestion (whole database).",
)


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_DURATION.labels(method, route).observe(seconds)


def observe_run_end(run_id: str, status: str) -> None:
    """A run reached terminal `status` (called by the run state machine)."""
    seconds = max(time.time() - created_at_ms_of(run_id) / 1000, 0.0)
    RUN_DURATION.labels(status).observe(seconds)


async def refresh(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Count the database-wide gauges; a failure leaves their last values."""
    from assistantd.db.models import Run, VectorStoreFile

    try:
        async with sessions() as session:
            queued = await session.scalar(
                select(func.count()).select_from(Run).where(Run.status == "queued")
            )
            backlog = await session.scalar(
                select(func.count())
                .select_from(VectorStoreFile)
                .where(VectorStoreFile.status == "in_progress")
            )
    except Exception:
        log.warning("metrics: counting queued runs and ingestion backlog failed", exc_info=True)
        return
    RUNS_QUEUED.set(queued or 0)
    INGESTION_BACKLOG.set(backlog or 0)


async def render(sessions: async_sessionmaker[AsyncSession]) -> bytes:
    """The exposition text of this process's metrics."""
    await refresh(sessions)
    return generate_latest()
