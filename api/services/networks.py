"""Networks and subnets (Neutron v2.0), the logic behind api/routers/networks.py and
subnets.py; also the visibility rules every network resource shares.

A network is its project's; a `shared` or `router:external` one is also visible to
every project (Neutron), but only its project (or an admin) changes it. Only admins
make shared or external networks. Each network gets a unique VXLAN id
(`provider:segmentation_id`, shown to admins) for the hosts that join it. One IPv4
subnet per network: its CIDR, gateway and pools are checked by vmflow.ipam.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, func, or_, select

from api.auth import AuthContext
from api.errors import BadRequest, Conflict, Forbidden, NotFound
from api.schemas.networks import NetworkCreate, NetworkPublic, SubnetCreate, SubnetPublic
from api.services.operations import find_idempotent, remember_key
from vmflow import ipam
from vmflow.db import save_given
from vmflow.ip_allocation import allocate_vni
from vmflow.ipam import IpamError
from vmflow.models import now
from vmflow.network_models import AutoNetwork, IpAllocation, Network, Port, Subnet

VNI_ATTEMPTS = 5  # concurrent creates that picked the same VXLAN id try again
# ports Neutron removes with their network rather than counting as "in use"
NETWORK_OWNED = frozenset({"network:dhcp"})


@contextmanager
def ipam_errors() -> Iterator[None]:
    """vmflow's IPAM errors as the API's: 409 for a conflict, else 400."""
    try:
        yield
    except IpamError as e:
        if e.type.endswith("NotFound"):
            raise NotFound(e.message, type=e.type) from None
        raise (Conflict if e.conflict else BadRequest)(e.message, type=e.type) from None


# --- visibility ----------------------------------------------------------------------

def visible(auth: AuthContext, net: Network) -> bool:
    return auth.can_see(net.project_id) or net.shared or net.router_external


def get_network(session: Session, auth: AuthContext, network_id: str) -> Network:
    net = session.get(Network, network_id)
    if net is None or not visible(auth, net):
        raise NotFound(f"network {network_id} not found", type="NetworkNotFound")
    return net


def owned_network(session: Session, auth: AuthContext, network_id: str) -> Network:
    """A network the caller may change: 404 if unseen, 403 if only seen (shared)."""
    net = get_network(session, auth, network_id)
    if not auth.can_see(net.project_id):
        raise Forbidden(f"network {network_id} belongs to another project")
    return net


def subnet_of(session: Session, network_id: str) -> Subnet | None:
    return session.exec(select(Subnet).where(Subnet.network_id == network_id)).first()


# --- networks ------------------------------------------------------------------------

def network_view(session: Session, auth: AuthContext, net: Network) -> NetworkPublic:
    subnet = subnet_of(session, net.id)
    return NetworkPublic.of(net, [subnet.id] if subnet else [], auth.is_admin)


def list_networks(session: Session, auth: AuthContext, name: str | None = None,
                  router_external: bool | None = None) -> list[NetworkPublic]:
    stmt = select(Network)
    if not auth.is_admin:
        stmt = stmt.where(or_(col(Network.project_id) == auth.project_id,
                              col(Network.shared), col(Network.router_external)))
    if name is not None:
        stmt = stmt.where(Network.name == name)
    if router_external is not None:
        stmt = stmt.where(Network.router_external == router_external)
    nets = list(session.exec(stmt.order_by(col(Network.created_at), col(Network.id))))
    subnets = {s.network_id: s.id for s in session.exec(
        select(Subnet).where(col(Subnet.network_id).in_([n.id for n in nets])))}
    return [NetworkPublic.of(n, [subnets[n.id]] if n.id in subnets else [], auth.is_admin)
            for n in nets]


def add_network(session: Session, project_id: str, name: str, admin_state_up: bool = True,
                shared: bool = False, router_external: bool = False) -> Network:
    """Added with a VXLAN id and flushed; the caller commits (and retries on a clash)."""
    with ipam_errors():
        vni = allocate_vni(session)
    net = Network(name=name, project_id=project_id, admin_state_up=admin_state_up,
                  shared=shared, router_external=router_external, segmentation_id=vni)
    session.add(net)
    session.flush()
    return net


def create_network(session: Session, auth: AuthContext, body: NetworkCreate,
                   key: str | None) -> NetworkPublic:
    earlier = find_idempotent(session, auth, key, "network", "create")
    if earlier is not None:
        return network_view(session, auth, get_network(session, auth, earlier.resource_id))
    if (body.shared or body.router_external) and not auth.is_admin:
        raise Forbidden("only an admin makes a shared or router:external network")
    for attempt in range(VNI_ATTEMPTS):
        try:
            net = add_network(session, auth.project_id, body.name, body.admin_state_up,
                              body.shared, body.router_external)
            remember_key(session, auth, key, "network", net.id, "create")
            session.commit()
            return network_view(session, auth, net)
        except IntegrityError:  # another network took the VXLAN id meanwhile
            session.rollback()
            if attempt == VNI_ATTEMPTS - 1:
                raise Conflict("could not allocate a VXLAN id; try again",
                               type="NoNetworkAvailable") from None
    raise AssertionError("unreachable")


def update_network(session: Session, auth: AuthContext, network_id: str,
                   name: str | None = None, shared: bool | None = None,
                   router_external: bool | None = None) -> NetworkPublic:
    """Rename; an admin may also change `shared` and `router:external` (Neutron), but
    not take them away while another project has a port on the network (409, as
    Neutron's InvalidSharedSetting), nor make an external network internal while it
    has floating IPs. Nothing on the hosts depends on these flags."""
    net = owned_network(session, auth, network_id)
    flags = (shared is not None and shared != net.shared) or (
        router_external is not None and router_external != net.router_external)
    if flags and not auth.is_admin:
        raise Forbidden("only an admin changes shared or router:external")
    if (shared is False and net.shared) or (router_external is False and net.router_external):
        foreign = session.exec(select(func.count()).select_from(Port).where(
            Port.network_id == net.id, Port.project_id != net.project_id)).one()
        if foreign:
            raise Conflict(f"network {net.id} has {foreign} port(s) of other projects",
                           type="InvalidSharedSetting")
    if router_external is False and net.router_external:
        fips = session.exec(select(func.count()).select_from(Port).where(
            Port.network_id == net.id, Port.device_owner == "network:floatingip")).one()
        if fips:
            raise Conflict(f"network {net.id} has {fips} floating IP(s)",
                           type="ExternalNetworkInUse")
    save_given(session, net, name=name, shared=shared, router_external=router_external)
    return network_view(session, auth, net)


def delete_network(session: Session, auth: AuthContext, network_id: str,
                   key: str | None) -> None:
    """With its subnet; 409 NetworkInUse while it has ports (floating IPs included)."""
    if find_idempotent(session, auth, key, "network", "delete"):
        return
    net = owned_network(session, auth, network_id)
    in_use = session.exec(select(func.count()).select_from(Port).where(
        Port.network_id == net.id, col(Port.device_owner).not_in(NETWORK_OWNED))).one()
    if in_use:
        raise Conflict(f"network {net.id} has {in_use} port(s); delete them first",
                       type="NetworkInUse")
    session.exec(delete(AutoNetwork).where(col(AutoNetwork.network_id) == net.id))
    session.exec(delete(Subnet).where(col(Subnet.network_id) == net.id))
    session.delete(net)
    remember_key(session, auth, key, "network", net.id, "delete")
    session.commit()


# --- subnets -------------------------------------------------------------------------

def get_subnet(session: Session, auth: AuthContext, subnet_id: str) -> Subnet:
    subnet = session.get(Subnet, subnet_id)
    net = None if subnet is None else session.get(Network, subnet.network_id)
    if subnet is None or net is None or not visible(auth, net):
        raise NotFound(f"subnet {subnet_id} not found", type="SubnetNotFound")
    return subnet


def list_subnets(session: Session, auth: AuthContext,
                 network_id: str | None = None) -> list[Subnet]:
    stmt = select(Subnet).join(Network, col(Network.id) == col(Subnet.network_id))
    if not auth.is_admin:
        stmt = stmt.where(or_(col(Network.project_id) == auth.project_id,
                              col(Network.shared), col(Network.router_external)))
    if network_id is not None:
        stmt = stmt.where(Subnet.network_id == network_id)
    return list(session.exec(stmt.order_by(col(Subnet.created_at), col(Subnet.id))))


def add_subnet(session: Session, net: Network, body: SubnetCreate) -> Subnet:
    """Checked, added and flushed; 409 if the network has one already."""
    if subnet_of(session, net.id) is not None:
        raise Conflict(f"network {net.id} already has a subnet (one IPv4 subnet per "
                       "network)", type="SubnetExists")
    pools = (None if body.allocation_pools is None
             else [p.model_dump() for p in body.allocation_pools])
    with ipam_errors():
        plan = ipam.plan_subnet(body.cidr, body.gateway_ip,
                                "gateway_ip" in body.model_fields_set, pools)
        servers = ipam.check_nameservers(body.dns_nameservers)
    clash = ipam.overlapping(plan.cidr, session.exec(select(Subnet.cidr)))
    if clash is not None:
        raise BadRequest(f"cidr {plan.cidr} overlaps the subnet {clash} of another network "
                         "(subnets never overlap in vmflow: each host routes them all)",
                         type="OverlappingSubnet")
    subnet = Subnet(name=body.name, network_id=net.id, project_id=net.project_id,
                    cidr=plan.cidr, gateway_ip=plan.gateway_ip,
                    allocation_pools=plan.allocation_pools, enable_dhcp=body.enable_dhcp,
                    dns_nameservers=servers)
    session.add(subnet)
    session.flush()
    return subnet


def create_subnet(session: Session, auth: AuthContext, body: SubnetCreate,
                  key: str | None) -> Subnet:
    earlier = find_idempotent(session, auth, key, "subnet", "create")
    if earlier is not None:
        return get_subnet(session, auth, earlier.resource_id)
    net = owned_network(session, auth, body.network_id)
    try:
        subnet = add_subnet(session, net, body)
        remember_key(session, auth, key, "subnet", subnet.id, "create")
        session.commit()
    except IntegrityError:  # a concurrent request gave the network its subnet
        session.rollback()
        raise Conflict(f"network {net.id} already has a subnet", type="SubnetExists") from None
    return subnet


def delete_subnet(session: Session, auth: AuthContext, subnet_id: str, key: str | None) -> None:
    """409 SubnetInUse while a port holds one of its addresses."""
    if find_idempotent(session, auth, key, "subnet", "delete"):
        return
    subnet = get_subnet(session, auth, subnet_id)
    owned_network(session, auth, subnet.network_id)
    used = session.exec(select(func.count()).select_from(IpAllocation).where(
        IpAllocation.subnet_id == subnet.id)).one()
    if used:
        raise Conflict(f"subnet {subnet.id} has {used} address(es) in use by ports",
                       type="SubnetInUse")
    session.delete(subnet)
    remember_key(session, auth, key, "subnet", subnet.id, "delete")
    session.commit()


def rename_subnet(session: Session, auth: AuthContext, subnet_id: str, name: str) -> Subnet:
    """The one change of a subnet that no host has to follow."""
    subnet = get_subnet(session, auth, subnet_id)
    owned_network(session, auth, subnet.network_id)
    subnet.name, subnet.updated_at = name, now()
    session.add(subnet)
    session.commit()
    return subnet


def subnet_view(subnet: Subnet) -> SubnetPublic:
    return SubnetPublic.of(subnet)
