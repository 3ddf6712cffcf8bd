"""Nova's server views per microversion, built from vmflow's rows (the fields and
their presence follow nova/api/openstack/compute/views/servers.py and Tempest's
response schemas, tempest.lib.api_schema.response.compute.v2_*.servers):

- brief (GET /servers): id, name, links;
- detail (GET /servers/detail, GET /servers/{id}; PUT and rebuild from 2.75);
- basic (PUT /servers/{id} and rebuild below 2.75): the detail without the
  extension attributes (OS-EXT-*, OS-SRV-USG, key_name, security_groups, ...).

Admin-only fields (OS-EXT-SRV-ATTR:*, host_status) as Nova's default policy has them.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastapi import Request
from sqlmodel import Session, col, select
from temporalio.client import Client

from api.auth import AuthContext
from api.openstack.microversion import Version
from api.schemas.common import utc
from api.services import server_nics
from api.services.hosts import seen
from vmflow import states
from vmflow.host_liveness import fresh
from vmflow.models import Flavor, Host, Instance
from vmflow.network_models import Port, PortSecurityGroup, SecurityGroup
from vmflow.settings import get_settings

V = states.VmState
# OS-EXT-STS:power_state (nova.compute.power_state): 0 NOSTATE, 1 RUNNING, 3 PAUSED,
# 4 SHUTDOWN, 7 SUSPENDED; from the vm_state, the only power record vmflow keeps
POWER = {V.ACTIVE: 1, V.RESCUED: 1, V.RESIZED: 1, V.PAUSED: 3, V.STOPPED: 4, V.SHELVED: 4,
         V.SUSPENDED: 7}
# Nova shows `progress` only in these statuses
PROGRESS_STATUSES = frozenset({"ACTIVE", "BUILD", "REBUILD", "RESIZE", "VERIFY_RESIZE",
                               "MIGRATING"})


def nova_time(dt: datetime | None) -> str | None:
    """Nova's timestamps: ISO 8601 in UTC with a Z, no fraction."""
    if dt is None:
        return None
    return utc(dt).strftime("%Y-%m-%dT%H:%M:%SZ")


def endpoint(request: Request) -> str:
    """This API's root URL, http://host/compute/: the mount's path is the root_path
    (request.base_url names the whole application's)."""
    root = request.scope.get("root_path", "").rstrip("/")
    return str(request.url.replace(path=f"{root}/", query="", fragment=""))


def links(request: Request, collection: str, rid: str, self_link: bool = True
          ) -> list[dict[str, str]]:
    """Nova's self (versioned) and bookmark (unversioned) links, on this endpoint."""
    base = endpoint(request)
    out = [{"rel": "bookmark", "href": f"{base}{collection}/{rid}"}]
    if self_link:
        out.insert(0, {"rel": "self", "href": f"{base}v2.1/{collection}/{rid}"})
    return out


@dataclass
class ViewContext:
    """What a page of server views needs beyond the rows, fetched once per page."""

    request: Request
    version: Version
    auth: AuthContext
    addresses: dict[str, server_nics.Addresses] = field(default_factory=dict)
    flavors: dict[str, Flavor] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)
    host_status: dict[str, str] = field(default_factory=dict)

    @property
    def admin(self) -> bool:
        return self.auth.is_admin


async def context(request: Request, version: Version, auth: AuthContext, session: Session,
                  client: Client | None, insts: list[Instance]) -> ViewContext:
    ids = [i.id for i in insts]
    ctx = ViewContext(request, version, auth, addresses=server_nics.addresses(session, ids))
    flavor_ids = {i.flavor_id for i in insts}
    ctx.flavors = {f.id: f for f in session.exec(
        select(Flavor).where(col(Flavor.id).in_(flavor_ids)))}
    ctx.groups = security_groups(session, ids)
    if auth.is_admin and version >= Version(2, 16):
        ctx.host_status = await host_statuses(session, client,
                                              {i.host for i in insts if i.host})
    return ctx


