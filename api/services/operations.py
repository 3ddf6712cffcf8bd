"""The API's side of operations: Idempotency-Key replay, starting, live state.

An instance operation starts through vmflow.operations.start_operation (its errors
as 409 and 503); an operation's live state is read from Temporal.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import TypeVar

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, col, or_, select
from temporalio.client import Client, WorkflowExecutionDescription, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from api.auth import AuthContext
from api.errors import Conflict, NotFound, ServiceUnavailable
from api.schemas.common import utc
from api.schemas.operations import OperationPublic
from vmflow.contracts.instances import OperationRef
from vmflow.models import Instance, Operation, now
from vmflow.names import SA_OPERATION, instance_workflow_id
from vmflow.operations import RPC_TIMEOUT, ResourceBusy, instance_spec, start_operation

log = logging.getLogger(__name__)

QUERY_TIMEOUT = timedelta(seconds=2)
Row = TypeVar("Row", bound=SQLModel)
T = TypeVar("T")

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


KEY_CONSTRAINT = "uq_operation_project_idempotency_key"


def is_key_race(exc: BaseException) -> bool:
    """The database refused a second Operation row for one project's Idempotency-Key:
    another process took the key between our look-up and our commit (in one process
    idempotency_guard serializes them). Nothing of this request was committed."""
    if not isinstance(exc, IntegrityError):
        return False
    text = str(exc.orig)
    return KEY_CONSTRAINT in text or "operation.project_id, operation.idempotency_key" in text


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


async def once(session: Session, auth: AuthContext, key: str | None, resource_type: str,
               action: str, replay: Callable[[Operation], T],
               make: Callable[[], Awaitable[T]]) -> T:
    """`make()` unless the key made something already (then `replay(its Operation)`),
    also when another API process takes the key while `make()` runs: the database
    refuses the second row of the key, or the look-up under the new row's id finds the
    other's; either way this request made nothing and answers with the other's."""
    earlier = find_idempotent(session, auth, key, resource_type, action)
    if earlier is not None:
        return replay(earlier)
    try:
        return await make()
    except (IntegrityError, Conflict) as e:
        if not key or not (is_key_race(e) or getattr(e, "type", "") == "IdempotencyKeyReused"):
            raise
        session.rollback()
        earlier = find_idempotent(session, auth, key, resource_type, action)
        if earlier is None:
            raise
        return replay(earlier)


def claim_key(session: Session, auth: AuthContext, key: str | None, resource_type: str,
              resource_id: str, action: str) -> Operation | None:
    """For a change made outside the database (a Temporal call): the key's record is
    committed first, so the database lets one request per key through, whichever API
    process it reaches; forget_key() gives the key back if the change then fails."""
    if not key:
        return None
    remember_key(session, auth, key, resource_type, resource_id, action)
    session.commit()
    return find_idempotent(session, auth, key, resource_type, action, resource_id)


def forget_key(session: Session, op: Operation | None) -> None:
    """The change a claim_key() was for did not happen: a repeat may try again."""
    if op is not None:
        session.rollback()
        session.delete(op)
        session.commit()


def replayed_row(session: Session, model: type[Row], resource_id: str, noun: str) -> Row:
    """The row a replayed create made (found by id, whatever its state now), else 404
    "<noun> <id> not found"."""
    row = session.get(model, resource_id)
    if row is None:
        raise NotFound(f"{noun} {resource_id} not found")
    return row


# --- starting ------------------------------------------------------------------------

# the workflow's input, made from the new Operation's id (default: OperationRef)
InputFactory = Callable[[str], object]


@asynccontextmanager
async def http_errors(action: str) -> AsyncIterator[None]:
    """vmflow.operations' errors as the API answers them: 409 when another operation
    holds the resource, 503 when Temporal cannot be reached (RPCError from a server
    that went away, RuntimeError from a client that never connected)."""
    try:
        yield
    except ResourceBusy as e:
        raise Conflict(str(e)) from None
    except (RPCError, RuntimeError) as e:
        raise ServiceUnavailable(f"could not start the {action} workflow: {e}",
                                 type="TemporalUnavailable") from e


async def start_instance_operation(
    client: Client,
    session: Session,
    instance: Instance,
    action: str,
    auth: AuthContext,
    idempotency_key: str | None = None,
    make_input: InputFactory | None = None,
) -> Operation:
    """Record an Operation, show its task_state on the instance and start the state
    table's workflow for it (vmflow.operations.start_operation), with
    `make_input(operation_id)` as its argument (default: an OperationRef).

    Returns the Operation (an earlier one for a repeated Idempotency-Key). Raises
    Conflict if another operation holds the instance, ServiceUnavailable if Temporal
    cannot be reached. On failure no row of this request is left behind (for action
    "create" the new Instance row goes too) and the task_state is as it was.
    """
    earlier = find_idempotent(session, auth, idempotency_key, "instance", action, instance.id)
    if earlier is not None:
        return earlier
    spec = instance_spec(
        instance, action, auth.user_id,
        make_input or (lambda op_id: OperationRef(instance.id, op_id)),
        idempotency_key=idempotency_key, new_rows=(instance,) if action == "create" else ())
    async with http_errors(action):
        return await start_operation(client, session, spec)


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
    beat = await heartbeat_percent(client, desc)
    if beat is not None:
        view.progress = beat
    return view


async def heartbeat_percent(client: Client, desc: WorkflowExecutionDescription) -> int | None:
    """A long step that heartbeats its progress as {"percent": n, ...} (a live
    migration: the job's stats) says more than the workflow, which hears only its end."""
    for act in desc.raw_description.pending_activities:
        if not act.heartbeat_details.payloads:
            continue
        try:
            values = await client.data_converter.decode(act.heartbeat_details.payloads)
        except Exception:  # details of another shape: not a progress report
            continue
        if values and isinstance(values[0], dict) and isinstance(values[0].get("percent"), int):
            return int(values[0]["percent"])
    return None


def get_operation(session: Session, auth: AuthContext, operation_id: str) -> Operation:
    """An operation of a project the caller may see, else 404."""
    op = session.get(Operation, operation_id)
    if op is None or not auth.can_see(op.project_id):
        raise NotFound(f"operation {operation_id} not found")
    return op


def listed(session: Session, auth: AuthContext, resource_id: str | None,
           status: str | None, limit: int) -> list[Operation]:
    """Workflow runs (not idempotency records) of the caller's project (admin: every
    project's), newest first."""
    stmt = select(Operation).where(Operation.workflow_id != "")
    if not auth.is_admin:
        stmt = stmt.where(Operation.project_id == auth.project_id)
    if resource_id is not None:
        stmt = stmt.where(Operation.resource_id == resource_id)
    if status is not None:
        stmt = stmt.where(Operation.status == status)
    return list(session.exec(stmt.order_by(col(Operation.started_at).desc()).limit(limit)))
