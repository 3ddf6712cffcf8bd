"""Neutron's discovery documents: the version list at the root (unauthenticated, as
Neutron's), the v2.0 resource list and the extensions vmflow really has."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from api.errors import NotFound
from api.openstack.common import OsAuthDep

router = APIRouter()

UPDATED = "2024-01-01T00:00:00-00:00"
# alias -> (name, description): only what the resources above carry. No routers, no
# quotas API, no tags or revisions, no availability zones: those are not listed.
EXTENSIONS = {
    "external-net": ("Neutron external network",
                     "router:external on networks; floating IPs come from them"),
    "security-group": ("security-group", "Security groups and their rules"),
    "binding": ("Port Binding", "binding:host_id (admins) and binding:vnic_type on ports"),
    "provider": ("Provider Network",
                 "provider:network_type and provider:segmentation_id (admins; vxlan)"),
    "port-security": ("Port Security", "port_security_enabled (always true in vmflow)"),
    "net-mtu": ("Network MTU", "the mtu of a network (read only)"),
    "standard-attr-timestamp": ("Resource timestamps", "created_at and updated_at"),
    "project-id": ("project_id field enabled", "project_id beside tenant_id"),
    "filter-validation": ("Filter parameters validation",
                          "an unknown filter parameter is refused (400)"),
}
RESOURCES = (("network", "networks"), ("subnet", "subnets"), ("port", "ports"),
             ("security_group", "security-groups"),
             ("security_group_rule", "security-group-rules"), ("floatingip", "floatingips"))


def base(request: Request) -> str:
    """The mount's own root (.../networking): base_url is the top-level app's."""
    app_root = str(request.base_url).rstrip("/")
    return app_root + request.scope.get("root_path", "")[
        len(request.scope.get("app_root_path", "")):]


@router.get("/")
def versions(request: Request) -> dict[str, Any]:
    return {"versions": [{"id": "v2.0", "status": "CURRENT", "links": [
        {"href": f"{base(request)}/v2.0/", "rel": "self"}]}]}


@router.get("/v2.0")
@router.get("/v2.0/")
def resources(request: Request, auth: OsAuthDep) -> dict[str, Any]:
    return {"resources": [
        {"name": name, "collection": collection,
         "links": [{"href": f"{base(request)}/v2.0/{collection}", "rel": "self"}]}
        for name, collection in RESOURCES]}


def extension(alias: str) -> dict[str, Any]:
    name, description = EXTENSIONS[alias]
    return {"alias": alias, "name": name, "description": description, "updated": UPDATED,
            "links": []}


@router.get("/v2.0/extensions")
def list_extensions(auth: OsAuthDep) -> dict[str, Any]:
    return {"extensions": [extension(a) for a in EXTENSIONS]}


@router.get("/v2.0/extensions/{alias}")
def show_extension(alias: str, auth: OsAuthDep) -> dict[str, Any]:
    if alias not in EXTENSIONS:
        raise NotFound(f"Extension with alias {alias} does not exist",
                       type="ExtensionNotFound")
    return {"extension": extension(alias)}
