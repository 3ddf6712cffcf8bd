"""ShrinkShare: shrinking, the storage worker lowers the share's limit (refused with
ShareErrors.SHRINK_BELOW_USED when the share holds more), available with the new
size; on failure available with the old size and the fault."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from vmflow.contracts.shares import ShareResizeOp
    from vmflow.share_states import ShareStatus

from workflows._base.operation import owns_operation
from workflows.share.steps import ShareWorkflow


@workflow.defn(name="ShrinkShare")
class ShrinkShare(ShareWorkflow):
    @workflow.run
    @owns_operation
    async def run(self, op: ShareResizeOp) -> None:
        await self.resize(op, "shrink", ShareStatus.SHRINKING, ShareStatus.SHRINKING_ERROR)
