"""rescue: boot a rescue image (by default the server's own image) with the
original disk attached second, same UUID; undo puts the original domain back. With
unrescue_after, a rescue that succeeded arms its timer (workflows/background/auto_unrescue.py)
as a child that outlives it."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from vmflow.contracts.actions import (
        ActionStart,
        AutoUnrescueRequest,
        InstanceFacts,
        RescueRequest,
    )
    from vmflow.contracts.actions import Rescue as RescueSpec
    from vmflow.contracts.host_stub import HostStub
    from vmflow.contracts.instances import FetchImage, InstanceRef
    from vmflow.names import auto_unrescue_workflow_id
    from vmflow.states import TRANSITIONS, VmState

from workflows._base.action import InstanceAction
from workflows._base.saga import Compensations
from workflows._base.steps import on_host
from workflows.background.auto_unrescue import AutoUnrescue


@workflow.defn(name="RescueInstance")
class RescueInstance(InstanceAction):
    @workflow.run
    async def run(self, req: RescueRequest) -> None:
        async def body(facts: InstanceFacts, undo: Compensations) -> None:
            assert facts.rescue_image is not None
            self.at("fetching rescue image")
            cached = await on_host(facts.host, HostStub.fetch_image,
                                   FetchImage(facts.rescue_image), heartbeat_s=30,
                                   timeout_s=1800)
            ref = InstanceRef(facts.instance_id)

            async def back_to_original() -> None:
                await on_host(facts.host, HostStub.unrescue, ref, attempts=0)
                if facts.vm_state != VmState.ACTIVE:  # it was off before the rescue
                    await on_host(facts.host, HostStub.power_off, ref, attempts=0)

            undo.push("rescue", back_to_original)
            self.at("booting the rescue image")
            await on_host(facts.host, HostStub.rescue, RescueSpec(
                facts.instance_id, cached.path, facts.rescue_image.disk_format), timeout_s=300)
            await self.wait_agent(facts)
            return None

        start = ActionStart(req.instance_id, req.operation_id, "rescue", req.image_id)
        await self.run_action(start, TRANSITIONS[start.action].target, body)
        if req.unrescue_after_s:
            await workflow.start_child_workflow(
                AutoUnrescue.run,
                AutoUnrescueRequest(req.instance_id, req.operation_id, req.unrescue_after_s),
                id=auto_unrescue_workflow_id(req.instance_id, req.operation_id),
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                static_summary=f"unrescue instance {req.instance_id} in "
                               f"{req.unrescue_after_s}s")