def security_groups(session: Session, instance_ids: list[str]) -> dict[str, list[str]]:
    """The names of the groups on each server's ports (Nova asks Neutron the same)."""
    out: dict[str, list[str]] = {}
    if not instance_ids:
        return out
    rows = session.exec(
        select(Port.device_id, SecurityGroup.name)
        .join(PortSecurityGroup, col(PortSecurityGroup.port_id) == col(Port.id))
        .join(SecurityGroup, col(SecurityGroup.id) == col(PortSecurityGroup.security_group_id))
        .where(col(Port.device_id).in_(instance_ids),
               Port.device_owner == server_nics.DEVICE_OWNER))
    for device, name in rows:
        names = out.setdefault(device, [])
        if name not in names:
            names.append(name)
    return out


async def host_statuses(session: Session, client: Client | None,
                        names: set[str]) -> dict[str, str]:
    """Nova's host_status: UP, DOWN (no fresh heartbeat or forced down), MAINTENANCE
    (disabled), UNKNOWN (not a registered host)."""
    down_after = get_settings().host_down_after
    hosts = {h.name: h for h in session.exec(select(Host).where(col(Host.name).in_(names)))}
    ordered = sorted(hosts)
    beats = await asyncio.gather(*(seen(client, n) for n in ordered))
    out = {n: "UNKNOWN" for n in names}
    for n, beat in zip(ordered, beats, strict=True):
        h = hosts[n]
        if h.forced_down or not fresh(beat, down_after):
            out[n] = "DOWN"
        elif h.status == "disabled":
            out[n] = "MAINTENANCE"
        else:
            out[n] = "UP"
    return out


def brief(ctx: ViewContext, inst: Instance) -> dict[str, Any]:
    return {"id": inst.id, "name": inst.name,
            "links": links(ctx.request, "servers", inst.id)}


def _flavor(ctx: ViewContext, inst: Instance) -> dict[str, Any]:
    f = ctx.flavors.get(inst.flavor_id)
    if ctx.version < Version(2, 47):
        return {"id": inst.flavor_id,
                "links": links(ctx.request, "flavors", inst.flavor_id, self_link=False)}
    if f is None:  # the flavor row is gone: Nova shows what it kept; we kept nothing
        return {"original_name": inst.flavor_id, "vcpus": 0, "ram": 0, "disk": 0,
                "ephemeral": 0, "swap": 0, "extra_specs": {}}
    return {"original_name": f.name, "vcpus": f.vcpus, "ram": f.ram_mb, "disk": f.disk_gb,
            "ephemeral": 0, "swap": 0, "extra_specs": dict(f.extra_specs or {})}


