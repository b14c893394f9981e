"""Liveness and readiness."""

from __future__ import annotations

import logging
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from assistantd.blobs.factory import check_blob_store
from assistantd.blobs.store import BlobStore
from assistantd.db.migrate import current_revision, head_revision
from assistantd.errors import database_down
from assistantd.sandbox.readiness import ReadinessProbe
from assistantd.tools.web_search import readiness as web_search_readiness

log = logging.getLogger(__name__)
router = APIRouter()
DATABASE_DOWN = "the database does not answer (the server's log says why)"


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """The database answers and its schema is at the latest migration; the details say whether
    the code interpreter can run code, the blob store takes files and web search is on (none
    decides readiness: runs work without them, and an object store's outage should not take
    every replica out of its load balancer)."""
    state = request.app.state
    try:
        async with state.read_sessions() as session:
            await session.execute(text("SELECT 1"))
        current = await _revision(request)
    except Exception as exc:  # any failure means not ready
        # This route needs no key: the driver's words (hosts, SQL) go to the log only.
        log.warning("not ready: the database does not answer: %s", exc)
        return JSONResponse(
            {"status": "unavailable", "reason": DATABASE_DOWN},
            status_code=503,
            headers=database_down().headers(),
        )
    head = head_revision(state.settings)
    if current != head:
        return JSONResponse(
            {"status": "unavailable", "reason": f"schema at {current}, expected {head}"},
            status_code=503,
        )
    return JSONResponse(
        {
            "status": "ok",
            "revision": current,
            "code_interpreter": await _code_interpreter(request),
            "blob_store": await _blob_store(request),
            "web_search": web_search_readiness(state.settings),
        }
    )


async def _blob_store(request: Request) -> dict[str, str]:
    blobs: BlobStore = request.app.state.blobs
    problem = await check_blob_store(blobs)
    if problem is None:
        return {"status": "ok", "location": str(blobs)}
    return {"status": "unavailable", "location": str(blobs), "detail": problem}


async def _code_interpreter(request: Request) -> dict[str, Any]:
    state = request.app.state
    probe: ReadinessProbe | None = state.sandbox_readiness
    if probe is None:
        return {
            "status": "not_checked",
            "detail": "this process executes no runs: the `assistantd worker` processes run "
            "the code, and log at start whether they can",
        }
    return (await probe.check()).as_dict(state.settings)


async def _revision(request: Request) -> str | None:
    return await anyio.to_thread.run_sync(current_revision, request.app.state.settings)
