"""Unauthenticated probes: /healthz for the stack launcher, /metrics for Prometheus.
The logic is in api/services/health.py."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from api.deps import MaybeTemporalDep, SessionDep
from api.schemas.health import Health
from api.services import health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
async def healthz(session: SessionDep, client: MaybeTemporalDep) -> JSONResponse:
    """200 while the DB answers (the API can serve reads); `temporal` says whether
    operations can be started. 503 when the DB does not answer."""
    db_ok = health.database_answers(session)
    temporal_ok = await health.temporal_answers(client)
    status = Health(status="ok" if db_ok else "error", db=db_ok, temporal=temporal_ok)
    return JSONResponse(status.model_dump(), status_code=200 if db_ok else 503)


@router.get("/metrics", response_class=Response)
def metrics(session: SessionDep) -> Response:
    """Prometheus text exposition format 0.0.4, written by hand (no extra dependency)."""
    return Response(health.metrics_text(session),
                    media_type="text/plain; version=0.0.4; charset=utf-8")
