"""The step of a rescue's timer (workflows/background/auto_unrescue.py): start the unrescue the
rescuer asked for, as the API would, or say why there is nothing to do.

The Idempotency-Key of the unrescue's Operation row is `auto-unrescue/<rescue op>`,
so a retry after a lost worker finds what the first attempt did instead of starting
twice; a row whose workflow never started (the worker died in between) is dropped and
the start is made again."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlmodel import Session, col, select
from temporalio import activity

from activities.control.base import ClientActivities
from vmflow.contracts.actions import AutoUnrescueRequest, TimerStep
from vmflow.contracts.activity_names import ControlActs
from vmflow.contracts.instances import OperationRef
from vmflow.models import Instance, Operation, now
from vmflow.operations import (
    Claim,
    ResourceBusy,
    instance_spec,
    release,
    start_operation,
)
from vmflow.states import TaskState, VmState


class AutoUnrescueActivities(ClientActivities):
    @activity.defn(name=ControlActs.START_AUTO_UNRESCUE)
    async def start_auto_unrescue(self, req: AutoUnrescueRequest) -> TimerStep:
        key = f"auto-unrescue/{req.rescue_operation_id}"
        with self.session() as s:
            earlier = s.exec(select(Operation).where(Operation.idempotency_key == key)).first()
            if earlier is not None:
                if earlier.status == "skipped":
                    return TimerStep(reason=earlier.last_error)
                if earlier.status != "running" or await self.started(earlier):
                    return TimerStep(operation_id=earlier.id)
                # the first attempt died before its workflow started: its row and claim go
                self._forget(s, earlier)
            inst = s.get(Instance, req.instance_id)
            why = self._nothing_to_do(s, inst, req)
            if why is not None:
                return TimerStep(reason=why)
            assert inst is not None
            if inst.locked:
                return self._skip(s, inst, key, "the server is locked: left rescued")
            if inst.task_state:
                return TimerStep(busy=True, reason=f"another operation "
                                                          f"({inst.task_state}) is in progress")
            return await self._start(s, inst, req, key)

    @staticmethod
    def _nothing_to_do(s: Session, inst: Instance | None, req: AutoUnrescueRequest
                       ) -> str | None:
        if inst is None or inst.deleted_at is not None or inst.vm_state == VmState.DELETED:
            return "the server is gone"
        latest = s.exec(select(Operation).where(
            Operation.resource_id == inst.id, Operation.action == "rescue",
            Operation.status == "succeeded").order_by(col(Operation.finished_at).desc())).first()
        if latest is None or latest.id != req.rescue_operation_id:
            return "the server was rescued again since; that rescue's timer decides"
        if inst.vm_state != VmState.RESCUED:
            return f"the server is {inst.vm_state}, no longer rescued"
        return None

    async def _start(self, s: Session, inst: Instance, req: AutoUnrescueRequest,
                     key: str) -> TimerStep:
        rescue = s.get(Operation, req.rescue_operation_id)
        assert rescue is not None  # _nothing_to_do found it
        spec = instance_spec(
            inst, "unrescue", rescue.user_id, lambda op_id: OperationRef(inst.id, op_id),
            idempotency_key=key, memo={"auto": True},
            summary=f"unrescue instance {inst.id} (its rescue's timer)")
        try:
            op = await start_operation(self.client, s, spec)
        except ResourceBusy as e:  # nothing of this attempt remains
            return TimerStep(busy=True, reason=str(e))
        activity.logger.info("auto-unrescue of instance %s: operation %s", inst.id, op.id)
        return TimerStep(operation_id=op.id)

    @staticmethod
    def _forget(s: Session, op: Operation) -> None:
        inst = s.get(Instance, op.resource_id)
        if inst is not None:
            release(s, Claim(inst, "task_state", TaskState.UNRESCUING))
        s.delete(op)
        s.commit()

    @staticmethod
    def _skip(s: Session, inst: Instance, key: str, why: str) -> TimerStep:
        """Recorded in the action history as an unrescue that did not run."""
        info = activity.info()
        s.add(Operation(resource_type="instance", resource_id=inst.id, action="unrescue",
                        status="skipped", workflow_id=info.workflow_id or "",
                        run_id=info.workflow_run_id, project_id=inst.project_id,
                        user_id=inst.user_id, idempotency_key=key, last_error=f"skipped: {why}",
                        finished_at=now()))
        s.commit()
        return TimerStep(reason=why)

    def all(self) -> list[Callable[..., Any]]:
        return [self.start_auto_unrescue]
