"""unrescue: boot the original disk again and drop the rescue disk."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from vmflow.contracts.actions import ActionStart, InstanceFacts
    from vmflow.contracts.host_stub import HostStub
    from vmflow.contracts.instances import OperationRef
    from vmflow.states import TRANSITIONS

from workflows._base.action import InstanceAction
from workflows._base.saga import Compensations


@workflow.defn(name="UnrescueInstance")
class UnrescueInstance(InstanceAction):
    @workflow.run
    async def run(self, ref: OperationRef) -> None:
        async def body(facts: InstanceFacts, undo: Compensations) -> None:
            # unrescue is its own undo: re-running it converges on the original domain
            await self.host(facts, HostStub.unrescue, "booting the original disk",
                            timeout_s=300)
            await self.wait_agent(facts)
            return None

        start = ActionStart(ref.instance_id, ref.operation_id, "unrescue")
        await self.run_action(start, TRANSITIONS[start.action].target, body)
