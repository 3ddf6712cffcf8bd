"""Floating IPs (Neutron v2.0), the logic behind api/routers/floating_ips.py.

A floating IP is an address of an external network (`router:external`, made by an
admin), held as in Neutron by a port of device_owner network:floatingip on that
network, so the same atomic allocation keeps it unique. It is associated with a port
of the caller's (PUT {port_id}) and disassociated (PUT {port_id: null}); the port may
not be on an external network, and one fixed IP has at most one floating IP (unique
in the database). vmflow has no routers: the host running the guest NATs 1:1, and
sets status ACTIVE once it has. Each change that the hosts must follow (associate,
disassociate, release of an associated one) is committed, then the floating IP's
sync workflow is signalled (vmflow.floating_sync): the row is the record it enforces.
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from temporalio.client import Client
from temporalio.service import RPCError

from api.auth import AuthContext, scoped
from api.errors import BadRequest, Conflict, NotFound, ServiceUnavailable
from api.schemas.floating_ips import FloatingIpCreate, FloatingIpUpdate
from api.services.networks import get_network, ipam_errors
from api.services.operations import find_idempotent, remember_key
from api.services.ports import FLOATINGIP_OWNER, addresses, get_port
from vmflow import compute_quotas, floating_sync
from vmflow.ip_allocation import FixedIpRequest, PortSpec, add_port, remove_port
from vmflow.models import new_id, now
from vmflow.network_models import FloatingIp, Network, Port
from vmflow.settings import get_settings
from vmflow.share_quotas import QuotaExceeded


def get_fip(session: Session, auth: AuthContext, fip_id: str) -> FloatingIp:
    fip = session.get(FloatingIp, fip_id)
    if fip is None or not auth.can_see(fip.project_id):
        raise NotFound(f"floating IP {fip_id} not found", type="FloatingIPNotFound")
    return fip


def list_fips(session: Session, auth: AuthContext, port_id: str | None = None,
              floating_network_id: str | None = None) -> list[FloatingIp]:
    stmt = scoped(select(FloatingIp), FloatingIp.project_id, auth)
    if port_id is not None:
        stmt = stmt.where(FloatingIp.port_id == port_id)
    if floating_network_id is not None:
        stmt = stmt.where(FloatingIp.floating_network_id == floating_network_id)
    return list(session.exec(stmt.order_by(col(FloatingIp.created_at), col(FloatingIp.id))))


def _associate(session: Session, auth: AuthContext, fip: FloatingIp, port_id: str,
               fixed_ip_address: str | None) -> None:
    """Point `fip` at one fixed IP of a port the caller sees (not yet committed)."""
    port = get_port(session, auth, port_id)
    net = session.get(Network, port.network_id)
    if net is None or net.router_external or port.device_owner.startswith("network:"):
        raise BadRequest(f"port {port.id} is on an external network or is a network "
                         "port; a floating IP targets a port of a project network",
                         type="PortNotValidForFloatingIP")
    fixed = [a.ip_address for a in addresses(session, [port.id])[port.id]]
    if not fixed:
        raise BadRequest(f"port {port.id} has no fixed IP", type="PortHasNoFixedIP")
    if fixed_ip_address is None:
        if len(fixed) > 1:
            raise BadRequest(f"port {port.id} has several fixed IPs; give fixed_ip_address")
        fixed_ip_address = fixed[0]
    elif fixed_ip_address not in fixed:
        raise BadRequest(f"{fixed_ip_address} is not a fixed IP of port {port.id}")
    taken = session.exec(select(FloatingIp.id).where(
        FloatingIp.port_id == port.id, FloatingIp.fixed_ip_address == fixed_ip_address,
        FloatingIp.id != fip.id)).first()
    if taken is not None:
        raise Conflict(f"fixed IP {fixed_ip_address} of port {port.id} already has "
                       f"floating IP {taken}", type="FloatingIPPortAlreadyAssociated")
    if (fip.port_id, fip.fixed_ip_address) != (port.id, fixed_ip_address):
        fip.status = "DOWN"  # until its new host has NATed it
    fip.port_id, fip.fixed_ip_address, fip.updated_at = port.id, fixed_ip_address, now()


def _commit(session: Session) -> None:
    try:
        session.commit()
    except IntegrityError:  # a concurrent association of the same fixed IP won
        session.rollback()
        raise Conflict("that fixed IP got a floating IP concurrently",
                       type="FloatingIPPortAlreadyAssociated") from None


def create_fip(session: Session, auth: AuthContext, body: FloatingIpCreate,
               key: str | None) -> FloatingIp:
    earlier = find_idempotent(session, auth, key, "floatingip", "create")
    if earlier is not None:
        return get_fip(session, auth, earlier.resource_id)
    net = get_network(session, auth, body.floating_network_id)
    if not net.router_external:
        raise BadRequest(f"network {net.id} is not an external network",
                         type="ExternalNetworkNotFound")
    fip_id = new_id()
    try:
        with ipam_errors():
            port, ips = add_port(session, PortSpec(
                network_id=net.id, project_id=net.project_id, device_id=fip_id,
                device_owner=FLOATINGIP_OWNER,
                fixed_ips=[FixedIpRequest(ip_address=body.floating_ip_address)]))
        try:  # after the network's lock, as a server's ports take them; no await until
            # the commit: check() holds the project row until it
            compute_quotas.check(session, auth.project_id, get_settings(), floating_ips=1)
        except QuotaExceeded as e:  # Neutron answers 409 OverQuota
            raise Conflict(e.message, type=e.type) from None
        fip = FloatingIp(id=fip_id, project_id=auth.project_id, floating_network_id=net.id,
                         floating_port_id=port.id, floating_ip_address=ips[0].ip_address,
                         description=body.description)
        if body.port_id is not None:
            _associate(session, auth, fip, body.port_id, body.fixed_ip_address)
        elif body.fixed_ip_address is not None:
            raise BadRequest("fixed_ip_address needs a port_id")
        session.add(fip)
        remember_key(session, auth, key, "floatingip", fip.id, "create")
        _commit(session)
    except BaseException:
        session.rollback()  # frees the network lock and the address at once
        raise
    return fip


def update_fip(session: Session, auth: AuthContext, fip_id: str, body: FloatingIpUpdate,
               key: str | None) -> FloatingIp:
    """Associate with body.port_id, or disassociate when it is null."""
    if find_idempotent(session, auth, key, "floatingip", "update", fip_id):
        return get_fip(session, auth, fip_id)
    fip = get_fip(session, auth, fip_id)
    if body.port_id is None:
        if body.fixed_ip_address is not None:
            raise BadRequest("fixed_ip_address needs a port_id")
        fip.port_id, fip.fixed_ip_address, fip.updated_at = None, None, now()
        fip.status = "DOWN"
    else:
        _associate(session, auth, fip, body.port_id, body.fixed_ip_address)
    session.add(fip)
    remember_key(session, auth, key, "floatingip", fip.id, "update")
    _commit(session)
    return fip


def describe_fip(session: Session, auth: AuthContext, fip_id: str,
                 description: str) -> FloatingIp:
    """A new description: nothing the hosts follow."""
    fip = get_fip(session, auth, fip_id)
    fip.description, fip.updated_at = description, now()
    session.add(fip)
    session.commit()
    return fip


def delete_fip(session: Session, auth: AuthContext, fip_id: str, key: str | None,
               client: Client | None = None) -> FloatingIp | None:
    """Releases the address (its port on the external network goes with it); returns
    the released row (None for a repeated request). One a host may still NAT needs
    `client` (503 before anything changes without it)."""
    if find_idempotent(session, auth, key, "floatingip", "delete"):
        return None
    fip = get_fip(session, auth, fip_id)
    if needs_sync(fip):
        require_client(client)
    port = session.get(Port, fip.floating_port_id)
    session.delete(fip)
    session.flush()
    if port is not None:
        remove_port(session, port)
    remember_key(session, auth, key, "floatingip", fip.id, "delete")
    session.commit()
    return fip


def needs_sync(fip: FloatingIp) -> bool:
    """Whether a host may hold NAT for it (associated, or applied before)."""
    return fip.port_id is not None or fip.status != "DOWN"


def require_client(client: Client | None) -> Client:
    """Before anything is written: a change no workflow would carry out is refused."""
    if client is None:
        raise ServiceUnavailable("Temporal is not reachable", type="TemporalUnavailable")
    return client


async def sync(client: Client, session: Session, fip_id: str, address: str,
               project_id: str, action: str) -> None:
    """Signal-with-start the floating IP's sync. If that fails, the change stays
    recorded, the row (if any) shows DOWN, and the caller learns to try again."""
    try:
        await floating_sync.signal_floating_ip_sync(client, fip_id, address, project_id,
                                                    action)
    except (RPCError, RuntimeError) as e:
        fip = session.get(FloatingIp, fip_id)
        if fip is not None:
            fip.status, fip.updated_at = "DOWN", now()
            session.add(fip)
            session.commit()
        raise ServiceUnavailable(f"the floating IP change is recorded but its hosts were "
                                 f"not told ({e}); repeat the request",
                                 type="TemporalUnavailable") from e


# ---- the routes' entry points: the change, then its hosts told -----------------------


async def create_and_sync(session: Session, auth: AuthContext, client: Client | None,
                          body: FloatingIpCreate, key: str | None) -> FloatingIp:
    if body.port_id is not None:
        require_client(client)
    fip = create_fip(session, auth, body, key)
    if client is not None and fip.port_id is not None:
        await sync(client, session, fip.id, fip.floating_ip_address, fip.project_id,
                   "associate")
    return fip


async def update_and_sync(session: Session, auth: AuthContext, client: Client | None,
                          fip_id: str, body: FloatingIpUpdate, key: str | None) -> FloatingIp:
    ready = require_client(client)
    fip = update_fip(session, auth, fip_id, body, key)
    await sync(ready, session, fip.id, fip.floating_ip_address, fip.project_id,
               "associate" if fip.port_id else "disassociate")
    return fip


async def release_and_sync(session: Session, auth: AuthContext, client: Client | None,
                           fip_id: str, key: str | None) -> None:
    fip = delete_fip(session, auth, fip_id, key, client)
    if fip is not None and client is not None and needs_sync(fip):
        await sync(client, session, fip_id, fip.floating_ip_address, fip.project_id,
                   "release")
