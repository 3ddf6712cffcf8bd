"""Operation rows whose workflow did not finish them (the rule: vmflow/operation_rows.py).

- settle_operation: a workflow's own safety net (workflows/_base/operation.py) on a
  way out its code did not handle; only a row that still runs is changed.
- settle_closed_operations: the ledger reconciler's check. A terminated or timed-out
  workflow runs no code, so a row can outlive it; Temporal says how the workflow
  closed and the row gets that final status. Rows younger than the grace (a workflow
  just being started) and rows with no workflow (lock, reset-state: finished when
  written) are never judged; a row whose workflow still runs is left alone."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlmodel import col, select
from temporalio import activity
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import HistoryEventFilterType
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryRequest
from temporalio.client import WorkflowExecutionDescription, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from activities.control.base import ClientActivities
from vmflow.contracts.activity_names import ControlActs
from vmflow.contracts.reconcile import (
    ClosedRowsReport,
    ClosedRowsRequest,
    SettleOperation,
)
from vmflow.models import Operation, now
from vmflow.operation_rows import CLOSED, newer_running, settle

DESCRIBE_TIMEOUT = timedelta(seconds=10)
DESCRIBE_CONCURRENCY = 16
ROWS_PER_RUN = 500  # the oldest first; the next run takes the rest
RUNS_SEARCHED = 100  # runs of one workflow id looked through for a row without run id


@dataclass(frozen=True)
class Verdict:
    operation_id: str
    status: str
    error: str | None
    release: bool  # no other run holds the workflow id: the resource is the row's


class OperationRowActivities(ClientActivities):
    @activity.defn(name=ControlActs.SETTLE_OPERATION)
    def settle_operation(self, req: SettleOperation) -> bool:
        """Called by the workflow that owns the row, so the resource is its own."""
        with self.session() as s:  # the row first: a late begin_action waits for it
            op = s.exec(select(Operation).where(Operation.id == req.operation_id)
                        .with_for_update()).first()
            if op is None or op.status != "running":
                return False
            told = settle(s, op, req.status, req.error)
            s.commit()
        activity.logger.info("settled by its workflow: %s", told)
        return True

    @activity.defn(name=ControlActs.SETTLE_CLOSED)
    async def settle_closed_operations(self, req: ClosedRowsRequest) -> ClosedRowsReport:
        grace = self.settings.reconcile_grace if req.grace_s is None else req.grace_s
        rows = await asyncio.to_thread(self._stale, grace)
        gate = asyncio.Semaphore(DESCRIBE_CONCURRENCY)

        async def judge(row: tuple[str, str, str | None]) -> Verdict | None:
            async with gate:
                return await self._verdict(*row)

        verdicts = [v for v in await asyncio.gather(*(judge(r) for r in rows)) if v]
        lines = await asyncio.to_thread(self._apply, verdicts)
        return ClosedRowsReport(len(lines), lines)

    def _stale(self, grace_s: float) -> list[tuple[str, str, str | None]]:
        cutoff = now() - timedelta(seconds=grace_s)
        with self.session() as s:
            rows = s.exec(select(Operation).where(
                Operation.status == "running", Operation.workflow_id != "",
                col(Operation.started_at) <= cutoff,
            ).order_by(col(Operation.started_at)).limit(ROWS_PER_RUN)).all()
            return [(r.id, r.workflow_id, r.run_id) for r in rows]

    def _apply(self, verdicts: list[Verdict]) -> list[str]:
        lines = []
        with self.session() as s:
            for v in verdicts:
                op = s.get(Operation, v.operation_id)
                if op is None or op.status != "running":  # finished meanwhile
                    continue
                release = v.release and not newer_running(s, op)
                lines.append(settle(s, op, v.status, v.error, release=release))
            s.commit()
        return lines

    async def _verdict(self, op_id: str, workflow_id: str,
                       run_id: str | None) -> Verdict | None:
        """How the row's workflow closed; None while it runs."""
        handle = self.client.get_workflow_handle(workflow_id, run_id=run_id)
        try:
            desc: WorkflowExecutionDescription | None = await handle.describe(
                rpc_timeout=DESCRIBE_TIMEOUT)
        except RPCError as e:
            if e.status != RPCStatusCode.NOT_FOUND:
                raise  # Temporal cannot answer: the step retries, nothing is guessed
            desc = None
        if desc is not None and run_id is None and \
                await desc.memo_value("operation_id", None) != op_id:
            desc = await self._run_of(workflow_id, op_id)  # the latest run is another's
        if desc is None:
            gone = "its workflow no longer exists" if run_id else "its workflow never started"
            return Verdict(op_id, "failed", gone, await self._free(workflow_id, None))
        if desc.status == WorkflowExecutionStatus.RUNNING or desc.status is None:
            return None
        status, error = CLOSED[desc.status.name]
        why = await self._close_reason(workflow_id, desc.run_id, desc.status)
        if why and error:
            error = f"{error}: {why}"
        return Verdict(op_id, status, error, await self._free(workflow_id, desc.run_id))

    async def _run_of(self, workflow_id: str, op_id: str) -> WorkflowExecutionDescription | None:
        """The run a row without run id started (its memo names the row), if any."""
        seen = 0
        async for run in self.client.list_workflows(f"WorkflowId = '{workflow_id}'"):
            seen += 1
            if await run.memo_value("operation_id", None) == op_id:
                return await self.client.get_workflow_handle(
                    workflow_id, run_id=run.run_id).describe(rpc_timeout=DESCRIBE_TIMEOUT)
            if seen >= RUNS_SEARCHED:
                break
        return None

    async def _free(self, workflow_id: str, run_id: str | None) -> bool:
        """No other run holds the workflow id now (then the resource's in-between state
        is not another operation's)."""
        try:
            latest = await self.client.get_workflow_handle(workflow_id).describe(
                rpc_timeout=DESCRIBE_TIMEOUT)
        except RPCError as e:
            if e.status == RPCStatusCode.NOT_FOUND:
                return True
            raise
        return latest.status != WorkflowExecutionStatus.RUNNING or latest.run_id == run_id

    async def _close_reason(self, workflow_id: str, run_id: str,
                            status: WorkflowExecutionStatus) -> str | None:
        """The failure message or terminate reason of the close event, when it has one."""
        if status not in (WorkflowExecutionStatus.FAILED, WorkflowExecutionStatus.TERMINATED):
            return None
        resp = await self.client.workflow_service.get_workflow_execution_history(
            GetWorkflowExecutionHistoryRequest(
                namespace=self.client.namespace,
                execution=WorkflowExecution(workflow_id=workflow_id, run_id=run_id),
                history_event_filter_type=(
                    HistoryEventFilterType.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT)),
            timeout=DESCRIBE_TIMEOUT)
        for event in resp.history.events:
            if event.HasField("workflow_execution_failed_event_attributes"):
                return event.workflow_execution_failed_event_attributes.failure.message or None
            if event.HasField("workflow_execution_terminated_event_attributes"):
                return event.workflow_execution_terminated_event_attributes.reason or None
        return None

    def all(self) -> list[Callable[..., Any]]:
        return [self.settle_operation, self.settle_closed_operations]
