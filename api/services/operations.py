"""Starting operations as Temporal workflows, and reading their live state.

The Operation row is committed before the workflow starts (its activities read it).
The workflow id is derived from the instance, with conflict policy FAIL, so Temporal
itself refuses a second concurrent operation on one instance; we turn that into 409.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from sqlmodel import Session, col, or_, select
from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowHandle,
)
from temporalio.common import (
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.auth import AuthContext
from api.errors import Conflict, ServiceUnavailable
from api.schemas.common import utc
from api.schemas.operations import OperationPublic
from vmflow.contracts.instances import OperationRef
from vmflow.models import Instance, Operation, now
from vmflow.names import (
    CONTROL_QUEUE,
    SA_OPERATION,
    instance_workflow_id,
    operation_attributes,
)
from vmflow.states import TRANSITIONS

log = logging.getLogger(__name__)

RPC_TIMEOUT = timedelta(seconds=5)
QUERY_TIMEOUT = timedelta(seconds=2)

# workflow type names, as registered by the control worker: from the state table
WORKFLOWS = {a: t.workflow for a, t in TRANSITIONS.items() if t.workflow}

_CLOSED = {
    WorkflowExecutionStatus.COMPLETED: "succeeded",
    WorkflowExecutionStatus.FAILED: "failed",
    WorkflowExecutionStatus.TERMINATED: "failed",
    WorkflowExecutionStatus.TIMED_OUT: "failed",
    WorkflowExecutionStatus.CANCELED: "failed",
}


# --- Idempotency-Key -----------------------------------------------------------------

_key_locks: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = (
    weakref.WeakValueDictionary()
)


@asynccontextmanager
async def idempotency_guard(auth: AuthContext, key: str | None) -> AsyncIterator[None]:
    """Serialize requests that carry the same key, so a retry racing the original
    finds the original's Operation row instead of starting a second operation."""
    if not key:
        yield
        return
    lock = _key_locks.get((auth.project_id, key))
    if lock is None:
        lock = _key_locks[(auth.project_id, key)] = asyncio.Lock()
    async with lock:
        yield


def find_idempotent(session: Session, auth: AuthContext, key: str | None, resource_type: str,
                    action: str, resource_id: str | None = None) -> Operation | None:
    """The operation an earlier request with this key made, if any. A key reused for a
    different request is an error rather than a silent replay of the wrong thing."""
    if not key:
        return None
    op = session.exec(
        select(Operation)
        .where(Operation.idempotency_key == key)
        .where(or_(Operation.project_id == auth.project_id, Operation.user_id == auth.user_id))
        .order_by(col(Operation.started_at))
    ).first()
    if op is None:
        return None
    if (op.resource_type, op.action) != (resource_type, action) or (
        resource_id is not None and op.resource_id != resource_id
    ):
        raise Conflict(
            f"Idempotency-Key {key!r} was already used for {op.action} of "
            f"{op.resource_type} {op.resource_id}", type="IdempotencyKeyReused")
    return op


def remember_key(session: Session, auth: AuthContext, key: str | None, resource_type: str,
                 resource_id: str, action: str) -> None:
    """For a synchronous change (no workflow): a finished Operation row keeps the key,
    so a repeat finds it. Added to the caller's session, committed with the change."""
    if key:
        session.add(Operation(
            resource_type=resource_type, resource_id=resource_id, action=action,
            status="succeeded", workflow_id="", project_id=auth.project_id,
            user_id=auth.user_id, idempotency_key=key, finished_at=now()))


# --- starting ------------------------------------------------------------------------

# the workflow's input, made from the new Operation's id (default: OperationRef)
InputFactory = Callable[[str], object]

def search_attributes(instance: Instance, action: str) -> TypedSearchAttributes:
    return operation_attributes(instance_workflow_id(instance.id), instance.project_id, action)


async def start_instance_operation(
    client: Client,
    session: Session,
    instance: Instance,
    action: str,
    workflow: str,
    auth: AuthContext,
    idempotency_key: str | None = None,
    make_input: InputFactory | None = None,
) -> Operation:
    """Record an Operation and start `workflow` for it on the instance's workflow id,
    with `make_input(operation_id)` as its argument (default: an OperationRef).

    Returns the Operation (an earlier one for a repeated Idempotency-Key). Raises
    Conflict if another operation holds the instance, ServiceUnavailable if Temporal
    cannot be reached. On failure no row of this request is left behind; for
    action "create" the Instance row is removed too.
    """
    earlier = find_idempotent(session, auth, idempotency_key, "instance", action, instance.id)
    if earlier is not None:
        return earlier

    workflow_id = instance_workflow_id(instance.id)
    op = Operation(
        resource_type="instance", resource_id=instance.id, action=action, status="running",
        workflow_id=workflow_id, project_id=instance.project_id, user_id=auth.user_id,
        idempotency_key=idempotency_key,
    )
    session.add(op)
    session.commit()
    arg = make_input(op.id) if make_input else OperationRef(instance.id, op.id)
    try:
        handle = await _start(client, session, instance.id, op.id, lambda: client.start_workflow(
            workflow,
            arg,
            id=workflow_id,
            task_queue=CONTROL_QUEUE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            search_attributes=search_attributes(instance, action),
            memo={"operation_id": op.id, "user_id": auth.user_id},
            static_summary=f"{action} instance {instance.id}",  # ids only: no user text in the UI
            rpc_timeout=RPC_TIMEOUT,
        ))
    except WorkflowAlreadyStartedError:
        running = await running_action(client, session, instance.id, exclude=op.id)
        _forget(session, op, instance if action == "create" else None)
        raise Conflict(
            f"another operation ({running}) is running on instance {instance.id}"
        ) from None
    except Exception as e:
        # RPCError from a server that went away, RuntimeError from a client that never
        # connected: either way nothing runs, so nothing of this request may remain
        _forget(session, op, instance if action == "create" else None)
        if isinstance(e, RPCError | RuntimeError):
            raise ServiceUnavailable(f"could not start the {action} workflow: {e}",
                                     type="TemporalUnavailable") from e
        raise
    op.run_id = handle.first_execution_run_id or handle.result_run_id
    session.add(op)
    session.commit()
    return op


