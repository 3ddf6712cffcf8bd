"""Ending the operation that holds an instance, so another can start.

- delete cancels it and waits: the workflows compensate on cancellation and finish
  their own Operation row, so the instance is back in a known state before deletion
  (a row the closed workflow still left running is settled here, as the ledger
  reconciler would: vmflow/operation_rows.py);
- forceDelete terminates it: no compensation, the delete that follows cleans up; a
  terminated workflow runs no more code, so its row is finished here at once;
- os-resetState only asks whether one runs (it must not pull state from under it).
"""

from __future__ import annotations

import asyncio
import logging
import time

from sqlmodel import Session, col, select
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from api.errors import Conflict, ServiceUnavailable
from api.services.operations import describe_running, described_operation
from vmflow.models import Instance, Operation
from vmflow.operation_rows import CLOSED, settle
from vmflow.operations import PREEMPTING, RPC_TIMEOUT

log = logging.getLogger(__name__)

CANCEL_WAIT_S = 120.0  # how long DELETE waits for a cancelled operation to compensate
POLL_S = 0.2


async def cancel_and_wait(client: Client, session: Session, inst: Instance) -> None:
    """Cancel the running operation on `inst` (unless it is a delete: 409) and return
    once it has closed. 409 if it is still compensating after CANCEL_WAIT_S."""
    desc = await describe_running(client, inst.id)
    if desc is None:
        return
    action, op = await described_operation(session, desc)
    if action in PREEMPTING or desc.workflow_type == "DeleteInstance":
        raise Conflict(f"another operation ({action}) is running on instance {inst.id}")
    handle = client.get_workflow_handle(desc.id, run_id=desc.run_id)
    try:
        await handle.cancel(rpc_timeout=RPC_TIMEOUT)
    except RPCError as e:
        if e.status != RPCStatusCode.NOT_FOUND:  # NOT_FOUND: it closed meanwhile
            raise ServiceUnavailable(f"could not cancel {action}: {e}",
                                     type="TemporalUnavailable") from e
    log.info("delete of %s cancelled its running %s", inst.id, action)
    deadline = time.monotonic() + CANCEL_WAIT_S
    while True:
        closed = await handle.describe(rpc_timeout=RPC_TIMEOUT)
        if closed.status != WorkflowExecutionStatus.RUNNING:
            settle_closed(session, op, closed.status)
            return
        if time.monotonic() >= deadline:
            which = f"{op.id} ({action})" if op else action
            raise Conflict(f"operation {which} is still compensating; retry",
                           type="StillCompensating")
        await asyncio.sleep(POLL_S)


async def terminate_running(client: Client, session: Session, inst: Instance,
                            reason: str) -> None:
    """Terminate whatever runs on `inst` and mark its Operation failed: a terminated
    workflow runs no more code, so nobody else would."""
    desc = await describe_running(client, inst.id)
    if desc is None:
        return
    _, op = await described_operation(session, desc)
    try:
        await client.get_workflow_handle(desc.id, run_id=desc.run_id).terminate(
            reason=reason, rpc_timeout=RPC_TIMEOUT)
    except RPCError as e:
        if e.status != RPCStatusCode.NOT_FOUND:
            raise ServiceUnavailable(f"could not terminate the running operation: {e}",
                                     type="TemporalUnavailable") from e
    if op is not None:
        session.refresh(op)
        if op.status == "running":
            settle(session, op, "failed", "terminated by force-delete")
            session.commit()


def settle_closed(session: Session, op: Operation | None,
                  status: WorkflowExecutionStatus | None) -> None:
    """The row of a workflow that has just closed, if the workflow left it running."""
    if op is None or status is None:
        return
    session.refresh(op)
    if op.status == "running":
        row_status, error = CLOSED[status.name]
        settle(session, op, row_status, error)
        session.commit()


async def running_operation(client: Client | None, session: Session,
                            inst: Instance) -> str | None:
    """The action running on `inst`, or None. Temporal decides when it can answer (a
    row left 'running' by a dead worker must not block os-resetState forever, that is
    what it is for); without Temporal, the newest running Operation row does."""
    if client is not None:
        try:
            desc = await describe_running(client, inst.id)
        except ServiceUnavailable as e:
            log.warning("running operation of %s from the DB: %s", inst.id, e)
        else:
            return None if desc is None else (await described_operation(session, desc))[0]
    row = session.exec(
        select(Operation)
        .where(Operation.resource_type == "instance", Operation.resource_id == inst.id)
        .where(Operation.status == "running", Operation.workflow_id != "")
        .order_by(col(Operation.started_at).desc())
    ).first()
    return row.action if row else None
