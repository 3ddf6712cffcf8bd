"""The ledger reconciler (admin): a run now, and its recent runs.

The logic behind api/routers/reconcilers.py: a run now through its Temporal Schedule
`reconcile-ledger` (made by the control worker when it starts, workers/control.py;
overlap SKIP), and its recent runs with their results as Temporal keeps them.
"""

from __future__ import annotations

import asyncio

from sqlmodel import Session
from temporalio.client import (
    Client,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionResult,
    WorkflowExecutionStatus,
    WorkflowFailureError,
)
from temporalio.service import RPCError, RPCStatusCode

from api.auth import AuthContext
from api.errors import ServiceUnavailable
from api.schemas.common import utc
from api.schemas.reconcilers import ReconcilerRun, ReconcilerTriggered, ReconcilerView
from api.services.operations import claim_key, find_idempotent, forget_key
from vmflow.models import now
from vmflow.names import LEDGER_RECONCILE_SCHEDULE
from vmflow.operations import RPC_TIMEOUT

RESOURCE = "reconciler"  # of the Operation rows that keep a trigger's Idempotency-Key


def _unavailable(e: RPCError | RuntimeError, doing: str) -> ServiceUnavailable:
    if isinstance(e, RPCError) and e.status == RPCStatusCode.NOT_FOUND:
        return ServiceUnavailable(
            f"the Temporal Schedule {LEDGER_RECONCILE_SCHEDULE} does not exist: the control "
            "worker makes it when it starts; is it running?", type="ScheduleMissing")
    return ServiceUnavailable(f"could not {doing}: {e}", type="TemporalUnavailable")


async def trigger(client: Client, session: Session, auth: AuthContext,
                  idempotency_key: str | None) -> ReconcilerTriggered:
    """A run now; with an Idempotency-Key seen before, the first trigger's answer."""
    earlier = find_idempotent(session, auth, idempotency_key, RESOURCE, "trigger",
                              LEDGER_RECONCILE_SCHEDULE)
    if earlier is not None:
        return ReconcilerTriggered(schedule_id=LEDGER_RECONCILE_SCHEDULE,
                                   triggered_at=utc(earlier.started_at))
    claimed = claim_key(session, auth, idempotency_key, RESOURCE, LEDGER_RECONCILE_SCHEDULE,
                        "trigger")
    at = claimed.started_at if claimed is not None else now()
    try:
        await client.get_schedule_handle(LEDGER_RECONCILE_SCHEDULE).trigger(
            rpc_timeout=RPC_TIMEOUT)
    except (RPCError, RuntimeError) as e:
        forget_key(session, claimed)
        raise _unavailable(e, "trigger the ledger reconciler") from e
    return ReconcilerTriggered(schedule_id=LEDGER_RECONCILE_SCHEDULE, triggered_at=utc(at))


async def show(client: Client) -> ReconcilerView:
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
