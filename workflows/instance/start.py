"""os-start: power on a stopped server and wait for its agent."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from vmflow.contracts.actions import ActionStart, InstanceFacts
    from vmflow.contracts.host_stub import HostStub
    from vmflow.contracts.instances import InstanceRef, OperationRef
    from vmflow.states import TRANSITIONS

from workflows._base.action import InstanceAction
from workflows._base.saga import Compensations
from workflows._base.steps import on_host


@workflow.defn(name="StartInstance")
class StartInstance(InstanceAction):
    @workflow.run
    async def run(self, ref: OperationRef) -> None:
        async def body(facts: InstanceFacts, undo: Compensations) -> None:
            undo.push("power on", lambda: on_host(facts.host, HostStub.power_off,
                                                  InstanceRef(facts.instance_id), attempts=0))
            await self.host(facts, HostStub.power_on, "powering on")
            await self.wait_agent(facts)
            return None

        start = ActionStart(ref.instance_id, ref.operation_id, "start")
        await self.run_action(start, TRANSITIONS[start.action].target, body)
