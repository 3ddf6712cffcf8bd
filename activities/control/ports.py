"""A server's ports, the control side (issue 12): the launch's NICs made into ports
(device_owner compute:nova, device_id the instance; addresses from the atomic IP
allocation, vmflow.ip_allocation) or given ports bound; released again (made ones
deleted, their addresses freed; given ones unbound); and what a host needs to plug
the instance (its networks, its ports with the security groups' rules expanded, and
the NICs of its domain), which any workflow that puts the guest on a host asks for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlmodel import Session, col, select, update
from temporalio import activity

from activities.control.base import DbActivities
from activities.errors import permanent
from vmflow.contracts.activity_names import ControlActs
from vmflow.contracts.errors import Errors
from vmflow.contracts.instances import InstanceRef, Nic
from vmflow.contracts.networks import NetworkSpec, PortSpec, SecurityGroupRule
from vmflow.contracts.ports import (
    GroupRefs,
    HostPort,
    HostPorts,
    InstanceNetworking,
    PortBinding,
)
from vmflow.ip_allocation import FixedIpRequest, add_port, remove_port
from vmflow.ip_allocation import PortSpec as NewPort
from vmflow.ipam import IpamError
from vmflow.models import Host, Instance, now
from vmflow.network_models import (
    FloatingIp,
    InstanceNic,
    IpAllocation,
    Network,
    Port,
    PortSecurityGroup,
    Subnet,
)
from vmflow.network_models import (
    SecurityGroupRule as RuleRow,
)

DEVICE_OWNER = "compute:nova"  # Nova's device_owner for a server's ports
PORT_IN_USE = "PortInUse"


def make_port(s: Session, inst: Instance, network_id: str, fixed_ip: str | None,
              security_group_ids: list[str], port_id: str | None = None) -> Port:
    """A new port of the server (launch's NICs, an interface attach), its address from
    the atomic allocation; exhausted, or the fixed IP taken since the API looked:
    a permanent error with IPAM's type."""
    fixed = [FixedIpRequest(ip_address=fixed_ip)] if fixed_ip else None
    try:
        port, _ = add_port(s, NewPort(
            network_id=network_id, project_id=inst.project_id, device_id=inst.id,
            device_owner=DEVICE_OWNER, fixed_ips=fixed,
            security_group_ids=list(security_group_ids), port_id=port_id))
    except IpamError as e:
        raise permanent(e.message, e.type) from e
    return port


def nic_rows(session: Session, instance_id: str) -> list[InstanceNic]:
    return list(session.exec(select(InstanceNic).where(InstanceNic.instance_id == instance_id)
                             .order_by(col(InstanceNic.position))))


def instance_ports(session: Session, instance_id: str) -> list[Port]:
    """The ports bound to the instance, its launch's NICs first in their order."""
    order = {r.port_id: r.position for r in nic_rows(session, instance_id)}
    ports = session.exec(select(Port).where(Port.device_id == instance_id,
                                            Port.device_owner == DEVICE_OWNER))
    return sorted(ports, key=lambda p: (order.get(p.id, len(order)), p.created_at))


def port_rules(session: Session, port_id: str) -> list[SecurityGroupRule]:
    """The port's groups' rules as a host applies them: a remote group becomes one rule
    per address of the group's member ports (remote_ip_prefix <ip>/32); a group with no
    member addresses allows nothing through that rule."""
    groups = list(session.exec(select(PortSecurityGroup.security_group_id)
                               .where(PortSecurityGroup.port_id == port_id)))
    rows = session.exec(select(RuleRow).where(col(RuleRow.security_group_id).in_(groups))
                        .order_by(col(RuleRow.created_at), col(RuleRow.id)))
    out: list[SecurityGroupRule] = []
    members: dict[str, list[str]] = {}
    for r in rows:
        prefixes: list[str | None] = [r.remote_ip_prefix]
        if r.remote_group_id is not None:
            if r.remote_group_id not in members:
                members[r.remote_group_id] = sorted(set(session.exec(
                    select(IpAllocation.ip_address)
                    .join(PortSecurityGroup,
                          col(PortSecurityGroup.port_id) == col(IpAllocation.port_id))
                    .where(PortSecurityGroup.security_group_id == r.remote_group_id))))
            prefixes = [f"{ip}/32" for ip in members[r.remote_group_id]]
        for prefix in prefixes:
            rule = SecurityGroupRule(r.direction, r.ethertype, r.protocol, r.port_range_min,
                                     r.port_range_max, prefix)
            if rule not in out:
                out.append(rule)
    return out


def network_spec(session: Session, network_id: str) -> NetworkSpec:
    """The network as every host has it; peers: every registered host's underlay
    address (a host skips its own), so a port landing on a new host needs no change
    on the others (docs/decisions.md)."""
    net = session.get(Network, network_id)
    subnet = session.exec(select(Subnet).where(Subnet.network_id == network_id)).first()
    if net is None or subnet is None:
        raise permanent(f"network {network_id} is gone or has no subnet", Errors.NOT_FOUND)
    peers = sorted({a for a in session.exec(select(Host.migration_address)) if a})
    return NetworkSpec(net.id, net.segmentation_id, subnet.cidr, subnet.gateway_ip,
                       subnet.enable_dhcp, list(subnet.dns_nameservers), net.mtu, peers)


class PortActivities(DbActivities):
    @activity.defn(name=ControlActs.CREATE_INSTANCE_PORTS)
    def create_instance_ports(self, ref: InstanceRef) -> None:
        """Every NIC of the launch a port, in one transaction: all or none. Again after
        a commit: the rows have their port ids, nothing is made twice."""
        with self.session() as s:
            inst = s.get(Instance, ref.instance_id)
            if inst is None:
                raise permanent(f"instance {ref.instance_id} does not exist", Errors.NOT_FOUND)
            for row in nic_rows(s, inst.id):
                if row.preserve_on_delete:
                    self._bind_given(s, row, inst.id)
                elif row.port_id is None:
                    row.port_id = make_port(s, inst, row.network_id, row.fixed_ip,
                                            row.security_group_ids).id
                    s.add(row)
            s.commit()

    @staticmethod
    def _bind_given(s: Session, row: InstanceNic, instance_id: str) -> None:
        """device_id set only where it is still empty: a port taken since the API
        checked it stays its taker's (PortInUse)."""
        taken = s.exec(update(Port).where(col(Port.id) == row.port_id)
                       .where(col(Port.device_id).in_(["", instance_id]))
                       .where(col(Port.device_owner).in_(["", DEVICE_OWNER]))
                       .values(device_id=instance_id, device_owner=DEVICE_OWNER,
                               updated_at=now()))
        if not taken.rowcount:
            raise permanent(f"port {row.port_id} is in use by another device or gone",
                            PORT_IN_USE)

    @activity.defn(name=ControlActs.RELEASE_INSTANCE_PORTS)
    def release_instance_ports(self, ref: InstanceRef) -> None:
        """Ports the launch made deleted (addresses freed, floating IPs disassociated),
        given ones unbound (DOWN); the NIC rows go. Again: nothing left to do."""
        with self.session() as s:
            rows = nic_rows(s, ref.instance_id)
            given = {r.port_id for r in rows if r.preserve_on_delete}
            for port in instance_ports(s, ref.instance_id):
                if port.id in given:
                    port.device_id, port.device_owner = "", ""
                    port.status, port.binding_host_id, port.updated_at = "DOWN", "", now()
                    s.add(port)
                    # its floating IPs stay associated, NATed nowhere (delete removed it)
                    for fip in s.exec(select(FloatingIp).where(FloatingIp.port_id == port.id)):
                        fip.status, fip.updated_at = "DOWN", now()
                        s.add(fip)
                else:
                    remove_port(s, port)
            for row in rows:
                s.delete(row)
            s.commit()

    @activity.defn(name=ControlActs.INSTANCE_NETWORKING)
    def instance_networking(self, ref: InstanceRef) -> InstanceNetworking:
        with self.session() as s:
            specs: dict[str, NetworkSpec] = {}
            ports, nics = [], []
            for port in instance_ports(s, ref.instance_id):
                ip = s.exec(select(IpAllocation.ip_address)
                            .where(IpAllocation.port_id == port.id)).first()
                if ip is None:
                    continue  # no address, no DHCP reservation: not plugged (IPv4 only)
                if port.network_id not in specs:
                    specs[port.network_id] = network_spec(s, port.network_id)
                net = specs[port.network_id]
                ports.append(PortSpec(port.id, port.network_id, port.mac_address, ip,
                                      port_rules(s, port.id)))
                nics.append(Nic(port.id, port.mac_address, net.vni, net.mtu, ip))
            return InstanceNetworking(ref.instance_id, list(specs.values()), ports, nics)

    @activity.defn(name=ControlActs.BIND_INSTANCE_PORTS)
    def bind_instance_ports(self, req: PortBinding) -> None:
        with self.session() as s:
            for port in instance_ports(s, req.instance_id):
                port.status = "ACTIVE" if req.host else "DOWN"
                port.binding_host_id, port.updated_at = req.host, now()
                s.add(port)
            s.commit()

    @activity.defn(name=ControlActs.INSTANCE_GROUPS)
    def instance_groups(self, ref: InstanceRef) -> GroupRefs:
        with self.session() as s:
            ids = [p.id for p in instance_ports(s, ref.instance_id)]
            return GroupRefs(sorted(set(s.exec(
                select(PortSecurityGroup.security_group_id)
                .where(col(PortSecurityGroup.port_id).in_(ids))))))

    @activity.defn(name=ControlActs.REMOTE_GROUP_PORTS)
    def remote_group_ports(self, req: GroupRefs) -> HostPorts:
        """Every plugged port in a group with a rule whose remote group is one of
        req's: its filter lists the remote group's member addresses, which changed."""
        with self.session() as s:
            naming = set(s.exec(select(RuleRow.security_group_id).where(
                col(RuleRow.remote_group_id).in_(req.group_ids))))
            port_ids = set(s.exec(select(PortSecurityGroup.port_id).where(
                col(PortSecurityGroup.security_group_id).in_(naming))))
            out = []
            for port in s.exec(select(Port).where(col(Port.id).in_(port_ids))
                               .where(Port.binding_host_id != "").order_by(col(Port.id))):
                ip = s.exec(select(IpAllocation.ip_address)
                            .where(IpAllocation.port_id == port.id)).first()
                if ip is not None:
                    out.append(HostPort(port.binding_host_id, PortSpec(
                        port.id, port.network_id, port.mac_address, ip,
                        port_rules(s, port.id))))
            return HostPorts(out)

    def all(self) -> list[Callable[..., Any]]:
        return [self.create_instance_ports, self.release_instance_ports,
                self.instance_networking, self.bind_instance_ports, self.instance_groups,
                self.remote_group_ports]
