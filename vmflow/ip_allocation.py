"""Ports and their addresses, allocated atomically in the database.

A port's fixed IPs are chosen and written in one transaction that starts by writing
the network's row: that write holds the row lock (PostgreSQL) or the database's write
lock (SQLite, whose driver begins the transaction at the first write), so concurrent
allocations on a network queue there and each reads the addresses the ones before it
committed. The primary key of IpAllocation, (network_id, ip_address), is the backstop:
whatever the isolation level, two ports can never hold one address. Deleting a port
deletes its allocations, which frees the addresses.

Nothing here commits: the caller commits the port together with whatever else the
request makes (a floating IP, the auto network), or rolls it all back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import Session, col, delete, select

from vmflow import ipam
from vmflow.db import lock_row
from vmflow.ipam import IpamError
from vmflow.models import now
from vmflow.network_models import FloatingIp, IpAllocation, Network, Port, PortSecurityGroup, Subnet

MAC_ATTEMPTS = 8  # a collision among 2^24 MACs is rare; eight in a row is a bug


@dataclass(frozen=True)
class FixedIpRequest:
    """One entry of a port's fixed_ips: a subnet, an address, or both."""

    subnet_id: str | None = None
    ip_address: str | None = None


@dataclass(frozen=True)
class PortSpec:
    network_id: str
    project_id: str
    name: str = ""
    device_id: str = ""
    device_owner: str = ""
    admin_state_up: bool = True
    # None: one address from the network's subnet (if it has one); []: no address
    fixed_ips: list[FixedIpRequest] | None = None
    security_group_ids: list[str] = field(default_factory=list)
    port_id: str | None = None  # None: a new id (interface attach names its port up front)


def lock_network(session: Session, network_id: str) -> None:
    """Hold the network's row first, so allocations on it are serialized (see above)."""
    if not lock_row(session, Network, network_id):
        raise IpamError(f"network {network_id} not found", "NetworkNotFound")


def used_addresses(session: Session, network_id: str) -> set[str]:
    return set(session.exec(select(IpAllocation.ip_address)
                            .where(IpAllocation.network_id == network_id)))


def _subnet(session: Session, network_id: str, subnet_id: str | None) -> Subnet:
    subnet = session.exec(select(Subnet).where(Subnet.network_id == network_id)).first()
    if subnet is None:
        raise IpamError(f"network {network_id} has no subnet to take an address from")
    if subnet_id is not None and subnet_id != subnet.id:
        raise IpamError(f"subnet {subnet_id} is not the subnet of network {network_id}")
    return subnet


def allocate(session: Session, port: Port, requests: list[FixedIpRequest]) -> list[IpAllocation]:
    """Addresses for `port` (already added), requested ones first; 409
    IpAddressAlreadyAllocated for a taken one, 409 IpAddressGenerationFailure when a
    pool is exhausted. Call with the network locked."""
    used = used_addresses(session, port.network_id)
    rows = []
    for req in sorted(requests, key=lambda r: r.ip_address is None):
        subnet = _subnet(session, port.network_id, req.subnet_id)
        if req.ip_address is not None:
            ip = ipam.check_requested(subnet.cidr, subnet.allocation_pools, req.ip_address)
            if ip in used:
                raise IpamError(f"IP address {ip} is already allocated on network "
                                f"{port.network_id}", "IpAddressAlreadyAllocated",
                                conflict=True)
        else:
            free = next(ipam.free_addresses(subnet.allocation_pools, used), None)
            if free is None:
                raise IpamError(f"no more IP addresses available on network "
                                f"{port.network_id}", "IpAddressGenerationFailure",
                                conflict=True)
            ip = free
        used.add(ip)
        row = IpAllocation(network_id=port.network_id, ip_address=ip, subnet_id=subnet.id,
                           port_id=port.id)
        session.add(row)
        rows.append(row)
    return rows


def new_mac(session: Session) -> str:
    for _ in range(MAC_ATTEMPTS):
        mac = ipam.random_mac()
        if session.exec(select(Port.id).where(Port.mac_address == mac)).first() is None:
            return mac
    raise IpamError("could not find a free MAC address", "MacAddressGenerationFailure",
                    conflict=True)


def add_port(session: Session, spec: PortSpec) -> tuple[Port, list[IpAllocation]]:
    """The port, its addresses and security groups, added and flushed, not committed."""
    lock_network(session, spec.network_id)
    requests = spec.fixed_ips
    if requests is None:
        has_subnet = session.exec(select(Subnet.id).where(
            Subnet.network_id == spec.network_id)).first() is not None
        requests = [FixedIpRequest()] if has_subnet else []
    port = Port(network_id=spec.network_id, project_id=spec.project_id, name=spec.name,
                mac_address=new_mac(session), device_id=spec.device_id,
                device_owner=spec.device_owner, admin_state_up=spec.admin_state_up)
    if spec.port_id:
        port.id = spec.port_id
    session.add(port)
    session.flush()  # the port row before the rows that refer to it
    allocations = allocate(session, port, requests)
    for group_id in dict.fromkeys(spec.security_group_ids):
        session.add(PortSecurityGroup(port_id=port.id, security_group_id=group_id))
    session.flush()
    return port, allocations


def remove_port(session: Session, port: Port) -> None:
    """The port, its addresses (freed) and group memberships; floating IPs pointing at
    it are disassociated (Neutron). Not committed."""
    for fip in session.exec(select(FloatingIp).where(FloatingIp.port_id == port.id)):
        fip.port_id, fip.fixed_ip_address, fip.updated_at = None, None, now()
        fip.status = "DOWN"  # NATed nowhere now (the caller removes a host's NAT)
        session.add(fip)
    session.flush()
    session.exec(delete(IpAllocation).where(col(IpAllocation.port_id) == port.id))
    session.exec(delete(PortSecurityGroup).where(col(PortSecurityGroup.port_id) == port.id))
    session.delete(port)
    session.flush()


def allocate_vni(session: Session) -> int:
    """The lowest free VXLAN id. Two networks made at once may pick the same one; the
    unique constraint refuses the second at commit and the caller tries again."""
    vni = ipam.first_free(session.exec(select(Network.segmentation_id)))
    if vni is None:
        raise IpamError("no free VXLAN id", "NoNetworkAvailable", conflict=True)
    return vni
