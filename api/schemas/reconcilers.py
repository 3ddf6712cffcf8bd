"""The ledger reconciler's view (admin): its schedule and recent runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class ReconcilerRun(BaseModel):
    workflow_id: str
    run_id: str | None
    scheduled_at: datetime | None
    started_at: datetime | None
    status: str  # running, completed, failed, terminated, canceled, timed_out
    result: dict[str, Any] | None = None  # a completed run's counts and details
    error: str | None = None  # a failed run's


class ReconcilerView(BaseModel):
    schedule_id: str
    workflow: str
    paused: bool
    next_run_at: datetime | None
    runs: list[ReconcilerRun]  # the recent ones Temporal keeps, oldest first


class ReconcilerTriggered(BaseModel):
    schedule_id: str
    triggered_at: datetime
