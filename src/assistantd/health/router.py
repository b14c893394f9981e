"""Liveness and readiness."""

from __future__ import annotations

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from assistantd.db.migrate import current_revision, head_revision

router = APIRouter()


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """The database answers and its schema is at the latest migration."""
    state = request.app.state
    try:
        async with state.read_sessions() as session:
            await session.execute(text("SELECT 1"))
        current = await _revision(request)
    except Exception as exc:  # any failure means not ready; say why
        return JSONResponse({"status": "unavailable", "reason": str(exc)}, status_code=503)
    head = head_revision(state.settings)
    if current != head:
        return JSONResponse(
            {"status": "unavailable", "reason": f"schema at {current}, expected {head}"},
            status_code=503,
        )
    return JSONResponse({"status": "ok", "revision": current})


async def _revision(request: Request) -> str | None:
    return await anyio.to_thread.run_sync(current_revision, request.app.state.settings)
