"""resume: restore a suspended server from its managed save."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from vmflow.contracts.actions import ActionStart, InstanceFacts
    from vmflow.contracts.host_stub import HostStub
    from vmflow.contracts.instances import OperationRef
    from vmflow.states import TRANSITIONS

from workflows._base.action import InstanceAction
from workflows._base.saga import Compensations


@workflow.defn(name="ResumeInstance")
class ResumeInstance(InstanceAction):
    @workflow.run
    async def run(self, ref: OperationRef) -> None:
        async def body(facts: InstanceFacts, undo: Compensations) -> None:
            # libvirt starts a domain with a managed-save image by restoring it
            await self.host(facts, HostStub.power_on, "restoring memory", timeout_s=300)
            await self.wait_agent(facts)
            return None

        start = ActionStart(ref.instance_id, ref.operation_id, "resume")
        await self.run_action(start, TRANSITIONS[start.action].target, body)