CLOSING_GRACE_S = 3.0


async def _start(client: Client, session: Session, instance_id: str, op_id: str,
                 start: Callable[[], Awaitable[WorkflowHandle[Any, Any]]]
                 ) -> WorkflowHandle[Any, Any]:
    """Start the workflow; if the instance's id is held by a workflow whose operation
    has already finished (it is only closing), wait a moment and try again, so
    back-to-back actions do not see a spurious 409."""
    deadline = asyncio.get_running_loop().time() + CLOSING_GRACE_S
    while True:
        try:
            return await start()
        except WorkflowAlreadyStartedError:
            still_running = session.exec(select(Operation).where(
                Operation.resource_id == instance_id, Operation.status == "running",
                Operation.id != op_id)).first()
            if still_running is not None or asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.1)


def _forget(session: Session, op: Operation, instance: Instance | None) -> None:
    session.delete(op)
    if instance is not None:
        session.delete(instance)
    session.commit()


async def running_action(client: Client, session: Session, instance_id: str,
                         exclude: str | None = None) -> str:
    """The action of the workflow holding the instance: its search attribute, else the
    newest running Operation row."""
    try:
        desc = await client.get_workflow_handle(instance_workflow_id(instance_id)).describe(
            rpc_timeout=RPC_TIMEOUT)
        name = desc.typed_search_attributes.get(SA_OPERATION)
        if name:
            return name
    except RPCError as e:
        log.info("describe of instance %s failed: %s", instance_id, e)
    row = session.exec(
        select(Operation)
        .where(Operation.resource_type == "instance", Operation.resource_id == instance_id)
        .where(Operation.status == "running", Operation.id != (exclude or ""))
        .order_by(col(Operation.started_at).desc())
    ).first()
    return row.action if row else "unknown"


async def describe_running(client: Client,
                           instance_id: str) -> WorkflowExecutionDescription | None:
    """The workflow holding the instance's workflow id if it is running, else None.
    Raises ServiceUnavailable if Temporal cannot answer."""
    handle = client.get_workflow_handle(instance_workflow_id(instance_id))
    try:
        desc = await handle.describe(rpc_timeout=RPC_TIMEOUT)
    except RPCError as e:
        if e.status == RPCStatusCode.NOT_FOUND:
            return None
        raise ServiceUnavailable(f"could not ask Temporal about instance {instance_id}: {e}",
                                 type="TemporalUnavailable") from e
    return desc if desc.status == WorkflowExecutionStatus.RUNNING else None


async def described_operation(session: Session, desc: WorkflowExecutionDescription
                              ) -> tuple[str, Operation | None]:
    """The action and Operation row of a described workflow (memo, else its run id)."""
    action = desc.typed_search_attributes.get(SA_OPERATION) or desc.workflow_type
    op_id = await desc.memo_value("operation_id", None)
    op = session.get(Operation, op_id) if isinstance(op_id, str) else None
    if op is None:
        op = session.exec(select(Operation).where(Operation.run_id == desc.run_id)).first()
    return action, op


# --- reading -------------------------------------------------------------------------

async def operation_view(client: Client | None, op: Operation) -> OperationPublic:
    """The row, completed with what only Temporal knows while the workflow runs: the
    step and progress (the workflow's `status` query), the current activity attempt
    and its last failure. A workflow that closed without updating its row (its worker
    died) is reported with the status Temporal gives it."""
    view = OperationPublic(
        id=op.id, resource_type=op.resource_type, resource_id=op.resource_id,
        action=op.action, status=op.status, step=None, progress=None, attempt=None,
        last_error=op.last_error, workflow_id=op.workflow_id, run_id=op.run_id,
        project_id=op.project_id, user_id=op.user_id, request_id=op.request_id,
        started_at=utc(op.started_at), finished_at=utc(op.finished_at),
    )
    # without run_id the handle could name a later operation on the same instance
    if client is None or op.status != "running" or not op.run_id:
        return view
    handle = client.get_workflow_handle(op.workflow_id, run_id=op.run_id)
    try:
        desc = await handle.describe(rpc_timeout=RPC_TIMEOUT)
    except RPCError as e:
        log.info("describe %s/%s failed: %s", op.workflow_id, op.run_id, e)
        return view
    if desc.status in _CLOSED:
        view.status = _CLOSED[desc.status]
        if view.status == "failed":
            view.last_error = view.last_error or f"workflow {desc.status.name.lower()}"
        view.finished_at = view.finished_at or desc.close_time
        return view
    pending = desc.raw_description.pending_activities
    if pending:
        view.attempt = pending[0].attempt
        if pending[0].HasField("last_failure") and pending[0].last_failure.message:
            view.last_error = pending[0].last_failure.message
    try:
        status = await handle.query("status", rpc_timeout=QUERY_TIMEOUT)
    except Exception as e:  # no worker, not ready, old workflow code: not an error here
        log.debug("status query of %s failed: %s", op.workflow_id, e)
        return view
    if isinstance(status, dict):
        step, progress = status.get("step"), status.get("progress")
        view.step = step if isinstance(step, str) else None
        view.progress = progress if isinstance(progress, int) else None
    return view
