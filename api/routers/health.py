"""Unauthenticated probes: /healthz for the stack launcher, /metrics for Prometheus.
The logic is in api/services/health.py."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from api.deps import MaybeTemporalDep, SessionDep
from api.schemas.health import Health
from api.services import health
from vmflow.metrics import CONTENT_TYPE

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
async def metrics(session: SessionDep, client: MaybeTemporalDep) -> Response:
    """Prometheus text exposition format 0.0.4: counts only, no project data."""
    return Response(await health.metrics_text(session, client), media_type=CONTENT_TYPE)
