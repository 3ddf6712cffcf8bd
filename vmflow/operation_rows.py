"""Finishing an Operation row its workflow did not finish (docs/decisions.md, "No
operation row left running"): one rule for the workflow's own safety net
(workflows/_base/operation.py), the ledger reconciler (activities/control/
operation_rows.py) and the API when it terminates a workflow (api/services/preempt.py).

A settled row gets its status and fault, and the resource is taken out of the
operation's in-between state: an instance loses its task_state (its vm_state stays,
except `building`, which only a launch may hold: that becomes error); a share or share
snapshot still in a transitional status goes to the matching error status with the
fault, as Manila leaves one whose operation failed."""

from __future__ import annotations

from sqlmodel import Session, col, select

from vmflow.models import Instance, Operation, Share, ShareSnapshot, now
from vmflow.share_states import SHARE_STUCK, SNAPSHOT_STUCK, ShareStatus

# a closed workflow's status (WorkflowExecutionStatus name) -> the row's status and fault
CLOSED = {
    "COMPLETED": ("succeeded", None),
    "FAILED": ("failed", "the workflow failed"),
    "CANCELED": ("compensated", "the operation was cancelled"),
    "TERMINATED": ("failed", "the workflow was terminated"),
    "TIMED_OUT": ("failed", "the workflow timed out"),
    "CONTINUED_AS_NEW": ("failed", "the workflow continued as new without finishing"),
}


def newer_running(s: Session, op: Operation) -> bool:
    """Another operation on the same resource started after `op` and still runs: the
    resource's in-between state may be its own."""
    return s.exec(select(Operation.id).where(
        Operation.resource_id == op.resource_id, Operation.status == "running",
        Operation.id != op.id, Operation.workflow_id != "",
        col(Operation.started_at) >= op.started_at)).first() is not None


def settle(s: Session, op: Operation, status: str, error: str | None, *,
           release: bool = True) -> str:
    """Finish `op` (added to `s`, not committed) and, with `release`, take its resource
    out of the in-between state. Returns one line saying what changed."""
    op.status, op.last_error, op.finished_at = status, error, now()
    s.add(op)
    told = f"operation {op.id} ({op.action} of {op.resource_type} {op.resource_id}): {status}"
    if error:
        told += f" ({error})"
    if not release:
        return told
    fault = error or f"the {op.action} ended unfinished"
    if op.resource_type == "instance":
        inst = s.get(Instance, op.resource_id)
        if inst is not None and (inst.task_state is not None or inst.vm_state == "building"):
            was = inst.task_state
            inst.task_state, inst.updated_at = None, now()
            if inst.vm_state == "building" and status != "succeeded":
                inst.vm_state, inst.fault = "error", fault
            s.add(inst)
            told += f"; task_state {was} cleared, vm_state {inst.vm_state}"
    elif op.resource_type == "share":
        share = s.get(Share, op.resource_id)
        if share is not None and share.status in SHARE_STUCK and status != "succeeded":
            was, share.status = share.status, SHARE_STUCK[ShareStatus(share.status)]
            share.fault, share.updated_at = fault, now()
            s.add(share)
            told += f"; share {was} -> {share.status}"
    elif op.resource_type == "share_snapshot":
        snap = s.get(ShareSnapshot, op.resource_id)
        if snap is not None and snap.status in SNAPSHOT_STUCK and status != "succeeded":
            was, snap.status = snap.status, SNAPSHOT_STUCK[snap.status]
            snap.fault, snap.updated_at = fault, now()
            s.add(snap)
            told += f"; snapshot {was} -> {snap.status}"
    return told
