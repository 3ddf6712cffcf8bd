"""Interface detach (Nova's DELETE os-interface/{port_id}): the port's metadata
withdrawn, its NIC unplugged from the guest (live and from the definition), its DHCP
reservation and filter removed from the host, then the port deleted if vmflow made it
for the server (at launch or attach), unbound if it was given. Once the NIC is out of
the guest there is no going back: the later steps retry until they are done."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from vmflow.contracts.actions import ActionStart, InstanceFacts
    from vmflow.contracts.control_stub import ControlStub
    from vmflow.contracts.host_stub import HostStub
    from vmflow.contracts.metadata import MetadataRef
    from vmflow.contracts.networks import DetachPort, PortRef
    from vmflow.contracts.ports import DetachInterfaceRequest, GroupRefs, InterfacePort
    from vmflow.states import TRANSITIONS

from workflows._base.action import InstanceAction
from workflows._base.ports import groups_of, networking, refresh_members
from workflows._base.saga import Compensations
from workflows._base.steps import control, on_host


@workflow.defn(name="DetachInterface")
class DetachInterface(InstanceAction):
    @workflow.run
    async def run(self, req: DetachInterfaceRequest) -> None:
        groups = GroupRefs()

        async def body(facts: InstanceFacts, undo: Compensations) -> str:
            nonlocal groups
            groups = await groups_of(req.instance_id)
            net = await networking(req.instance_id)
            spec = next((p for p in net.ports if p.port_id == req.port_id), None)
            if spec is not None:
                ref = PortRef(spec.port_id, spec.network_id, spec.mac)
                self.at("withdrawing metadata", 10, facts.host)
                await on_host(facts.host, HostStub.withdraw_metadata,
                              MetadataRef(req.instance_id, spec.network_id, spec.ip))
                self.at("detaching the NIC", 30)
                await on_host(facts.host, HostStub.detach_port,
                              DetachPort(req.instance_id, ref))
                self.at("unplugging the port", 60)  # a filter in use waits for the detach
                await on_host(facts.host, HostStub.remove_port, ref, attempts=0,
                              give_up_after_s=3600)
            self.at("releasing the port", 80)
            await control(ControlStub.release_instance_port,
                          InterfacePort(req.instance_id, req.port_id))
            return f"port {req.port_id} detached"

        start = ActionStart(req.instance_id, req.operation_id, "detach-interface")
        await self.run_action(start, TRANSITIONS[start.action].target, body)
        await refresh_members(groups)
