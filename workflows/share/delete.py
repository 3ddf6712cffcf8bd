"""DeleteShare (force=False: delete; force=True: the admin's force_delete).

The share goes to deleting, the storage worker removes the export, mount and
subvolume (each "gone" counts as done, so a half-made share or one with nothing on
the backend is fine), its ledger entry is forgotten, and the rows go (rules,
snapshots, share; the Operation row stays as history). force_delete works from any
status, also right after the API terminated a create stuck in creating, and removes
the share's snapshots too (each forgotten in the ledger once it is gone). A plain
delete of a share that still has snapshots is refused before anything changes. If
the backend cannot be cleaned, the share stays as error_deleting with the fault:
rows are never dropped while the backend may still hold the data."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from vmflow.contracts.control_stub import ControlStub
    from vmflow.contracts.errors import Errors
    from vmflow.contracts.shares import (
        ShareLedger,
        ShareOp,
        ShareRef,
        ShareSpec,
        ShareUpdate,
        SnapshotSpec,
        SnapshotUpdate,
    )
    from vmflow.contracts.storage_stub import StorageStub
    from vmflow.share_states import ShareStatus

from workflows._base.operation import owns_operation
from workflows._base.steps import control, error_type
from workflows.share.steps import ShareWorkflow, on_storage, reason


@workflow.defn(name="DeleteShare")
class DeleteShare(ShareWorkflow):
    @workflow.run
    @owns_operation
    async def run(self, op: ShareOp) -> None:
        try:
            plan = await self.plan(ShareRef(op.share_id), op.host)
        except Exception as err:  # e.g. the row is gone: nothing changed
            await self.finish(op.operation_id, "failed", reason(err, op.host))
            raise
        if plan.snapshot_ids and not op.force:
            fault = (f"share {op.share_id} has {len(plan.snapshot_ids)} snapshot(s); delete "
                     "them first (or force_delete)")
            await self.finish(op.operation_id, "failed", fault)
            raise ApplicationError(fault, type=Errors.INVALID_STATE, non_retryable=True)
        wait_s = plan.schedule_to_start_s
        await control(ControlStub.share_set,
                      ShareUpdate(op.share_id, status=ShareStatus.DELETING))
        try:
            for snapshot_id in plan.snapshot_ids:  # only with force (refused above otherwise)
                self.at("deleting snapshot " + snapshot_id)
                await control(ControlStub.share_snapshot_set,
                              SnapshotUpdate(snapshot_id, "deleting"))
                await on_storage(op.host, StorageStub.delete_snapshot,
                                 SnapshotSpec(op.share_id, snapshot_id),
                                 schedule_to_start_s=wait_s)
                await self.forget(op.host, ShareLedger.SNAPSHOT, snapshot_id)
                await control(ControlStub.share_snapshot_finish,
                              SnapshotSpec(op.share_id, snapshot_id))
            self.at("deleting the share")
            await on_storage(op.host, StorageStub.delete_share,
                             ShareSpec(op.share_id, plan.size_gb), schedule_to_start_s=wait_s,
                             timeout_s=300)
            await self.forget(op.host, ShareLedger.SHARE, op.share_id)
        except Exception as err:
            # nothing to undo (each step only removes); a retried delete finishes it
            fault = "delete failed: " + reason(err, op.host)
            await control(ControlStub.share_set, ShareUpdate(
                op.share_id, status=ShareStatus.ERROR_DELETING, fault=fault))
            await self.finish(op.operation_id, "failed", fault)
            raise ApplicationError(fault, type=error_type(err), non_retryable=True) from err
        await control(ControlStub.share_finish, ShareRef(op.share_id))
        await self.finish(op.operation_id, "succeeded")
