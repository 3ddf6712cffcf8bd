"""Control activities of backup schedules: a tick's backup (started through the one
shared path, vmflow.backups.start_snapshot over vmflow.operations.start_operation),
waiting for it, and removing an instance's schedules when it is deleted. They run on
the control worker next to ControlActivities and, like them, are the only code of a
workflow that touches the database or the Temporal client."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, select
from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.service import RPCError

from activities.control.base import ClientActivities
from vmflow import backup_schedules
from vmflow.backups import start_snapshot
from vmflow.contracts.activity_names import ControlActs
from vmflow.contracts.instances import InstanceRef
from vmflow.contracts.snapshots import (
    AwaitOperation,
    OperationOutcome,
    ScheduledBackupRequest,
    ScheduledBackupStart,
)
from vmflow.models import BackupSchedule, Image, Instance, Operation, now
from vmflow.names import instance_workflow_id
from vmflow.operations import RPC_TIMEOUT, Claim, ResourceBusy, release
from vmflow.states import TRANSITIONS, TaskState, VmState, status

log = logging.getLogger(__name__)

HEARTBEAT_S = 10.0


def backup_name(inst: Instance, backup_type: str, at: datetime) -> str:
    """The image name of a scheduled backup: `<server>-<type>-<UTC time>`."""
    return f"{inst.name}-{backup_type}-{at.astimezone(UTC):%Y%m%dT%H%M%SZ}"[:255]


class BackupScheduleActivities(ClientActivities):
    # ---- a tick -------------------------------------------------------------------
    @activity.defn(name=ControlActs.START_SCHEDULED_BACKUP)
    async def start_scheduled_backup(self, req: ScheduledBackupRequest) -> ScheduledBackupStart:
        """Start the tick's backup on `instance-<id>`, or record why it is skipped (an
        action "backup" with result "skipped" and the reason as its fault).

        The Idempotency-Key of the rows is the tick's workflow run, so a retry after a
        lost worker finds what the first attempt did instead of starting twice (or
        tripping over its own backup and calling it a conflict)."""
        info = activity.info()
        key = f"{info.workflow_id}/{info.workflow_run_id}"
        with self.session() as s:
            earlier = s.exec(select(Operation).where(Operation.idempotency_key == key)).first()
            if earlier is not None:
                return await self._resume(s, earlier, req)
            inst = s.get(Instance, req.instance_id)
            row = s.get(BackupSchedule, req.schedule_id)
            if (inst is None or inst.vm_state == VmState.DELETED or inst.deleted_at is not None
                    or row is None):
                # its delete removes the schedules; one made in a race goes here
                await backup_schedules.remove(self.client, req.instance_id, req.schedule_id)
                if row is not None:
                    s.delete(row)
                    s.commit()
                return ScheduledBackupStart(False, reason="the server or the schedule is gone; "
                                                          "schedule removed")
            why = self._blocker(inst)
            if why:
                return self._skip(s, inst, row, key, why)
            try:
                started = await start_snapshot(
                    self.client, s, inst, name=backup_name(inst, req.backup_type, now()),
                    user_id=row.user_id, backup_type=req.backup_type, rotation=req.rotation,
                    metadata={"backup_schedule_id": row.id}, idempotency_key=key,
                    memo={"backup_schedule_id": row.id})
            except ResourceBusy as e:
                return self._skip(s, inst, row, key, f"another operation ({e.action}) is running")
            op = started.operation
            assert op.run_id is not None
            return ScheduledBackupStart(True, op.id, started.image.id, op.workflow_id, op.run_id)

    @staticmethod
    def _blocker(inst: Instance) -> str | None:
        """What the API would refuse with 409 (the lock does not stop a backup)."""
        backup = TRANSITIONS["backup"]
        if inst.vm_state not in backup.allowed_from:
            return (f"the server is {status(inst.vm_state, inst.task_state)}; a backup needs "
                    f"one of {', '.join(sorted(v.value for v in backup.allowed_from))}")
        if inst.task_state:
            return f"another operation ({inst.task_state}) is in progress"
        return None

    @staticmethod
    def _skip(s: Session, inst: Instance, row: BackupSchedule, key: str,
              why: str) -> ScheduledBackupStart:
        info = activity.info()
        reason = f"skipped: {why}"
        op = Operation(resource_type="instance", resource_id=inst.id, action="backup",
                       status="skipped", workflow_id=info.workflow_id or "",
                       run_id=info.workflow_run_id, project_id=inst.project_id,
                       user_id=row.user_id, idempotency_key=key, last_error=reason,
                       finished_at=now())
        s.add(op)
        s.commit()
        log.info("backup schedule %s of instance %s: %s", row.id, inst.id, reason)
        return ScheduledBackupStart(False, operation_id=op.id, reason=reason)

    async def _resume(self, s: Session, op: Operation,
                      req: ScheduledBackupRequest) -> ScheduledBackupStart:
        """An earlier attempt of this tick got as far as `op`."""
        if op.status == "skipped":
            return ScheduledBackupStart(False, operation_id=op.id, reason=op.last_error)
        handle = self.client.get_workflow_handle(instance_workflow_id(req.instance_id),
                                                 run_id=op.run_id)
        try:
            desc = await handle.describe(rpc_timeout=RPC_TIMEOUT)
            memo_op = await desc.memo_value("operation_id", None)
            image_id = await desc.memo_value("image_id", None)
        except RPCError as e:
            log.info("describe of the backup of %s failed: %s", req.instance_id, e)
            desc, memo_op, image_id = None, None, None
        if desc is not None and memo_op == op.id:
            op.run_id = desc.run_id
            s.add(op)
            s.commit()
            return ScheduledBackupStart(True, op.id, image_id if isinstance(image_id, str)
                                        else None, op.workflow_id, desc.run_id)
        # the first attempt died between committing the rows and starting the workflow:
        # nothing runs for them, so they end defined rather than queued forever
        reason = "skipped: the tick was interrupted before its backup started"
        op.status, op.last_error, op.finished_at = "skipped", reason, now()
        s.add(op)
        inst = s.get(Instance, req.instance_id)
        if inst is not None:  # the task_state its start claimed
            release(s, Claim(inst, "task_state", TaskState.IMAGE_SNAPSHOT))
        for image in s.exec(select(Image).where(Image.status == "queued",
                                                Image.owner == op.project_id)):
            props = image.properties or {}
            if (props.get("instance_uuid"), props.get("backup_schedule_id")) == (
                    req.instance_id, req.schedule_id):
                image.status = "error"
                image.properties = {**props, "error": reason}
                s.add(image)
        s.commit()
        return ScheduledBackupStart(False, operation_id=op.id, reason=reason)

    @activity.defn(name=ControlActs.AWAIT_OPERATION)
    async def await_operation(self, req: AwaitOperation) -> OperationOutcome:
        """Until the run ends (heartbeating, so a lost worker is noticed); then the
        Operation row's outcome, or the run's own when the row was never finished."""
        handle = self.client.get_workflow_handle(req.workflow_id, run_id=req.run_id)
        result = asyncio.ensure_future(handle.result(follow_runs=False))
        failure: str | None = None
        try:
            while not result.done():
                await asyncio.wait({result}, timeout=HEARTBEAT_S)
                activity.heartbeat()
            result.result()
        except WorkflowFailureError as e:
            failure = str(e.cause) if e.cause else str(e)
        finally:
            result.cancel()
        with self.session() as s:
            op = s.get(Operation, req.operation_id)
            if op is not None and op.status != "running":
                return OperationOutcome(op.status, op.last_error)
        return OperationOutcome("failed" if failure else "succeeded", failure)

    # ---- delete -------------------------------------------------------------------
    @activity.defn(name=ControlActs.DELETE_BACKUP_SCHEDULES)
    async def delete_backup_schedules(self, ref: InstanceRef) -> int:
        """Remove every backup schedule of the instance, Temporal Schedule first, then
        its row (idempotent: a retry finds what is left). Returns how many rows went."""
        removed = 0
        with self.session() as s:
            rows = s.exec(select(BackupSchedule)
                          .where(BackupSchedule.instance_id == ref.instance_id)).all()
            for row in rows:
                await backup_schedules.remove(self.client, row.instance_id, row.id)
                s.delete(row)
                s.commit()
                removed += 1
        return removed

    def all(self) -> list[Callable[..., Any]]:
        return [self.start_scheduled_backup, self.await_operation,
                self.delete_backup_schedules]
