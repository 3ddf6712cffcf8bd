"""Ports (Neutron v2.0), the logic behind api/routers/ports.py.

A port is its project's; it can be made on the project's own networks and on shared
ones (an external network's ports are made by floating IPs, or by an admin). Its MAC
is generated (locally administered, unique), its fixed IPs come from the subnet's
pools or are requested (free and inside a pool), atomically (vmflow.ip_allocation).
Without `security_groups` it is in the project's default group. It is DOWN until the
host side binds it. Deleting it frees its addresses and disassociates its floating
IPs; a floating IP's own port is deleted with the floating IP only.
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from api.auth import AuthContext, scoped
from api.errors import Conflict, Forbidden, NotFound
from api.schemas.ports import PortCreate, PortPublic
from api.services.networks import get_network, ipam_errors
from api.services.operations import find_idempotent, remember_key
from api.services.security_groups import ensure_default_group, get_group
from vmflow.ip_allocation import FixedIpRequest, PortSpec, add_port, remove_port
from vmflow.models import now
from vmflow.network_models import IpAllocation, Port, PortSecurityGroup

FLOATINGIP_OWNER = "network:floatingip"


def get_port(session: Session, auth: AuthContext, port_id: str) -> Port:
    port = session.get(Port, port_id)
    if port is None or not auth.can_see(port.project_id):
        raise NotFound(f"port {port_id} not found", type="PortNotFound")
    return port


def addresses(session: Session, port_ids: list[str]) -> dict[str, list[IpAllocation]]:
    out: dict[str, list[IpAllocation]] = {p: [] for p in port_ids}
    for a in session.exec(select(IpAllocation).where(col(IpAllocation.port_id).in_(port_ids))
                          .order_by(col(IpAllocation.ip_address))):
        out[a.port_id].append(a)
    return out


def groups(session: Session, port_ids: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {p: [] for p in port_ids}
    for m in session.exec(select(PortSecurityGroup).where(
            col(PortSecurityGroup.port_id).in_(port_ids))):
        out[m.port_id].append(m.security_group_id)
    return out


def views(session: Session, ports: list[Port]) -> list[PortPublic]:
    ids = [p.id for p in ports]
    ips, sgs = addresses(session, ids), groups(session, ids)
    return [PortPublic.of(p, ips[p.id], sorted(sgs[p.id])) for p in ports]


def view(session: Session, port: Port) -> PortPublic:
    return views(session, [port])[0]


def list_ports(session: Session, auth: AuthContext, device_id: str | None = None,
               network_id: str | None = None) -> list[PortPublic]:
    stmt = scoped(select(Port), Port.project_id, auth)
    if device_id is not None:
        stmt = stmt.where(Port.device_id == device_id)
    if network_id is not None:
        stmt = stmt.where(Port.network_id == network_id)
    return views(session, list(session.exec(stmt.order_by(col(Port.created_at),
                                                          col(Port.id)))))


def port_groups(session: Session, auth: AuthContext, requested: list[str] | None) -> list[str]:
    """The groups a new port of the caller's project goes in: the requested ones (each
    the project's own), or the project's default group."""
    if requested is None:
        return [ensure_default_group(session, auth.project_id).id]
    out = []
    for group_id in requested:
        group = get_group(session, auth, group_id)
        if group.project_id != auth.project_id:
            raise NotFound(f"security group {group_id} not found",
                           type="SecurityGroupNotFound")
        out.append(group.id)
    return out


def create_port(session: Session, auth: AuthContext, body: PortCreate,
                key: str | None) -> PortPublic:
    earlier = find_idempotent(session, auth, key, "port", "create")
    if earlier is not None:
        return view(session, get_port(session, auth, earlier.resource_id))
    net = get_network(session, auth, body.network_id)
    if not auth.is_admin:
        if net.router_external and not net.shared:
            raise Forbidden("ports on an external network are made by floating IPs")
        if body.binding_host_id or body.device_owner.startswith("network:"):
            raise Forbidden("only an admin sets binding:host_id or a network: device_owner")
    group_ids = port_groups(session, auth, body.security_groups)
    fixed = None if body.fixed_ips is None else [
        FixedIpRequest(f.subnet_id, f.ip_address) for f in body.fixed_ips]
    spec = PortSpec(network_id=net.id, project_id=auth.project_id, name=body.name,
                    device_id=body.device_id, device_owner=body.device_owner,
                    admin_state_up=body.admin_state_up, fixed_ips=fixed,
                    security_group_ids=group_ids)
    try:
        with ipam_errors():
            port, _ = add_port(session, spec)
        port.binding_host_id = body.binding_host_id
        remember_key(session, auth, key, "port", port.id, "create")
        session.commit()
    except IntegrityError:  # only if the network lock did not serialize (see ip_allocation)
        session.rollback()
        raise Conflict("the port's address or MAC was taken concurrently; try again",
                       type="IpAddressAlreadyAllocated") from None
    except BaseException:
        session.rollback()
        raise
    return view(session, port)


def rename_port(session: Session, auth: AuthContext, port_id: str, name: str) -> PortPublic:
    """The one change of a port that no host has to follow."""
    port = get_port(session, auth, port_id)
    port.name, port.updated_at = name, now()
    session.add(port)
    session.commit()
    return view(session, port)


def delete_port(session: Session, auth: AuthContext, port_id: str, key: str | None) -> None:
    if find_idempotent(session, auth, key, "port", "delete"):
        return
    port = get_port(session, auth, port_id)
    if port.device_owner == FLOATINGIP_OWNER:
        raise Conflict(f"port {port.id} has owner {FLOATINGIP_OWNER}; delete its floating "
                       "IP instead", type="L3PortInUse")
    remove_port(session, port)
    remember_key(session, auth, key, "port", port.id, "delete")
    session.commit()
