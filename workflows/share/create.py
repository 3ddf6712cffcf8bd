"""CreateShare: the API inserted the share (creating, host set) and its Operation.
The share is ledgered on its storage host (DESIGN decision 9), then the storage
worker makes the subvolume (or a copy of a snapshot), its limit and its export; then
the share is available with its export locations. On any failure or cancellation
the backend's share is deleted again (and only then its ledger entry forgotten) and
the share goes to error with the fault: compensated, or failed when the cleanup
itself failed."""

from __future__ import annotations

import asyncio

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from vmflow.contracts.control_stub import ControlStub
    from vmflow.contracts.instances import LedgerEntries, LedgerEntry
    from vmflow.contracts.shares import (
        ShareLedger,
        ShareOp,
        ShareRef,
        ShareSpec,
        ShareUpdate,
    )
    from vmflow.contracts.storage_stub import StorageStub
    from vmflow.share_states import ShareStatus

from workflows._base.operation import owns_operation
from workflows._base.saga import Compensations
from workflows._base.steps import control
from workflows.share.steps import ShareWorkflow, on_storage


@workflow.defn(name="CreateShare")
class CreateShare(ShareWorkflow):
    @workflow.run
    @owns_operation
    async def run(self, op: ShareOp) -> list[str]:
        undo = Compensations()
        try:
            plan = await self.plan(ShareRef(op.share_id, op.snapshot_id), op.host)
            wait_s = plan.schedule_to_start_s
            spec = ShareSpec(op.share_id, plan.size_gb, op.snapshot_id, plan.source_share_id)
            entry = LedgerEntries([LedgerEntry(op.host, ShareLedger.SHARE, op.share_id)])

            async def delete_share() -> None:  # unexport, unmount, delete: gone is success
                await on_storage(op.host, StorageStub.delete_share, spec,
                                 schedule_to_start_s=wait_s, attempts=0, give_up_after_s=300)
                # forgotten only once the backend holds nothing of it
                await control(ControlStub.ledger_forget, entry)

            undo.push("share", delete_share)
            await control(ControlStub.ledger_record, entry)
            self.at("creating the share" + (" from a snapshot" if op.snapshot_id else ""))
            exported = await on_storage(op.host, StorageStub.create_share, spec,
                                        schedule_to_start_s=wait_s, timeout_s=300)
        except (Exception, asyncio.CancelledError) as err:
            async def in_error(fault: str) -> None:
                await control(ControlStub.share_set, ShareUpdate(
                    op.share_id, status=ShareStatus.ERROR, fault=fault))

            await self.undo_and_fail(err, undo, op.host, op.operation_id, "share", in_error)
        await control(ControlStub.share_set, ShareUpdate(
            op.share_id, status=ShareStatus.AVAILABLE, export_locations=exported.export_locations,
            clear_fault=True))
        await self.finish(op.operation_id, "succeeded")
        return exported.export_locations
