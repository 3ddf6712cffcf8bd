"""unpause: run the vCPUs again."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from vmflow.contracts.actions import ActionStart, InstanceFacts
    from vmflow.contracts.host_stub import HostStub
    from vmflow.contracts.instances import OperationRef
    from vmflow.states import TRANSITIONS

from workflows._base.action import InstanceAction
from workflows._base.saga import Compensations


@workflow.defn(name="UnpauseInstance")
class UnpauseInstance(InstanceAction):
    @workflow.run
    async def run(self, ref: OperationRef) -> None:
        async def body(facts: InstanceFacts, undo: Compensations) -> None:
            # one libvirt call: on failure the real domain state is recorded as is
            await self.host(facts, HostStub.unpause, "unpausing", timeout_s=300)
            return None

        start = ActionStart(ref.instance_id, ref.operation_id, "unpause")
        await self.run_action(start, TRANSITIONS[start.action].target, body)
