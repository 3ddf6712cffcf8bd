"""Unauthenticated probes: /healthz for the stack launcher, /metrics for Prometheus."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from sqlalchemy import func
from sqlmodel import col, select

from api.deps import MaybeTemporalDep, SessionDep
from api.schemas.health import Health
from vmflow.models import Host, Instance, Operation

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
async def healthz(session: SessionDep, client: MaybeTemporalDep) -> JSONResponse:
    """200 while the DB answers (the API can serve reads); `temporal` says whether
    operations can be started. 503 when the DB does not answer."""
    try:
        session.exec(select(1)).one()
        db_ok = True
    except Exception:
        db_ok = False
    temporal_ok = False
    if client is not None:
        try:
            temporal_ok = await asyncio.wait_for(
                client.service_client.check_health(timeout=timedelta(seconds=3)), 4)
        except Exception:
            temporal_ok = False
    health = Health(status="ok" if db_ok else "error", db=db_ok, temporal=temporal_ok)
    return JSONResponse(health.model_dump(), status_code=200 if db_ok else 503)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@router.get("/metrics", response_class=Response)
def metrics(session: SessionDep) -> Response:
    """Prometheus text exposition format 0.0.4, written by hand (no extra dependency)."""
    lines: list[str] = []

    def gauge(name: str, help_: str, samples: list[tuple[dict[str, str], int]]) -> None:
        lines.extend([f"# HELP {name} {help_}", f"# TYPE {name} gauge"])
        for labels, value in samples:
            label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
            lines.append(f"{name}{{{label_text}}} {value}" if label_text else f"{name} {value}")

    by_state = session.exec(
        select(Instance.vm_state, func.count()).group_by(col(Instance.vm_state))).all()
    gauge("vmflow_instances", "Instances by vm_state.",
          [({"vm_state": s}, n) for s, n in sorted(by_state)])
    by_status = session.exec(
        select(Operation.status, func.count()).group_by(col(Operation.status))).all()
    gauge("vmflow_operations", "Operations by status.",
          [({"status": s}, n) for s, n in sorted(by_status)])
    running = dict(by_status).get("running", 0)
    gauge("vmflow_operations_running", "Operations whose workflow is running.", [({}, running)])
    hosts = session.exec(select(func.count()).select_from(Host)).one()
    gauge("vmflow_hosts", "Registered hypervisor hosts.", [({}, hosts)])
    return Response("\n".join(lines) + "\n",
                    media_type="text/plain; version=0.0.4; charset=utf-8")
