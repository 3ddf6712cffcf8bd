"""Neutron's networks and subnets: /v2.0/networks[/{id}] and /v2.0/subnets[/{id}], over
api/services/networks.py (the same calls /v1's routers make)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import Field

from api.deps import SessionDep
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
from api.schemas.networks import NetName, NetworkCreate, SubnetCreate
from api.services import networks

router = APIRouter(prefix="/v2.0")

MTU = 1450  # every vmflow network's (VXLAN over a 1500-byte underlay)

# Neutron attributes vmflow gives one value only: any other is refused, not dropped
NETWORK_FIXED = {
    "admin_state_up": lambda v: v is True,  # nothing would take the network down
    "port_security_enabled": lambda v: v is True,  # nwfilter guards every port
    "description": lambda v: v in ("", None),
    "mtu": lambda v: v == MTU,
    "is_default": lambda v: v is False,
    "availability_zone_hints": lambda v: v == [],
    "provider:network_type": lambda v: v == "vxlan",
    "provider:physical_network": lambda v: v is None,
    "provider:segmentation_id": lambda v: False,  # vmflow picks the VXLAN id
    "vlan_transparent": lambda v: v is False,
    "qos_policy_id": lambda v: v is None,
}
SUBNET_FIXED = {
    "host_routes": lambda v: v == [],
    "ipv6_ra_mode": lambda v: v is None,
    "ipv6_address_mode": lambda v: v is None,
    "subnetpool_id": lambda v: v is None,
    "use_default_subnet_pool": lambda v: v is False,
    "segment_id": lambda v: v is None,
    "service_types": lambda v: v == [],
    "description": lambda v: v in ("", None),
    "dns_publish_fixed_ip": lambda v: v is False,
}
SUBNET_SET_BY_HOSTS = ("cidr", "ip_version", "gateway_ip", "allocation_pools", "enable_dhcp",
                       "dns_nameservers", "network_id")


class NetworkChange(V1Request):
    name: NetName | None = None
    shared: bool | None = None
    router_external: bool | None = Field(default=None, alias="router:external")


class NameChange(V1Request):
    name: NetName


@router.get("/networks")
def list_networks(request: Request, session: SessionDep, auth: OsAuthDep) -> dict[str, Any]:
    items = [views.network(n) for n in networks.list_networks(session, auth)]
    return listed(request, items, "networks", views.NETWORK_ATTRS)


@router.post("/networks", status_code=201)
def create_network(body: JsonBody, session: SessionDep, auth: OsWriterDep) -> dict[str, Any]:
    attrs = resource_body(body, "network")
    refuse(attrs, NETWORK_FIXED)
    owner = acting_as(session, auth, attrs)
    v1 = to_v1(NetworkCreate, attrs, ("name", "admin_state_up", "shared", "router:external"))
    return {"network": views.network(networks.create_network(session, owner, v1, None))}


@router.get("/networks/{network_id}")
def show_network(network_id: str, request: Request, session: SessionDep,
                 auth: OsAuthDep) -> dict[str, Any]:
    net = networks.network_view(session, auth, networks.get_network(session, auth, network_id))
    return {"network": selected(request, views.network(net))}


@router.put("/networks/{network_id}")
def update_network(network_id: str, body: JsonBody, session: SessionDep,
                   auth: OsWriterDep) -> dict[str, Any]:
    """name; shared and router:external (admins); the rest only as they are."""
    attrs = resource_body(body, "network")
    networks.get_network(session, auth, network_id)  # 404 before any 400
    refuse(attrs, NETWORK_FIXED)
    change = to_v1(NetworkChange, attrs, ("name", "shared", "router:external"))
    net = networks.update_network(session, auth, network_id, change.name, change.shared,
                                  change.router_external)
    return {"network": views.network(net)}


@router.delete("/networks/{network_id}", status_code=204)
def delete_network(network_id: str, session: SessionDep, auth: OsWriterDep) -> Response:
    """409 NetworkInUse while it has ports; its subnet goes with it."""
    networks.delete_network(session, auth, network_id, None)
    return Response(status_code=204)


# --- subnets -------------------------------------------------------------------------

@router.get("/subnets")
def list_subnets(request: Request, session: SessionDep, auth: OsAuthDep) -> dict[str, Any]:
    items = [views.subnet(s) for s in networks.list_subnets(session, auth)]
    return listed(request, items, "subnets", views.SUBNET_ATTRS)


@router.post("/subnets", status_code=201)
def create_subnet(body: JsonBody, session: SessionDep, auth: OsWriterDep) -> dict[str, Any]:
    """One IPv4 subnet per network (409 SubnetExists for a second)."""
    attrs = resource_body(body, "subnet")
    refuse(attrs, SUBNET_FIXED)
    owner = acting_as(session, auth, attrs)
    v1 = to_v1(SubnetCreate, attrs, ("network_id", "cidr", "name", "ip_version", "gateway_ip",
                                     "allocation_pools", "enable_dhcp", "dns_nameservers"))
    return {"subnet": views.subnet(networks.create_subnet(session, owner, v1, None))}


@router.get("/subnets/{subnet_id}")
def show_subnet(subnet_id: str, request: Request, session: SessionDep,
                auth: OsAuthDep) -> dict[str, Any]:
    return {"subnet": selected(request,
                               views.subnet(networks.get_subnet(session, auth, subnet_id)))}


@router.put("/subnets/{subnet_id}")
def update_subnet(subnet_id: str, body: JsonBody, session: SessionDep,
                  auth: OsWriterDep) -> dict[str, Any]:
    """name only: the addressing is what the hosts' DHCP serves (the same values
    again are fine, as `openstack subnet set` may repeat them)."""
    attrs = resource_body(body, "subnet")
    current = views.subnet(networks.get_subnet(session, auth, subnet_id))
    refuse(attrs, SUBNET_FIXED)
    for key in SUBNET_SET_BY_HOSTS:
        if key in attrs and attrs[key] != current[key]:
            raise BadRequest(f"Invalid input for {key}: a subnet's {key} cannot be changed "
                             "in vmflow", type="InvalidInput")
    name = to_v1(NameChange, {"name": attrs.get("name", current["name"])}, ("name",)).name
    return {"subnet": views.subnet(networks.rename_subnet(session, auth, subnet_id, name))}


@router.delete("/subnets/{subnet_id}", status_code=204)
def delete_subnet(subnet_id: str, session: SessionDep, auth: OsWriterDep) -> Response:
    """409 SubnetInUse while a port holds one of its addresses."""
    networks.delete_subnet(session, auth, subnet_id, None)
    return Response(status_code=204)
