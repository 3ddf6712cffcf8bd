"""CreateShareSnapshot: the API inserted the snapshot row (creating). The snapshot
is ledgered on the storage host (DESIGN decision 9), then the storage worker takes a
read-only btrfs snapshot of the share; the row goes to available. On failure or
cancellation the snapshot is deleted on the backend again (then its ledger entry
forgotten) and the row goes to error with the fault (never silently deleted):
compensated, or failed when that cleanup failed. The share itself is not touched."""

from __future__ import annotations

import asyncio

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from vmflow.contracts.control_stub import ControlStub
    from vmflow.contracts.instances import LedgerEntries, LedgerEntry
    from vmflow.contracts.shares import (
        ShareLedger,
        ShareRef,
        ShareSnapshotOp,
        SnapshotSpec,
        SnapshotUpdate,
    )
    from vmflow.contracts.storage_stub import StorageStub

from workflows._base.operation import owns_operation
from workflows._base.saga import Compensations
from workflows._base.steps import control
from workflows.share.steps import ShareWorkflow, on_storage


@workflow.defn(name="CreateShareSnapshot")
class CreateShareSnapshot(ShareWorkflow):
    @workflow.run
    @owns_operation
    async def run(self, op: ShareSnapshotOp) -> None:
        undo = Compensations()
        spec = SnapshotSpec(op.share_id, op.snapshot_id)
        entry = LedgerEntries([LedgerEntry(op.host, ShareLedger.SNAPSHOT, op.snapshot_id)])
        try:
            plan = await self.plan(ShareRef(op.share_id, op.snapshot_id), op.host)
            wait_s = plan.schedule_to_start_s

            async def delete_snapshot() -> None:  # gone is success
                await on_storage(op.host, StorageStub.delete_snapshot, spec,
                                 schedule_to_start_s=wait_s, attempts=0, give_up_after_s=300)
                await control(ControlStub.ledger_forget, entry)  # once it is gone

            undo.push("snapshot", delete_snapshot)
            await control(ControlStub.ledger_record, entry)
            self.at("taking the snapshot")
            await on_storage(op.host, StorageStub.create_snapshot, spec,
                             schedule_to_start_s=wait_s, timeout_s=300)
        except (Exception, asyncio.CancelledError) as err:
            async def in_error(fault: str) -> None:
                await control(ControlStub.share_snapshot_set,
                              SnapshotUpdate(op.snapshot_id, "error", fault))

            await self.undo_and_fail(err, undo, op.host, op.operation_id, "snapshot", in_error)
        await control(ControlStub.share_snapshot_set, SnapshotUpdate(op.snapshot_id, "available"))
        await self.finish(op.operation_id, "succeeded")