def _addresses(ctx: ViewContext, inst: Instance, extended: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for net, entries in ctx.addresses.get(inst.id, {}).items():
        out[net] = [
            {"version": e["version"], "addr": e["addr"],
             **({"OS-EXT-IPS:type": e["OS-EXT-IPS:TYPE"],
                 "OS-EXT-IPS-MAC:mac_addr": e["OS-EXT-IPS-MAC:mac_addr"]} if extended else {})}
            for e in entries]
    return out


def basic(ctx: ViewContext, inst: Instance, image_id: str | None = None) -> dict[str, Any]:
    """The common part: Nova's `_show_server` without the extensions (what PUT and
    rebuild answer below 2.75). `image_id`: the one a rebuild just asked for."""
    v = ctx.version
    status = states.status(inst.vm_state, inst.task_state)
    image = image_id or inst.image_id
    server: dict[str, Any] = {
        "id": inst.id, "name": inst.name, "status": status,
        "tenant_id": inst.project_id, "user_id": inst.user_id,
        "metadata": dict(inst.meta or {}),
        "hostId": host_id(inst),
        "image": {"id": image, "links": links(ctx.request, "images", image, self_link=False)},
        "flavor": _flavor(ctx, inst),
        "created": nova_time(inst.created_at), "updated": nova_time(inst.updated_at),
        "addresses": _addresses(ctx, inst, extended=False),
        "accessIPv4": inst.access_ip_v4 or "", "accessIPv6": inst.access_ip_v6 or "",
        "links": links(ctx.request, "servers", inst.id),
        "OS-DCF:diskConfig": "MANUAL",
    }
    if status in PROGRESS_STATUSES:
        server["progress"] = 100 if status == "ACTIVE" else 0
    if status == "ERROR" and inst.fault:
        server["fault"] = {"code": 500, "created": nova_time(inst.updated_at),
                           "message": inst.fault}
    if v >= Version(2, 9):
        server["locked"] = bool(inst.locked)
    if v >= Version(2, 19):
        server["description"] = inst.description
    if v >= Version(2, 26):
        server["tags"] = []  # vmflow keeps no server tags
    if v >= Version(2, 63):
        server["trusted_image_certificates"] = None
    if v >= Version(2, 73):
        server["locked_reason"] = inst.locked_reason
    return server


def host_id(inst: Instance) -> str:
    """Nova's hostId: an opaque hash of the host and the project ("" before a host)."""
    if not inst.host:
        return ""
    return hashlib.sha224((inst.project_id + inst.host).encode()).hexdigest()


def detail(ctx: ViewContext, inst: Instance, show: bool = True,
           image_id: str | None = None) -> dict[str, Any]:
    """GET /servers/{id} (show) and each item of GET /servers/detail (not show)."""
    v = ctx.version
    server = basic(ctx, inst, image_id)
    server["addresses"] = _addresses(ctx, inst, extended=True)
    vm_state = "building" if inst.vm_state == V.BUILDING else inst.vm_state
    server.update({
        "key_name": inst.key_name,
        "OS-EXT-AZ:availability_zone": "nova",
        "OS-EXT-STS:vm_state": vm_state,
        "OS-EXT-STS:task_state": inst.task_state,
        "OS-EXT-STS:power_state": POWER.get(V(inst.vm_state), 0),
        "OS-SRV-USG:launched_at": (nova_time(inst.created_at)
                                   if inst.host and inst.vm_state != V.BUILDING else None),
        "OS-SRV-USG:terminated_at": nova_time(inst.deleted_at),
        "os-extended-volumes:volumes_attached": [],
        "config_drive": "",
    })
    groups = ctx.groups.get(inst.id)
    if groups:
        server["security_groups"] = [{"name": n} for n in groups]
    if ctx.admin:
        server.update({
            "OS-EXT-SRV-ATTR:host": inst.host,
            "OS-EXT-SRV-ATTR:hypervisor_hostname": inst.host,
            "OS-EXT-SRV-ATTR:instance_name": f"instance-{inst.id}",
        })
        if v >= Version(2, 3):
            server.update({
                "OS-EXT-SRV-ATTR:reservation_id": f"r-{inst.id[:8]}",
                "OS-EXT-SRV-ATTR:launch_index": 0,
                "OS-EXT-SRV-ATTR:kernel_id": "",
                "OS-EXT-SRV-ATTR:ramdisk_id": "",
                "OS-EXT-SRV-ATTR:hostname": hostname(inst.name),
                "OS-EXT-SRV-ATTR:root_device_name": "/dev/vda",
                "OS-EXT-SRV-ATTR:user_data": inst.user_data,
            })
        if v >= Version(2, 16):
            server["host_status"] = ctx.host_status.get(inst.host or "", "")
    if show and v >= Version(2, 71):
        server["server_groups"] = []  # vmflow has no server groups
    return server


def hostname(name: str) -> str:
    """Nova's sanitized hostname: lower case letters, digits and dashes."""
    text = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    return text[:63] or "server"


def updated(ctx: ViewContext, inst: Instance) -> dict[str, Any]:
    """PUT /servers/{id}: the basic view, the full one from 2.75 (as GET)."""
    if ctx.version >= Version(2, 75):
        return detail(ctx, inst)
    server = basic(ctx, inst)
    if ctx.version >= Version(2, 71):
        server["server_groups"] = []
    return server


def rebuilt(ctx: ViewContext, inst: Instance, image_id: str) -> dict[str, Any]:
    """The rebuild's 202 body: as PUT's, plus key_name from 2.54 and user_data from 2.57
    (which replaces OS-EXT-SRV-ATTR:user_data from 2.75)."""
    v = ctx.version
    if v >= Version(2, 75):
        server = detail(ctx, inst, image_id=image_id)
        server.pop("OS-EXT-SRV-ATTR:user_data", None)
    else:
        server = basic(ctx, inst, image_id)
    if v >= Version(2, 54):
        server["key_name"] = inst.key_name
    if v >= Version(2, 57):
        server["user_data"] = inst.user_data
    if v >= Version(2, 71):
        server["server_groups"] = []
    return server
