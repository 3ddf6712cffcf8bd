"""One tick of a backup schedule (started by its Temporal Schedule, overlap SKIP).

Temporal appends the tick's time to this workflow's id, so it cannot hold
`instance-<id>` itself. Its first activity makes the backup's image record and
Operation row and starts SnapshotInstance on `instance-<id>` (the same path as the
API's createBackup); when another operation holds the instance, the tick is skipped
and recorded as an action "backup" with result "skipped".

It then waits for the backup to end. So overlap SKIP means what it says (no tick
starts while the previous tick's backup runs), the schedule's running and recent
actions in the Web UI are the real backups, and a failed backup fails this run.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from vmflow.contracts.control_stub import ControlStub
    from vmflow.contracts.snapshots import (
        AwaitOperation,
        ScheduledBackupRequest,
        ScheduledBackupResult,
    )
    from vmflow.names import CONTROL_QUEUE

from workflows._base.steps import control, retry

# how long a tick follows its backup (a snapshot of a large disk takes a while)
FOLLOW_FOR = timedelta(hours=24)


@workflow.defn(name="ScheduledBackup")
class ScheduledBackup:
    @workflow.run
    async def run(self, req: ScheduledBackupRequest) -> ScheduledBackupResult:
        start = await control(ControlStub.start_scheduled_backup, req)
        if not start.started:
            return ScheduledBackupResult("skipped", start.operation_id, None, start.reason)
        assert start.operation_id and start.workflow_id and start.run_id
        # control() with a day's timeouts and a heartbeat: it follows the backup
        outcome = await workflow.execute_activity_method(
            ControlStub.await_operation,
            AwaitOperation(start.operation_id, start.workflow_id, start.run_id),
            task_queue=CONTROL_QUEUE,
            start_to_close_timeout=FOLLOW_FOR,
            schedule_to_close_timeout=FOLLOW_FOR,
            heartbeat_timeout=timedelta(seconds=60),
            retry_policy=retry(0),
        )
        if outcome.status != "succeeded":
            raise ApplicationError(
                f"backup to image {start.image_id} {outcome.status}: "
                f"{outcome.error or 'no error recorded'} (operation {start.operation_id})",
                type="BackupFailed", non_retryable=True)
        return ScheduledBackupResult("succeeded", start.operation_id, start.image_id, None)
