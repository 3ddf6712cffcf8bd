"""os-stop: a clean shutdown through the agent or ACPI; destroyed after the timeout."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from vmflow.contracts.actions import ActionStart, InstanceFacts, Shutdown
    from vmflow.contracts.host_stub import HostStub
    from vmflow.contracts.instances import OperationRef
    from vmflow.states import TRANSITIONS

from workflows._base.action import InstanceAction
from workflows._base.saga import Compensations
from workflows._base.steps import on_host


@workflow.defn(name="StopInstance")
class StopInstance(InstanceAction):
    @workflow.run
    async def run(self, ref: OperationRef) -> None:
        async def body(facts: InstanceFacts, undo: Compensations) -> str | None:
            # nothing to undo: a guest that is off stays off (the real state decides)
            self.at("shutting down")
            result = await on_host(facts.host, HostStub.shutdown,
                                   Shutdown(facts.instance_id, facts.stop_timeout_s),
                                   heartbeat_s=15, timeout_s=facts.stop_timeout_s + 60)
            if not result.clean:
                return f"the guest ignored shutdown for {facts.stop_timeout_s:g}s; destroyed"
            return None

        start = ActionStart(ref.instance_id, ref.operation_id, "stop")
        await self.run_action(start, TRANSITIONS[start.action].target, body)
