"""ExtendShare: extending, the storage worker raises the share's limit, available
with the new size; on failure available with the old size and the fault."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from vmflow.contracts.shares import ShareResizeOp
    from vmflow.share_states import ShareStatus

from workflows._base.operation import owns_operation
from workflows.share.steps import ShareWorkflow


@workflow.defn(name="ExtendShare")
class ExtendShare(ShareWorkflow):
    @workflow.run
    @owns_operation
    async def run(self, op: ShareResizeOp) -> None:
        await self.resize(op, "extend", ShareStatus.EXTENDING, ShareStatus.EXTENDING_ERROR)
