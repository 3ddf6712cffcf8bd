"""Which ports a new server gets, from its `networks` value: what the launch's API
calls (api/services/server_nics.py; vmflow.nic_requests reads the value, this checks
it against the database).

`"auto"` is Nova's get-me-a-network: the one non-external network the project can use
(its own or a shared one); several are 409 NetworkAmbiguous; none, and the project
gets `auto_allocated_network` with a subnet that is the first free /24 of
VMFLOW_AUTO_NETWORK_POOL, made once (AutoNetwork's primary key settles a race).
Nothing here makes a port: the launch workflow does (activities/control/ports.py),
and deletes them on undo.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, or_, select

from api.auth import AuthContext
from api.errors import BadRequest, Conflict, NotFound
from api.schemas.networks import SubnetCreate
from api.services.networks import add_network, add_subnet, get_network, ipam_errors
from api.services.ports import get_port
from vmflow import ipam
from vmflow.network_models import AutoNetwork, Network, Subnet
from vmflow.nic_requests import AUTO_NETWORK_NAME, NicRequest, choose_auto, parse_networks

AUTO_ATTEMPTS = 3


def available_networks(session: Session, project_id: str) -> list[str]:
    """What "auto" may pick: the project's networks and shared ones, never external."""
    return list(session.exec(select(Network.id).where(
        or_(col(Network.project_id) == project_id, col(Network.shared)),
        col(Network.router_external).is_(False)).order_by(col(Network.created_at))))


def ensure_auto_network(session: Session, project_id: str, pool: str) -> str:
    """The project's auto network, made (and committed) on first use."""
    for _ in range(AUTO_ATTEMPTS):
        row = session.get(AutoNetwork, project_id)
        if row is not None:
            return row.network_id
        taken = session.exec(select(Subnet.cidr))  # no subnet overlaps another
        with ipam_errors():
            cidr = ipam.auto_cidr(pool, list(taken))
        if cidr is None:
            raise Conflict(f"the auto network pool {pool} has no free /24 left",
                           type="AutoAllocationFailure")
        try:
            net = add_network(session, project_id, AUTO_NETWORK_NAME)
            add_subnet(session, net, SubnetCreate(network_id=net.id, cidr=cidr,
                                                  name=AUTO_NETWORK_NAME))
            session.add(AutoNetwork(project_id=project_id, network_id=net.id))
            session.commit()
            return net.id
        except IntegrityError:  # another first use won, or took the /24 or the VXLAN id
            session.rollback()
        except BadRequest as e:  # the /24 was taken after we read: read again
            session.rollback()
            if e.type != "OverlappingSubnet":
                raise
    raise Conflict("could not make the auto network; try again", type="AutoAllocationFailure")


def resolve_nics(session: Session, auth: AuthContext, value: Any,
                 pool: str) -> list[NicRequest]:
    """The NICs to give a server of the caller's project: ports to create (network_id)
    and existing ports to use (port_id, each the project's and not in use)."""
    with ipam_errors():
        plan = parse_networks(value)
    if plan.kind == "none":
        return []
    if plan.kind == "auto":
        with ipam_errors():
            chosen = choose_auto(available_networks(session, auth.project_id))
        if chosen is None:
            chosen = ensure_auto_network(session, auth.project_id, pool)
        return [NicRequest(network_id=chosen)]
    out = []
    for req in plan.requests:
        if req.port_id is not None:
            port = get_port(session, auth, req.port_id)
            if port.project_id != auth.project_id:
                raise NotFound(f"port {req.port_id} not found", type="PortNotFound")
            if port.device_id or port.device_owner:
                raise Conflict(f"port {port.id} is in use by {port.device_owner or 'a device'} "
                               f"{port.device_id}", type="PortInUse")
            out.append(NicRequest(network_id=port.network_id, port_id=port.id))
        else:
            assert req.network_id is not None
            net = get_network(session, auth, req.network_id)
            if net.router_external and not net.shared:
                raise Conflict(f"network {net.id} is external; servers get floating IPs "
                               "from it, not ports", type="ExternalNetworkAttachForbidden")
            out.append(NicRequest(network_id=net.id, fixed_ip=req.fixed_ip))
    return out
