"""One start_operation for every operation of every resource.

Every caller uses it: the API's routes, the control activities behind a backup
schedule's tick and a rescue's timer, the ledger reconciler's access re-sync.

`start_operation` owns, once:
- the Operation row, committed before the workflow starts (its activities read it),
  in the same transaction as the resource's claim: the task_state (instances) or
  transitional status (shares) the operation shows from its 202 on, taken only if the
  row is still in a state the operation may start from (a compare-and-swap, so two
  racing requests cannot both claim it, and a loser never undoes the winner's claim);
- the workflow id derived from the resource, conflict policy FAIL (Temporal is the
  one-operation-per-resource mutex), reuse ALLOW_DUPLICATE;
- the search attributes and the static summary (ids only: no user text in the UI);
- the short retry while the previous workflow of the resource only closes (its
  operation has finished, its id is not free yet), so back-to-back requests do not
  get a spurious 409;
- on any failure to start: the row and the rows the caller added go, the claim is
  given back (only if it is still this request's), and the error is raised
  (ResourceBusy when another operation holds the resource);
- RPC_TIMEOUT, the one timeout of every Temporal call made for an operation.

Signal-with-start (spec.signal, no session): the share access reconcile, where
requests queue on one run (conflict policy USE_EXISTING) and the rules are the record.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, overload

from sqlalchemy import or_, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, SQLModel, col, select
from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from vmflow.models import Instance, Operation
from vmflow.names import CONTROL_QUEUE, SA_OPERATION, instance_workflow_id, operation_attributes
from vmflow.states import TRANSITIONS

log = logging.getLogger(__name__)

RPC_TIMEOUT = timedelta(seconds=5)
# how long a start waits for the previous workflow of the resource to close once its
# operation has finished (end_action commits, then the workflow completes)
CLOSING_GRACE_S = 10.0  # a loaded 2-core host can take seconds to close a workflow
CLOSING_POLL_S = 0.1


class ResourceBusy(Exception):
    """Another operation holds the resource (its workflow id, or its claim)."""

    def __init__(self, resource: str, action: str):
        super().__init__(f"another operation ({action}) is running on {resource}")
        self.resource, self.action = resource, action


@dataclass(frozen=True)
class Claim:
    """`column` of `row` becomes `value` with the Operation row, if it is one of
    `expect` (None: whatever it is, for what preempts the running operation)."""

    row: SQLModel
    column: str
    value: str
    expect: frozenset[str | None] | None = frozenset({None})


@dataclass(frozen=True)
class OperationSpec:
    resource_type: str  # of the Operation row: instance, share, share_snapshot
    resource_id: str
    resource: str  # in messages and the summary, e.g. "instance <id>"
    action: str
    workflow: str  # the workflow type, as the control worker registers it
    workflow_id: str  # instance-<id>, share-<id>, ...
    project_id: str
    user_id: str
    make_input: Callable[[str], object]  # the Operation's id -> the workflow's input
    idempotency_key: str | None = None
    claim: Claim | None = None
    new_rows: Sequence[SQLModel] = ()  # the caller's new rows: they go if nothing starts
    memo: dict[str, Any] = field(default_factory=dict)
    summary: str | None = None  # default "<action> <resource>"
    attributes_of: str | None = None  # the search attribute resource; default workflow_id
    signal: str | None = None  # signal-with-start (no Operation row)


# they end whatever runs on the instance first, so its task_state does not stop them
PREEMPTING = frozenset({"delete", "force-delete"})


def instance_spec(inst: Instance, action: str, user_id: str,
                  make_input: Callable[[str], object], **more: Any) -> OperationSpec:
    """An instance operation from the state table: its workflow, and the task_state
    the server shows from the 202 on (a new server's row carries its own)."""
    t = TRANSITIONS[action]
    assert t.workflow is not None and t.task_state is not None, action
    claim = None if action == "create" else Claim(
        inst, "task_state", t.task_state,
        expect=None if action in PREEMPTING else frozenset({None}))
    return OperationSpec(
        resource_type="instance", resource_id=inst.id, resource=f"instance {inst.id}",
        action=action, workflow=t.workflow, workflow_id=instance_workflow_id(inst.id),
        project_id=inst.project_id, user_id=user_id, make_input=make_input, claim=claim,
        **more)


@overload
async def start_operation(client: Client, session: Session, spec: OperationSpec
                          ) -> Operation: ...
@overload
async def start_operation(client: Client, session: None, spec: OperationSpec) -> None: ...


async def start_operation(client: Client, session: Session | None, spec: OperationSpec
                          ) -> Operation | None:
    """Record the operation and start its workflow (see the module docstring). With no
    session, signal-with-start spec.signal and record nothing. Raises ResourceBusy,
    or what the Temporal client raised (RPCError when the server is unreachable,
    RuntimeError from a client that never connected)."""
    if session is None:
        assert spec.signal is not None, "only a signal-with-start records nothing"
        await _start(client, spec, spec.make_input(""))
        return None
    op = Operation(resource_type=spec.resource_type, resource_id=spec.resource_id,
                   action=spec.action, status="running", workflow_id=spec.workflow_id,
                   project_id=spec.project_id, user_id=spec.user_id,
                   idempotency_key=spec.idempotency_key)
    before = _take(session, spec)
    session.add(op)
    session.commit()
    try:
        handle = await _start_in_grace(client, session, spec, op)
    except BaseException as e:
        _forget(session, spec, op, before)
        if isinstance(e, WorkflowAlreadyStartedError):
            raise ResourceBusy(spec.resource, await holder(client, session, spec.workflow_id,
                                                           exclude=op.id)) from None
        raise
    op.run_id = handle.first_execution_run_id or handle.result_run_id
    session.add(op)
    session.commit()
    return op


def _take(session: Session, spec: OperationSpec) -> str | None:
    """Take the claim in the open transaction; ResourceBusy if the row has moved on.
    Returns the value it had (given back if the workflow cannot start)."""
    claim = spec.claim
    if claim is None:
        return None
    table = type(claim.row).__table__  # type: ignore[attr-defined]
    column = table.c[claim.column]
    before = session.exec(select(column).where(_is_row(claim))).first()
    stmt = update(table).where(_is_row(claim)).values({claim.column: claim.value})
    if claim.expect is not None:
        values = [v for v in claim.expect if v is not None]
        stmt = stmt.where(or_(col(column).in_(values), *(
            [col(column).is_(None)] if None in claim.expect else [])))
    if session.exec(stmt).rowcount != 1:
        session.rollback()
        raise ResourceBusy(spec.resource, f"{claim.column} {before}")
    set_committed_value(claim.row, claim.column, claim.value)
    return before


def _is_row(claim: Claim) -> Any:
    table = type(claim.row).__table__  # type: ignore[attr-defined]
    return table.c.id == claim.row.id  # type: ignore[attr-defined]


def release(session: Session, claim: Claim, before: str | None = None) -> None:
    """The claim's column back to `before`, unless something else has set it since
    (also for a claim whose workflow never started: a worker died between the commit
    and the start); the caller commits."""
    table = type(claim.row).__table__  # type: ignore[attr-defined]
    session.exec(update(table).where(_is_row(claim))
                 .where(table.c[claim.column] == claim.value)
                 .values({claim.column: before}))
    set_committed_value(claim.row, claim.column, before)


def _forget(session: Session, spec: OperationSpec, op: Operation, before: str | None) -> None:
    """Nothing runs for this request: nothing of it may remain."""
    session.delete(op)
    for row in spec.new_rows:
        session.delete(row)
    if spec.claim is not None:
        release(session, spec.claim, before)
    session.commit()


async def _start(client: Client, spec: OperationSpec, arg: object,
                 op: Operation | None = None) -> WorkflowHandle[Any, Any]:
    memo = {**spec.memo, **({"operation_id": op.id, "user_id": op.user_id} if op else {})}
    return await client.start_workflow(
        spec.workflow, arg, id=spec.workflow_id, task_queue=CONTROL_QUEUE,
        id_conflict_policy=(WorkflowIDConflictPolicy.USE_EXISTING if spec.signal
                            else WorkflowIDConflictPolicy.FAIL),
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        start_signal=spec.signal,
        search_attributes=operation_attributes(spec.attributes_of or spec.workflow_id,
                                               spec.project_id, spec.action),
        memo=memo or None,
        static_summary=spec.summary or f"{spec.action} {spec.resource}",
        rpc_timeout=RPC_TIMEOUT)


async def _start_in_grace(client: Client, session: Session, spec: OperationSpec,
                          op: Operation) -> WorkflowHandle[Any, Any]:
    """Start; while the id is held by a workflow whose operation has already finished
    (it is only closing), wait a moment and try again."""
    arg = spec.make_input(op.id)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CLOSING_GRACE_S
    while True:
        try:
            return await _start(client, spec, arg, op)
        except WorkflowAlreadyStartedError:
            busy = session.exec(select(Operation.id).where(
                Operation.workflow_id == spec.workflow_id, Operation.status == "running",
                Operation.id != op.id)).first()
            session.commit()  # end the read: the next look sees what was committed since
            if busy is not None or loop.time() > deadline:
                raise
            await asyncio.sleep(CLOSING_POLL_S)


async def holder(client: Client, session: Session | None, workflow_id: str,
                 exclude: str | None = None) -> str:
    """The action of the workflow holding `workflow_id`: its search attribute (its
    type if it has none); if Temporal cannot say, the newest running Operation row on
    it; else "unknown"."""
    try:
        desc = await client.get_workflow_handle(workflow_id).describe(rpc_timeout=RPC_TIMEOUT)
        return desc.typed_search_attributes.get(SA_OPERATION) or desc.workflow_type
    except RPCError as e:
        log.info("describe of %s failed: %s", workflow_id, e)
    if session is None:
        return "unknown"
    row = session.exec(
        select(Operation).where(Operation.workflow_id == workflow_id,
                                Operation.status == "running", Operation.id != (exclude or ""))
        .order_by(col(Operation.started_at).desc())).first()
    return row.action if row else "unknown"

