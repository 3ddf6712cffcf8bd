"""Neutron's ports: /v2.0/ports[/{id}], over api/services/ports.py, with the same
security group syncs /v1's routes signal (api/routers/ports.py)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from api.deps import MaybeTemporalDep, SessionDep
from api.errors import BadRequest, Forbidden, NotFound
from api.openstack.common import OsAuthDep, OsWriterDep
from api.openstack.network import views
from api.openstack.network.common import (
    JsonBody,
    acting_as,
    listed,
    refuse,
    resource_body,
    selected,
    to_v1,
)
from api.openstack.network.networks import NameChange
from api.schemas.ports import PortCreate
from api.services import ports
from api.services.security_groups import sync_members_changed

router = APIRouter(prefix="/v2.0")

PORT_FIXED = {
    "admin_state_up": lambda v: v is True,  # nothing would take the port down
    "port_security_enabled": lambda v: v is True,  # nwfilter guards every port
    "description": lambda v: v in ("", None),
    "mac_address": lambda v: False,  # vmflow makes each MAC (unique, locally administered)
    "allowed_address_pairs": lambda v: v == [],
    "extra_dhcp_opts": lambda v: v == [],
    "binding:vnic_type": lambda v: v == "normal",
    "binding:profile": lambda v: v in ({}, None),
    "qos_policy_id": lambda v: v is None,
    "dns_name": lambda v: v in ("", None),
}
# what a port's server and hosts follow: changed through Nova (os-interface), not here
SET_BY_ATTACHMENT = ("network_id", "fixed_ips", "security_groups", "device_id",
                     "device_owner", "binding:host_id")


@router.get("/ports")
def list_ports(request: Request, session: SessionDep, auth: OsAuthDep) -> dict[str, Any]:
    items = [views.port(p, auth) for p in ports.list_ports(session, auth)]
    return listed(request, items, "ports", views.PORT_ATTRS)


@router.post("/ports", status_code=201)
async def create_port(body: JsonBody, session: SessionDep, auth: OsWriterDep,
                      client: MaybeTemporalDep) -> dict[str, Any]:
    """fixed_ips [{subnet_id, ip_address}] or one address from the pool; the
    project's default group unless security_groups; binding:host_id admins only."""
    attrs = resource_body(body, "port")
    refuse(attrs, PORT_FIXED)
    owner = acting_as(session, auth, attrs)
    v1 = to_v1(PortCreate, attrs, ("network_id", "name", "admin_state_up", "fixed_ips",
                                   "security_groups", "device_id", "device_owner",
                                   "binding:host_id"))
    port = ports.create_port(session, owner, v1, None)
    await sync_members_changed(session, client, port.security_groups, port.project_id)
    return {"port": views.port(port, auth)}


@router.get("/ports/{port_id}")
def show_port(port_id: str, request: Request, session: SessionDep,
              auth: OsAuthDep) -> dict[str, Any]:
    port = ports.view(session, ports.get_port(session, auth, port_id))
    return {"port": selected(request, views.port(port, auth))}


@router.put("/ports/{port_id}")
def update_port(port_id: str, body: JsonBody, session: SessionDep,
                auth: OsWriterDep) -> dict[str, Any]:
    """name; the attachment (device, addresses, groups, binding) only as it is."""
    attrs = resource_body(body, "port")
    current = views.port(ports.view(session, ports.get_port(session, auth, port_id)), auth)
    if "binding:host_id" in attrs and not auth.is_admin:
        raise Forbidden("only an admin sets binding:host_id")
    refuse(attrs, PORT_FIXED)
    for key in SET_BY_ATTACHMENT:
        if key in attrs and not _same(attrs[key], current.get(key)):
            raise BadRequest(f"Invalid input for {key}: a port's {key} cannot be changed "
                             "in vmflow (attach and detach through the compute API)",
                             type="InvalidInput")
    name = to_v1(NameChange, {"name": attrs.get("name", current["name"])}, ("name",)).name
    return {"port": views.port(ports.rename_port(session, auth, port_id, name), auth)}


@router.delete("/ports/{port_id}", status_code=204)
async def delete_port(port_id: str, session: SessionDep, auth: OsWriterDep,
                      client: MaybeTemporalDep) -> Response:
    """Frees its addresses and disassociates its floating IPs."""
    try:
        port = ports.get_port(session, auth, port_id)
        groups, project = ports.groups(session, [port.id])[port.id], port.project_id
    except NotFound:
        groups, project = [], auth.project_id
    ports.delete_port(session, auth, port_id, None)
    await sync_members_changed(session, client, groups, project)
    return Response(status_code=204)


def _same(given: Any, current: Any) -> bool:
    """security_groups in any order is the same set."""
    if isinstance(given, list) and isinstance(current, list) \
            and all(isinstance(g, str) for g in given):
        return sorted(given) == sorted(current)
    return bool(given == current)
