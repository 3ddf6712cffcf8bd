"""reboot: SOFT is a clean shutdown then power on, escalating to HARD when the guest
ignores the shutdown (as Nova's libvirt driver does); HARD is destroy and power on."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from vmflow.contracts.actions import ActionStart, InstanceFacts, RebootRequest, Shutdown
    from vmflow.contracts.control_stub import ControlStub
    from vmflow.contracts.host_stub import HostStub
    from vmflow.contracts.instances import InstanceUpdate
    from vmflow.states import TRANSITIONS

from workflows._base.action import InstanceAction
from workflows._base.saga import Compensations
from workflows._base.steps import control, on_host


@workflow.defn(name="RebootInstance")
class RebootInstance(InstanceAction):
    @workflow.run
    async def run(self, req: RebootRequest) -> None:
        async def body(facts: InstanceFacts, undo: Compensations) -> str | None:
            note = None
            if req.hard:
                await self.host(facts, HostStub.power_off, "powering off")
            else:
                self.at("shutting down")
                result = await on_host(facts.host, HostStub.shutdown,
                                       Shutdown(facts.instance_id, facts.reboot_timeout_s),
                                       heartbeat_s=15, timeout_s=facts.reboot_timeout_s + 60)
                if not result.clean:
                    note = (f"soft reboot ignored for {facts.reboot_timeout_s:g}s; "
                            "escalated to hard")
                    await control(ControlStub.update_instance, InstanceUpdate(
                        facts.instance_id, task_state="rebooting_hard"))
            await self.host(facts, HostStub.power_on, "powering on")
            await self.wait_agent(facts)
            return note

        action = "reboot-hard" if req.hard else "reboot-soft"
        start = ActionStart(req.instance_id, req.operation_id, action)
        await self.run_action(start, TRANSITIONS[start.action].target, body)
