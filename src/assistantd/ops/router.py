"""`GET /metrics`: Prometheus exposition of this API process."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from assistantd.ops import metrics

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def get_metrics(request: Request) -> Response:
    """Prometheus metrics (no auth, like the health probes)."""
    body = await metrics.render(request.app.state.read_sessions)
    return Response(body, media_type=metrics.CONTENT_TYPE)
