"""Whether the DB and Temporal answer, and what /metrics shows.

The logic behind api/routers/health.py; the metrics themselves are vmflow.metrics.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlmodel import Session, select
from temporalio.client import Client

from vmflow import metrics
from vmflow.settings import get_settings


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


async def metrics_text(session: Session, client: Client | None) -> bytes:
    """This API process's Prometheus metrics (vmflow.metrics)."""
    return await metrics.render(session, client, get_settings())
