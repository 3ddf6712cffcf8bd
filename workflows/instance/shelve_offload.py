"""shelveOffload: a shelved server leaves its host. The domain is destroyed and
undefined, its files deleted, its claim and ledger entries released, its host
cleared: SHELVED_OFFLOADED, with nothing on any host; the shelve image holds its disk.
Each step only removes and is idempotent, so a retry finishes what a failed one began;
there is nothing to undo. Also run by a shelve at once (VMFLOW_SHELVED_OFFLOAD_TIME=0)
and by its timer (workflows/background/shelve_offload_timer.py)."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from vmflow.contracts.actions import ActionStart, InstanceFacts
    from vmflow.contracts.control_stub import ControlStub
    from vmflow.contracts.host_stub import HostStub
    from vmflow.contracts.instances import InstanceHost, InstanceRef, InstanceUpdate, OperationRef
    from vmflow.states import TRANSITIONS, VmState

from workflows._base.action import InstanceAction
from workflows._base.guest_services import PATCH as SERVICES
from workflows._base.guest_services import floating_specs, remove_floating_ips
from workflows._base.ports import PATCH, bind, unplug
from workflows._base.saga import Compensations
from workflows._base.steps import Reporting, control, on_host


async def offload(wf: Reporting, host: str, instance_id: str) -> None:
    """The offload steps, in the order that never leaves a domain without its disk."""
    ref = InstanceRef(instance_id)
    wf.at("destroying the domain", 80)
    await on_host(host, HostStub.destroy_domain, ref)
    workflow.deprecate_patch(SERVICES)  # its floating IPs NATed nowhere (unshelve NATs them)
    await remove_floating_ips(host, await floating_specs(instance_id))
    workflow.deprecate_patch(PATCH)  # its ports leave the host with it (kept, unbound)
    await unplug(host, instance_id)
    await bind(instance_id, "")
    wf.at("deleting the instance files", 90)
    await on_host(host, HostStub.delete_instance_files, ref)
    wf.at("releasing the claim", 95)
    await control(ControlStub.release_claim, InstanceHost(instance_id, host))
    await control(ControlStub.ledger_forget_instance, ref)
    await control(ControlStub.update_instance, InstanceUpdate(instance_id, clear_host=True))


def still_shelved(real: str) -> str:
    """A shelved server's domain is off on purpose: off (or with its saved memory, if it
    was shelved while suspended) means still shelved, not stopped."""
    return VmState.SHELVED if real in (VmState.STOPPED, VmState.SUSPENDED) else real


@workflow.defn(name="ShelveOffloadInstance")
class ShelveOffloadInstance(InstanceAction):
    @workflow.run
    async def run(self, ref: OperationRef) -> None:
        async def body(facts: InstanceFacts, undo: Compensations) -> None:
            await offload(self, facts.host, facts.instance_id)
            return None

        start = ActionStart(ref.instance_id, ref.operation_id, "shelve-offload")
        await self.run_action(start, TRANSITIONS[start.action].target, body)

    async def real_state(self, facts: InstanceFacts) -> str:
        return still_shelved(await super().real_state(facts))
