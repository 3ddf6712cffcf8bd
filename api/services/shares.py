"""What the share routers share: finding what the caller may see (404 otherwise), the
state table's 409, quota errors as 413, and starting share workflows.

A mutating share workflow holds the id share-<share_id> with conflict policy FAIL
(snapshot create/delete too), so Temporal refuses a second one and we answer 409. The
access reconcile runs as share-<id>-access and is signalled-with-start, so allow and
deny requests queue on one run instead of racing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from sqlmodel import Session, select
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import (
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.auth import AuthContext
from api.errors import Conflict, NotFound, PayloadTooLarge, ServiceUnavailable
from api.services.operations import CLOSING_GRACE_S, RPC_TIMEOUT, described_operation
from vmflow import access_sync
from vmflow.models import Operation, Share, ShareSnapshot, ShareType, now
from vmflow.names import (
    CONTROL_QUEUE,
    SA_OPERATION,
    operation_attributes,
    share_workflow_id,
)
from vmflow.share_quotas import QuotaExceeded
from vmflow.share_states import SHARE_ACTIONS, allowed

log = logging.getLogger(__name__)

# workflow type names, as the control worker registers them
CREATE_SHARE = "CreateShare"
DELETE_SHARE = "DeleteShare"
EXTEND_SHARE = "ExtendShare"
SHRINK_SHARE = "ShrinkShare"
CREATE_SHARE_SNAPSHOT = "CreateShareSnapshot"
DELETE_SHARE_SNAPSHOT = "DeleteShareSnapshot"


# --- finding -------------------------------------------------------------------------

def get_share(session: Session, auth: AuthContext, share_id: str) -> Share:
    share = session.get(Share, share_id)
    if share is None or not auth.can_see(share.project_id):
        raise NotFound(f"share {share_id} not found")
    return share


def get_snapshot(session: Session, auth: AuthContext, snapshot_id: str) -> ShareSnapshot:
    snap = session.get(ShareSnapshot, snapshot_id)
    if snap is None or not auth.can_see(snap.project_id):
        raise NotFound(f"share snapshot {snapshot_id} not found")
    return snap


def type_names(session: Session) -> dict[str, str]:
    return {t.id: t.name for t in session.exec(select(ShareType))}


def check_status(action: str, share: Share) -> None:
    """The state table (vmflow.share_states) as 409, Manila's InvalidShare."""
    if not allowed(action, share.status):
        ok = ", ".join(sorted(SHARE_ACTIONS[action]))
        raise Conflict(f"Invalid share: cannot {action} share {share.id} while it is "
                       f"{share.status}; allowed from: {ok}", type="InvalidShare")


def quota_error(e: QuotaExceeded) -> PayloadTooLarge:
    """Manila answers quota errors with 413."""
    return PayloadTooLarge(e.message, type=e.type)


# --- starting ------------------------------------------------------------------------

def search_attributes(share: Share, action: str) -> TypedSearchAttributes:
    return operation_attributes(share_workflow_id(share.id), share.project_id, action)


async def start_share_operation(
    client: Client, session: Session, share: Share, action: str, workflow: str,
    auth: AuthContext, idempotency_key: str | None, make_input: Callable[[str], object],
    undo: Callable[[], None], resource_type: str = "share", resource_id: str | None = None,
) -> Operation:
    """Commit what the caller changed in `session` with a new Operation row, then start
    `workflow(make_input(operation_id))` as share-<share.id>. If it cannot start, the
    row goes and `undo()` puts back what the caller changed: 409 when another operation
    holds the share, 503 when Temporal cannot be reached."""
    workflow_id = share_workflow_id(share.id)
    op = Operation(resource_type=resource_type, resource_id=resource_id or share.id,
                   action=action, workflow_id=workflow_id, project_id=share.project_id,
                   user_id=auth.user_id, idempotency_key=idempotency_key)
    session.add(op)
    session.commit()
    arg = make_input(op.id)

    async def start() -> Any:
        return await client.start_workflow(
            workflow, arg, id=workflow_id, task_queue=CONTROL_QUEUE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            search_attributes=search_attributes(share, action),
            memo={"operation_id": op.id, "user_id": auth.user_id},
            static_summary=f"{action} share {share.id}",  # ids only: no user text in the UI
            rpc_timeout=RPC_TIMEOUT)

    try:
        handle = await _start_with_grace(session, workflow_id, op.id, start)
    except WorkflowAlreadyStartedError:
        running = await running_action(client, share.id)
        _forget(session, op, undo)
        raise Conflict(f"another operation ({running or 'unknown'}) is running on share "
                       f"{share.id}") from None
    except (RPCError, RuntimeError) as e:
        _forget(session, op, undo)
        raise ServiceUnavailable(f"could not start the {action} workflow: {e}",
                                 type="TemporalUnavailable") from e
    except BaseException:
        _forget(session, op, undo)
        raise
    op.run_id = handle.first_execution_run_id or handle.result_run_id
    session.add(op)
    session.commit()
    return op


