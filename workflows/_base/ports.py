"""A server's NICs on a host, for every workflow that puts the guest somewhere: launch
and unshelve (spawn), resize and cold migration's destination, evacuation, live
migration's destination (before the guest comes: libvirt refuses a NIC whose nwfilter
is missing there).

plug: the instance's networks (bridge, VXLAN to every registered host, DHCP) and its
ports (DHCP reservation by MAC, nwfilter with the security groups) ensured on the
host; returns the NICs its domain gets. unplug: the ports' reservations and filters
gone from a host once the domain there is gone. bind: the ports ACTIVE on the host
the guest runs on (or DOWN)."""

from __future__ import annotations

import asyncio

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from vmflow.contracts.control_stub import ControlStub
    from vmflow.contracts.host_stub import HostStub
    from vmflow.contracts.instances import InstanceRef, Nic
    from vmflow.contracts.networks import PortRef
    from vmflow.contracts.ports import GroupRefs, InstanceNetworking, PortBinding

from workflows._base.saga import Compensations
from workflows._base.steps import all_of, control, describe, on_host

# collapsed: the recorded histories carry the marker (docs/decisions.md, "Replay baseline")
PATCH = "instance-nics"


async def networking(instance_id: str) -> InstanceNetworking:
    return await control(ControlStub.instance_networking, InstanceRef(instance_id))


async def plug(host: str, instance_id: str, undo: Compensations | None = None) -> list[Nic]:
    """The instance's networks and ports on `host`; undo (pushed first): the ports'
    reservations and filters removed there (the networks stay: other ports may use
    them; the network reconciler removes unused ones)."""
    net = await networking(instance_id)
    if not net.ports:
        return []
    if undo is not None:
        undo.push("ports", lambda: remove_ports(host, net))
    for spec in net.networks:
        await on_host(host, HostStub.ensure_network, spec)
    await all_of(*[on_host(host, HostStub.ensure_port, p) for p in net.ports])
    return list(net.nics)


async def remove_ports(host: str, net: InstanceNetworking, give_up_after_s: float = 3600
                       ) -> None:
    """Retried until the domain's NICs are gone (a filter in use cannot be undefined)."""
    await all_of(*[on_host(host, HostStub.remove_port, PortRef(p.port_id, p.network_id, p.mac),
                           attempts=0, give_up_after_s=give_up_after_s) for p in net.ports])


async def unplug(host: str, instance_id: str, give_up_after_s: float = 3600) -> None:
    """The instance's ports gone from `host`; call once its domain there is gone."""
    net = await networking(instance_id)
    if net.ports:
        await remove_ports(host, net, give_up_after_s)


async def bind(instance_id: str, host: str) -> None:
    """The ports ACTIVE with binding_host_id `host`; host "": DOWN, unbound."""
    await control(ControlStub.bind_instance_ports, PortBinding(instance_id, host))


async def groups_of(instance_id: str) -> GroupRefs:
    return await control(ControlStub.instance_groups, InstanceRef(instance_id))


async def refresh_members(groups: GroupRefs) -> None:
    """The filters of plugged ports whose rules name these groups as remote, rewritten
    with the groups' members as they are now (a server's ports came or went). Best
    effort: a host that does not answer soon is left to the network reconciler."""
    if not groups.group_ids:
        return
    found = await control(ControlStub.remote_group_ports, groups)
    results = await asyncio.gather(*[
        on_host(hp.host, HostStub.ensure_port, hp.port, schedule_to_start_s=30, attempts=3,
                give_up_after_s=120) for hp in found.ports], return_exceptions=True)
    for hp, r in zip(found.ports, results, strict=True):
        if isinstance(r, BaseException):
            workflow.logger.warning("port %s on %s keeps its old rules: %s",
                                    hp.port.port_id, hp.host, describe(r))
