"""DeleteShareSnapshot: deleting, the storage worker removes the read-only snapshot
("gone" counts as done), its ledger entry is forgotten, the row goes. On failure the
row stays as error_deleting with the fault; deleting it again retries."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from vmflow.contracts.control_stub import ControlStub
    from vmflow.contracts.shares import (
        ShareLedger,
        ShareRef,
        ShareSnapshotOp,
        SnapshotSpec,
        SnapshotUpdate,
    )
    from vmflow.contracts.storage_stub import StorageStub

from workflows._base.operation import owns_operation
from workflows._base.steps import control, error_type
from workflows.share.steps import ShareWorkflow, on_storage, reason


@workflow.defn(name="DeleteShareSnapshot")
class DeleteShareSnapshot(ShareWorkflow):
    @workflow.run
    @owns_operation
    async def run(self, op: ShareSnapshotOp) -> None:
        spec = SnapshotSpec(op.share_id, op.snapshot_id)
        try:
            plan = await self.plan(ShareRef(op.share_id, op.snapshot_id), op.host)
        except Exception as err:  # e.g. the row is gone: nothing changed
            await self.finish(op.operation_id, "failed", reason(err, op.host))
            raise
        await control(ControlStub.share_snapshot_set, SnapshotUpdate(op.snapshot_id, "deleting"))
        try:
            self.at("deleting the snapshot")
            await on_storage(op.host, StorageStub.delete_snapshot, spec,
                             schedule_to_start_s=plan.schedule_to_start_s, timeout_s=300)
            await self.forget(op.host, ShareLedger.SNAPSHOT, op.snapshot_id)
        except Exception as err:
            fault = "delete failed: " + reason(err, op.host)
            await control(ControlStub.share_snapshot_set,
                          SnapshotUpdate(op.snapshot_id, "error_deleting", fault))
            await self.finish(op.operation_id, "failed", fault)
            raise ApplicationError(fault, type=error_type(err), non_retryable=True) from err
        await control(ControlStub.share_snapshot_finish, spec)
        await self.finish(op.operation_id, "succeeded")
