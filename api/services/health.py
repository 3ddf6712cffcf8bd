"""Whether the DB and Temporal answer, and the gauges /metrics shows.

The logic behind api/routers/health.py. The metrics are Prometheus text exposition
format 0.0.4, written by hand (no extra dependency).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func
from sqlmodel import Session, col, select
from temporalio.client import Client

from vmflow.models import Host, Instance, Operation


def database_answers(session: Session) -> bool:
    try:
        session.exec(select(1)).one()
    except Exception:
        return False
    return True


async def temporal_answers(client: Client | None) -> bool:
    """False without a client, or when its health check fails or takes over 4 s."""
    if client is None:
        return False
    try:
        return await asyncio.wait_for(
            client.service_client.check_health(timeout=timedelta(seconds=3)), 4)
    except Exception:
        return False


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def metrics_text(session: Session) -> str:
    """Instances by vm_state, operations by status, running operations and hosts."""
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
    return "\n".join(lines) + "\n"