async def _start_with_grace(session: Session, workflow_id: str, op_id: str,
                            start: Callable[[], Any]) -> Any:
    """As api.services.operations does for instances: a workflow whose operation has finished
    and is only closing does not turn the next request into a 409."""
    deadline = asyncio.get_running_loop().time() + CLOSING_GRACE_S
    while True:
        try:
            return await start()
        except WorkflowAlreadyStartedError:
            busy = session.exec(select(Operation).where(
                Operation.workflow_id == workflow_id, Operation.status == "running",
                Operation.id != op_id)).first()
            if busy is not None or asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.1)


def _forget(session: Session, op: Operation, undo: Callable[[], None]) -> None:
    session.delete(op)
    undo()
    session.commit()


async def running_action(client: Client, share_id: str) -> str | None:
    """The action of the workflow holding share-<id> if one runs, else None."""
    try:
        desc = await client.get_workflow_handle(share_workflow_id(share_id)).describe(
            rpc_timeout=RPC_TIMEOUT)
    except RPCError as e:
        if e.status == RPCStatusCode.NOT_FOUND:
            return None
        raise ServiceUnavailable(f"could not ask Temporal about share {share_id}: {e}",
                                 type="TemporalUnavailable") from e
    if desc.status != WorkflowExecutionStatus.RUNNING:
        return None
    return desc.typed_search_attributes.get(SA_OPERATION) or desc.workflow_type


async def terminate_running(client: Client, session: Session, share: Share,
                            reason: str) -> None:
    """force_delete: end whatever holds share-<id>, without compensation, and mark its
    Operation failed (a terminated workflow runs no more code to do it)."""
    handle = client.get_workflow_handle(share_workflow_id(share.id))
    try:
        desc = await handle.describe(rpc_timeout=RPC_TIMEOUT)
        if desc.status != WorkflowExecutionStatus.RUNNING:
            return
        _, op = await described_operation(session, desc)
        await client.get_workflow_handle(desc.id, run_id=desc.run_id).terminate(
            reason=reason, rpc_timeout=RPC_TIMEOUT)
    except RPCError as e:
        if e.status == RPCStatusCode.NOT_FOUND:  # nothing runs, or it closed meanwhile
            return
        raise ServiceUnavailable(f"could not terminate the running operation: {e}",
                                 type="TemporalUnavailable") from e
    log.info("force_delete of share %s terminated %s", share.id, desc.workflow_type)
    if op is not None and op.status == "running":
        op.status, op.finished_at = "failed", now()
        op.last_error = "terminated by force_delete"
        session.add(op)
        session.commit()


async def signal_access_sync(client: Client, share: Share) -> None:
    """Signal-with-start the share's access reconcile: a running one gets the signal
    and picks the new rules up, otherwise one starts."""
    host = share.host or ""  # the caller has checked it is set
    try:
        await access_sync.signal_access_sync(client, share.id, share.project_id, host,
                                             RPC_TIMEOUT)
    except (RPCError, RuntimeError) as e:
        raise ServiceUnavailable(f"could not signal the access rule sync: {e}",
                                 type="TemporalUnavailable") from e
