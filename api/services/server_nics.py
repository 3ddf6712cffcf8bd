"""A new server's NICs, the API's part (issue 12): its `networks` and `security_groups`
read and checked against the database (api/services/nics.py resolve_nics), room for
its addresses checked, and the requests written as InstanceNic rows beside the server
row; the launch workflow makes the ports (activities/control/ports.py). Also the
server view's `addresses`, as Nova shows them.

`networks` absent is "none": a server gets a NIC only when asked (docs/decisions.md).
"""

from __future__ import annotations

from collections import Counter
from itertools import islice
from typing import Any

from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from api.auth import AuthContext
from api.errors import BadRequest, Conflict
from api.services.networks import ipam_errors
from api.services.nics import resolve_nics
from api.services.security_groups import ensure_default_group
from vmflow import ipam
from vmflow.ip_allocation import used_addresses
from vmflow.network_models import (
    FloatingIp,
    InstanceNic,
    IpAllocation,
    Network,
    Port,
    SecurityGroup,
    Subnet,
)
from vmflow.nic_requests import NicRequest
from vmflow.security_rules import DEFAULT_GROUP

DEVICE_OWNER = "compute:nova"  # activities/control/ports.py sets it on the ports


def security_group_ids(session: Session, auth: AuthContext,
                       refs: list[dict[str, str]] | None) -> list[str]:
    """The groups' ids, each named by name or id among the project's groups; absent:
    the project's `default` group (made on first use)."""
    if refs is None:
        return [ensure_default_group(session, auth.project_id).id]
    out = []
    for ref in refs:
        name = ref["name"]
        if name == DEFAULT_GROUP:
            out.append(ensure_default_group(session, auth.project_id).id)
            continue
        found = list(session.exec(select(SecurityGroup.id).where(
            SecurityGroup.project_id == auth.project_id,
            (col(SecurityGroup.id) == name) | (col(SecurityGroup.name) == name))))
        if not found:
            raise BadRequest(f"security group {name!r} not found in project "
                             f"{auth.project_id}", type="SecurityGroupNotFound")
        if len(found) > 1:
            raise Conflict(f"{len(found)} security groups are named {name!r}; use its id",
                           type="NoUniqueMatch")
        out.append(found[0])
    return list(dict.fromkeys(out))


def check_room(session: Session, requests: list[NicRequest]) -> None:
    """Every new port's address can be had now: a subnet on its network, a fixed IP in
    a pool and free (409 IpAddressAlreadyAllocated), enough free addresses for the rest
    (409 IpAddressGenerationFailure). The launch allocates atomically; this only
    refuses what would fail, so a refused launch leaves nothing behind."""
    new = [r for r in requests if r.port_id is None]
    for network_id, wanted in Counter(r.network_id for r in new).items():
        assert network_id is not None
        subnet = session.exec(select(Subnet).where(Subnet.network_id == network_id)).first()
        if subnet is None:
            raise BadRequest(f"network {network_id} has no subnet to give a server an "
                             "address from", type="NetworkWithoutSubnet")
        used = used_addresses(session, network_id)
        fixed = [r.fixed_ip for r in new if r.network_id == network_id and r.fixed_ip]
        for ip in fixed:
            with ipam_errors():
                ipam.check_requested(subnet.cidr, subnet.allocation_pools, ip)
            if ip in used:
                raise Conflict(f"IP address {ip} is already allocated on network "
                               f"{network_id}", type="IpAddressAlreadyAllocated")
            used.add(ip)
        if len(set(fixed)) != len(fixed):
            raise Conflict("the same fixed_ip is asked for twice",
                           type="IpAddressAlreadyAllocated")
        need = wanted - len(fixed)
        if len(list(islice(ipam.free_addresses(subnet.allocation_pools, used), need))) < need:
            raise Conflict(f"no more IP addresses available on network {network_id}",
                           type="IpAddressGenerationFailure")


def plan(session: Session, auth: AuthContext, networks: Any,
         groups: list[dict[str, str]] | None, pool: str) -> list[InstanceNic]:
    """The server's NIC rows (instance_id unset, not added); bad input raises 4xx and
    writes nothing (but a first "auto" makes the project's network, and a first NIC
    its default group, as Nova's get-me-a-network and Neutron do)."""
    requests = [] if networks is None else resolve_nics(session, auth, networks, pool)
    if not requests:
        if groups is not None:
            raise BadRequest("security_groups need a network to apply to",
                             type="InvalidInput")
        return []
    check_room(session, requests)
    sg_ids = (security_group_ids(session, auth, groups)
              if any(r.port_id is None for r in requests) else [])
    return [InstanceNic(instance_id="", position=i, network_id=r.network_id or "",
                        port_id=r.port_id, fixed_ip=r.fixed_ip,
                        security_group_ids=[] if r.port_id else sg_ids,
                        preserve_on_delete=r.port_id is not None)
            for i, r in enumerate(requests)]


Addresses = dict[str, list[dict[str, Any]]]


def addresses(session: Session, instance_ids: list[str]) -> dict[str, Addresses]:
    """Nova's `addresses` per server: by network name, each fixed IP (with the port's
    MAC), then the floating IPs associated with it."""
    out: dict[str, Addresses] = {i: {} for i in instance_ids}
    if not instance_ids:
        return out
    # columns, not rows as objects: a page of servers has a port each and building
    # ORM objects for them cost more than the queries
    ports = list(session.execute(
        sa_select(col(Port.id), col(Port.device_id), col(Port.network_id),
                  col(Port.mac_address), col(Port.created_at))
        .where(col(Port.device_id).in_(instance_ids), col(Port.device_owner) == DEVICE_OWNER)))
    if not ports:
        return out
    order = dict(session.exec(select(InstanceNic.port_id, InstanceNic.position)
                              .where(col(InstanceNic.instance_id).in_(instance_ids))).all())
    ports.sort(key=lambda p: (order.get(p.id, len(order)), p.created_at))
    port_ids = [p.id for p in ports]
    fixed: dict[str, list[str]] = {}
    for port_id, ip in session.exec(select(IpAllocation.port_id, IpAllocation.ip_address)
                                    .where(col(IpAllocation.port_id).in_(port_ids))):
        fixed.setdefault(port_id, []).append(ip)
    floating: dict[tuple[str, str | None], list[str]] = {}
    for f_port, f_fixed, f_addr in session.exec(
            select(FloatingIp.port_id, FloatingIp.fixed_ip_address,
                   FloatingIp.floating_ip_address)
            .where(col(FloatingIp.port_id).in_(port_ids))):
        floating.setdefault((f_port or "", f_fixed), []).append(f_addr)
    names = {n_id: n_name or n_id for n_id, n_name in session.exec(
        select(Network.id, Network.name)
        .where(col(Network.id).in_({p.network_id for p in ports})))}
    for p in ports:
        entries = out[p.device_id].setdefault(names.get(p.network_id, p.network_id), [])
        for ip in sorted(fixed.get(p.id, []), key=ipam_key):
            entries.append(_entry(ip, "fixed", p.mac_address))
        for ip in sorted(fixed.get(p.id, []), key=ipam_key):
            for fip in floating.get((p.id, ip), []):
                entries.append(_entry(fip, "floating", p.mac_address))
    return out


def ipam_key(ip: str) -> tuple[int, ...]:
    return tuple(int(x) for x in ip.split("."))


def _entry(addr: str, kind: str, mac: str) -> dict[str, Any]:
    return {"version": 4, "addr": addr, "OS-EXT-IPS:TYPE": kind,
            "OS-EXT-IPS-MAC:mac_addr": mac}

