"""Neutron's floating IPs: /v2.0/floatingips[/{id}], over api/services/floating_ips.py
(associate, disassociate and release signal the same sync workflow /v1's routes do).
vmflow has no routers: router_id is always null and the guest's host NATs 1:1."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from api.deps import MaybeTemporalDep, SessionDep
from api.errors import BadRequest
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
from api.schemas.common import Request as V1Request
from api.schemas.floating_ips import FloatingIpCreate, FloatingIpUpdate
from api.schemas.networks import NetName
from api.services import floating_ips, networks

router = APIRouter(prefix="/v2.0")

FIP_FIXED = {
    "router_id": lambda v: v is None,  # no routers in vmflow
    "qos_policy_id": lambda v: v is None,
    "dns_name": lambda v: v in ("", None),
    "dns_domain": lambda v: v in ("", None),
}


class Description(V1Request):
    description: NetName


@router.get("/floatingips")
def list_fips(request: Request, session: SessionDep, auth: OsAuthDep) -> dict[str, Any]:
    items = [views.floating_ip(f) for f in floating_ips.list_fips(session, auth)]
    return listed(request, items, "floatingips", views.FIP_ATTRS)


@router.post("/floatingips", status_code=201)
async def create_fip(body: JsonBody, session: SessionDep, auth: OsWriterDep,
                     client: MaybeTemporalDep) -> dict[str, Any]:
    """From the external network's pool (409 when exhausted, 409 over quota); with a
    port_id it is associated at once."""
    attrs = resource_body(body, "floatingip")
    refuse(attrs, FIP_FIXED)
    owner = acting_as(session, auth, attrs)
    v1 = to_v1(FloatingIpCreate, attrs, ("floating_network_id", "floating_ip_address",
                                         "port_id", "fixed_ip_address", "description"))
    if attrs.get("subnet_id") is not None:  # the external network has one subnet
        subnet = networks.subnet_of(session, v1.floating_network_id)
        if subnet is None or subnet.id != attrs["subnet_id"]:
            raise BadRequest(f"subnet {attrs['subnet_id']} is not a subnet of network "
                             f"{v1.floating_network_id}", type="InvalidInput")
    fip = await floating_ips.create_and_sync(session, owner, client, v1, None)
    return {"floatingip": views.floating_ip(fip)}


@router.get("/floatingips/{fip_id}")
def show_fip(fip_id: str, request: Request, session: SessionDep,
             auth: OsAuthDep) -> dict[str, Any]:
    return {"floatingip": selected(request,
                                   views.floating_ip(floating_ips.get_fip(session, auth,
                                                                          fip_id)))}


@router.put("/floatingips/{fip_id}")
async def update_fip(fip_id: str, body: JsonBody, session: SessionDep, auth: OsWriterDep,
                     client: MaybeTemporalDep) -> dict[str, Any]:
    """{port_id[, fixed_ip_address]}: associate; {port_id: null}: disassociate;
    description. Without port_id the association stays as it is."""
    attrs = resource_body(body, "floatingip")
    fip = floating_ips.get_fip(session, auth, fip_id)  # 404 before any 400
    refuse(attrs, FIP_FIXED)
    description = to_v1(Description, attrs, ("description",)) if "description" in attrs \
        else None
    if "port_id" in attrs:
        change = to_v1(FloatingIpUpdate, attrs, ("port_id", "fixed_ip_address"))
        fip = await floating_ips.update_and_sync(session, auth, client, fip_id, change, None)
    elif "fixed_ip_address" in attrs:
        raise BadRequest("fixed_ip_address needs a port_id", type="InvalidInput")
    if description is not None:
        fip = floating_ips.describe_fip(session, auth, fip_id, description.description)
    return {"floatingip": views.floating_ip(fip)}


@router.delete("/floatingips/{fip_id}", status_code=204)
async def delete_fip(fip_id: str, session: SessionDep, auth: OsWriterDep,
                     client: MaybeTemporalDep) -> Response:
    """Release; a host that NATs it lets go."""
    await floating_ips.release_and_sync(session, auth, client, fip_id, None)
    return Response(status_code=204)
