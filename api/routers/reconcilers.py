"""The ledger reconciler (admin): run it now, and read its recent runs.

    POST /v1/admin/reconcile-ledger -> 202 {schedule_id, triggered_at}
    GET  /v1/admin/reconcile-ledger -> {schedule_id, paused, next_run_at, runs: [...]}

Both go to the Temporal Schedule `reconcile-ledger` that the control worker makes
when it starts (workers/control.py); a trigger is a run now under the schedule's own
overlap policy, SKIP, so a trigger while a run is going starts nothing. Each run's
result (removed, forgotten, reported, deferred, failed, details) is the workflow's
result, as the Temporal Web UI shows it too.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel
from temporalio.client import (
    Client,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionResult,
    WorkflowExecutionStatus,
    WorkflowFailureError,
)
from temporalio.service import RPCError, RPCStatusCode

from api.deps import AdminDep, TemporalDep
from api.errors import ServiceUnavailable
from vmflow.models import now
from vmflow.names import LEDGER_RECONCILE_SCHEDULE
from vmflow.operations import RPC_TIMEOUT

router = APIRouter(prefix="/v1/admin", tags=["reconcilers"])



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


def _unavailable(e: RPCError | RuntimeError, doing: str) -> ServiceUnavailable:
    if isinstance(e, RPCError) and e.status == RPCStatusCode.NOT_FOUND:
        return ServiceUnavailable(
            f"the Temporal Schedule {LEDGER_RECONCILE_SCHEDULE} does not exist: the control "
            "worker makes it when it starts; is it running?", type="ScheduleMissing")
    return ServiceUnavailable(f"could not {doing}: {e}", type="TemporalUnavailable")


@router.post("/reconcile-ledger", status_code=202, response_model=ReconcilerTriggered)
async def trigger_ledger_reconcile(auth: AdminDep, client: TemporalDep) -> ReconcilerTriggered:
    """Run the ledger reconciler now (its result: GET, or the Temporal Web UI)."""
    at = now()
    try:
        await client.get_schedule_handle(LEDGER_RECONCILE_SCHEDULE).trigger(
            rpc_timeout=RPC_TIMEOUT)
    except (RPCError, RuntimeError) as e:
        raise _unavailable(e, "trigger the ledger reconciler") from e
    return ReconcilerTriggered(schedule_id=LEDGER_RECONCILE_SCHEDULE, triggered_at=at)


@router.get("/reconcile-ledger", response_model=ReconcilerView)
async def show_ledger_reconcile(auth: AdminDep, client: TemporalDep) -> ReconcilerView:
    try:
        desc = await client.get_schedule_handle(LEDGER_RECONCILE_SCHEDULE).describe(
            rpc_timeout=RPC_TIMEOUT)
    except (RPCError, RuntimeError) as e:
        raise _unavailable(e, "describe the ledger reconciler's schedule") from e
    actions: dict[tuple[str, str], ScheduleActionResult | None] = {
        (a.action.workflow_id, a.action.first_execution_run_id): a
        for a in desc.info.recent_actions
        if isinstance(a.action, ScheduleActionExecutionStartWorkflow)}
    for running in desc.info.running_actions:
        if isinstance(running, ScheduleActionExecutionStartWorkflow):
            actions.setdefault((running.workflow_id, running.first_execution_run_id), None)
    runs = await asyncio.gather(*(_run(client, wid, rid, a)
                                  for (wid, rid), a in actions.items()))
    action = desc.schedule.action
    return ReconcilerView(
        schedule_id=LEDGER_RECONCILE_SCHEDULE,
        workflow=getattr(action, "workflow", ""),
        paused=desc.schedule.state.paused,
        next_run_at=desc.info.next_action_times[0] if desc.info.next_action_times else None,
        runs=sorted(runs, key=lambda r: r.scheduled_at or r.started_at or now()))


async def _run(client: Client, workflow_id: str, run_id: str | None,
               action: ScheduleActionResult | None) -> ReconcilerRun:
    view = ReconcilerRun(workflow_id=workflow_id, run_id=run_id,
                         scheduled_at=action.scheduled_at if action else None,
                         started_at=action.started_at if action else None, status="unknown")
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    try:
        wf = await handle.describe(rpc_timeout=RPC_TIMEOUT)
    except RPCError:  # past retention, or Temporal hiccuped: the row says so
        return view
    view.status = wf.status.name.lower() if wf.status else "unknown"
    view.started_at = view.started_at or wf.start_time
    if wf.status == WorkflowExecutionStatus.COMPLETED:
        result = await handle.result(follow_runs=False, rpc_timeout=RPC_TIMEOUT)
        view.result = result if isinstance(result, dict) else {"value": result}
    elif wf.status == WorkflowExecutionStatus.FAILED:
        try:
            await handle.result(follow_runs=False, rpc_timeout=RPC_TIMEOUT)
        except WorkflowFailureError as e:
            view.error = str(e.cause or e)
    return view
