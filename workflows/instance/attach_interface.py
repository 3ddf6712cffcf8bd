"""Interface attach (Nova's POST os-interface): a port made on a network (or a given
port bound) with its NIC row, plugged on the instance's host (network and DHCP
reservation, security-group filter), a NIC hot-plugged (live if the guest runs, and in
its definition), the port bound ACTIVE, the metadata documents published again. Each
step's undo is pushed before the step runs, so a failure, a cancel or a retry after a
dead worker leaves no port row, filter or DHCP reservation behind."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from vmflow.contracts.actions import ActionStart, InstanceFacts
    from vmflow.contracts.control_stub import ControlStub
    from vmflow.contracts.host_stub import HostStub
    from vmflow.contracts.networks import AttachPort, DetachPort, PortRef
    from vmflow.contracts.ports import AttachInterfaceRequest, InterfacePort
    from vmflow.states import TRANSITIONS

from workflows._base.action import InstanceAction
from workflows._base.metadata import publish_metadata
from workflows._base.ports import bind, groups_of, networking, refresh_members
from workflows._base.saga import Compensations
from workflows._base.steps import control, on_host


@workflow.defn(name="AttachInterface")
class AttachInterface(InstanceAction):
    @workflow.run
    async def run(self, req: AttachInterfaceRequest) -> str:
        attached: list[str] = []

        async def body(facts: InstanceFacts, undo: Compensations) -> str:
            self.at("making the port")
            made = InterfacePort(req.instance_id, req.port_id, req.operation_id)
            undo.push("port", lambda: control(ControlStub.release_instance_port, made))
            port = await control(ControlStub.attach_instance_port, req)
            net = await networking(req.instance_id)
            spec = next((p for p in net.ports if p.port_id == port.port_id), None)
            if spec is None:  # a port with no address: nothing a host could reserve
                raise ApplicationError(
                    f"port {port.port_id} has no IPv4 address", type="InvalidInput",
                    non_retryable=True)
            ref = PortRef(spec.port_id, spec.network_id, spec.mac)
            self.at("plugging the port", 30, facts.host)
            undo.push("host port", lambda: on_host(facts.host, HostStub.remove_port, ref,
                                                   attempts=0, give_up_after_s=3600))
            network = next(n for n in net.networks if n.network_id == spec.network_id)
            await on_host(facts.host, HostStub.ensure_network, network)
            await on_host(facts.host, HostStub.ensure_port, spec)
            self.at("attaching the NIC", 60)
            undo.push("nic", lambda: on_host(facts.host, HostStub.detach_port,
                                             DetachPort(req.instance_id, ref), attempts=0,
                                             give_up_after_s=3600))
            await on_host(facts.host, HostStub.attach_port, AttachPort(req.instance_id, spec))
            self.at("binding the port", 80)
            await bind(req.instance_id, facts.host)
            await publish_metadata(facts.host, req.instance_id)
            attached.append(spec.port_id)
            return f"port {spec.port_id} attached"

        start = ActionStart(req.instance_id, req.operation_id, "attach-interface")
        await self.run_action(start, TRANSITIONS[start.action].target, body)
        # best effort: peers whose rules name the port's groups learn its address
        await refresh_members(await groups_of(req.instance_id))
        return attached[0]
