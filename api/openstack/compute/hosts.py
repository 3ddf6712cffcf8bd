"""Nova's os-hypervisors, os-services and os-availability-zone over vmflow's hosts
(api/services/hosts.py): each host is one compute node and one nova-compute service in
the single zone `nova`. Up/down is the host's heartbeat (as the scheduler judges it),
enabled/disabled and forced_down the admin's service state.

Ids: Nova's integers before 2.53 and UUIDs from it; vmflow names hosts, so both are
derived from the name (stable, distinct for hypervisor and service)."""

from __future__ import annotations

import ipaddress
import json
import uuid
from typing import Any

from fastapi import APIRouter, Request
from sqlmodel import Session, col, select
from temporalio.client import Client

from api.deps import MaybeTemporalDep, SessionDep
from api.errors import BadRequest, NotFound
from api.openstack.common import OsAdminDep, OsAuthDep
from api.openstack.compute.listing import PREFIX, checked, nova_time, page
from api.openstack.microversion import MicroversionDep, Version
from api.schemas.hosts import HostPublic, HostUpdate
from api.services import hosts
from vmflow.models import Host, Instance
from vmflow.states import VmState

router = APIRouter(prefix=PREFIX)

ZONE = "nova"  # vmflow has one availability zone; Nova's default name for it
BINARY = "nova-compute"
CPU_INFO_OBJECT = Version(2, 28)
PAGED = Version(2, 33)
UUID_IDS = Version(2, 53)
FORCED_DOWN = Version(2, 11)
NAMESPACE = uuid.UUID("8d1c7e43-0f55-4c39-9a4e-6f2b0d5c1a27")  # vmflow's hosts


def ident(kind: str, host: str, v: Version) -> int | str:
    u = uuid.uuid5(NAMESPACE, f"{kind}/{host}")
    return str(u) if v >= UUID_IDS else u.int >> 97


async def _views(session: Session, client: Client | None,
                 rows: list[Host] | None = None) -> list[HostPublic]:
    return await hosts.host_views(session, client, hosts.listed(session) if rows is None
                                  else rows)


def _by_id(session: Session, kind: str, given: str, v: Version) -> Host:
    if v >= UUID_IDS:
        try:
            uuid.UUID(given)
        except ValueError:
            raise BadRequest(f"Invalid uuid {given}") from None
    for h in hosts.listed(session):
        if str(ident(kind, h.name, v)) == given:
            return h
    raise NotFound(f"{'Hypervisor' if kind == 'hypervisor' else 'Service'} with ID "
                   f"{given} could not be found.")


# --- os-hypervisors ------------------------------------------------------------------


def _host_ip(h: HostPublic) -> str | None:
    try:
        return str(ipaddress.ip_address(h.migration_address))
    except ValueError:
        return None


def _servers(session: Session, host: str) -> list[dict[str, str]]:
    rows = session.exec(select(Instance).where(
        Instance.host == host, col(Instance.deleted_at).is_(None),
        Instance.vm_state != VmState.DELETED).order_by(col(Instance.created_at)))
    return [{"uuid": r.id, "name": r.name} for r in rows]


def hypervisor_summary(h: HostPublic, v: Version) -> dict[str, Any]:
    # the vmflow host's name, as servers' OS-EXT-SRV-ATTR:hypervisor_hostname: unique,
    # where the machine's hostname is not (namespaced hosts share it)
    return {"id": ident("hypervisor", h.name, v), "hypervisor_hostname": h.name,
            "state": h.state, "status": h.status}


def hypervisor_detail(h: HostPublic, v: Version) -> dict[str, Any]:
    cpu = {"arch": "x86_64", "model": h.virt_type, "vendor": "vmflow",
           "features": sorted(h.traits), "topology": {"cores": h.vcpus, "sockets": 1,
                                                      "threads": 1}}
    free_disk = h.disk_gb - h.used.disk_gb
    return hypervisor_summary(h, v) | {
        "cpu_info": cpu if v >= CPU_INFO_OBJECT else json.dumps(cpu),
        "current_workload": 0, "disk_available_least": free_disk, "host_ip": _host_ip(h),
        "free_disk_gb": free_disk, "free_ram_mb": h.ram_mb - h.used.ram_mb,
        "hypervisor_type": "QEMU", "hypervisor_version": 0,
        "local_gb": h.disk_gb, "local_gb_used": h.used.disk_gb,
        "memory_mb": h.ram_mb, "memory_mb_used": h.used.ram_mb,
        "running_vms": h.instances, "vcpus": h.vcpus, "vcpus_used": h.used.vcpus,
        "service": {"host": h.name, "id": ident("service", h.name, v),
                    "disabled_reason": h.disabled_reason}}


async def _hypervisors(request: Request, session: Session, client: Client | None,
                       v: Version, detailed: bool) -> dict[str, Any]:
    pattern = request.query_params.get("hypervisor_hostname_pattern") if v >= UUID_IDS \
        else None
    with_servers = v >= UUID_IDS and \
        request.query_params.get("with_servers", "").lower() in ("true", "1", "yes")
    views = [h for h in await _views(session, client)
             if pattern is None or pattern in h.name]
    nxt = None
    if v >= PAGED:
        views, nxt = page(request, views, lambda h: str(ident("hypervisor", h.name, v)),
                          "os-hypervisors/detail" if detailed else "os-hypervisors")
    items = []
    for h in views:
        item = hypervisor_detail(h, v) if detailed else hypervisor_summary(h, v)
        if with_servers:
            item["servers"] = _servers(session, h.name)
        items.append(item)
    body: dict[str, Any] = {"hypervisors": items}
    if nxt:
        body["hypervisors_links"] = nxt
    return body


@router.get("/os-hypervisors")
async def list_hypervisors(request: Request, session: SessionDep, auth: OsAdminDep,
                           client: MaybeTemporalDep, v: MicroversionDep) -> dict[str, Any]:
    return await _hypervisors(request, session, client, v, detailed=False)


@router.get("/os-hypervisors/detail")
async def list_hypervisors_detail(request: Request, session: SessionDep, auth: OsAdminDep,
                                  client: MaybeTemporalDep,
                                  v: MicroversionDep) -> dict[str, Any]:
    return await _hypervisors(request, session, client, v, detailed=True)


@router.get("/os-hypervisors/statistics")
async def hypervisor_statistics(session: SessionDep, auth: OsAdminDep,
                                client: MaybeTemporalDep) -> dict[str, Any]:
    views = await _views(session, client)
    total = {k: sum(getattr(h, a) for h in views) for k, a in
             (("vcpus", "vcpus"), ("memory_mb", "ram_mb"), ("local_gb", "disk_gb"),
              ("running_vms", "instances"))}
    used = {"vcpus_used": sum(h.used.vcpus for h in views),
            "memory_mb_used": sum(h.used.ram_mb for h in views),
            "local_gb_used": sum(h.used.disk_gb for h in views)}
    free_disk = total["local_gb"] - used["local_gb_used"]
    return {"hypervisor_statistics": total | used | {
        "count": len(views), "current_workload": 0, "disk_available_least": free_disk,
        "free_disk_gb": free_disk, "free_ram_mb": total["memory_mb"] - used["memory_mb_used"]}}


@router.get("/os-hypervisors/{hypervisor_id}")
async def show_hypervisor(hypervisor_id: str, request: Request, session: SessionDep,
                          auth: OsAdminDep, client: MaybeTemporalDep,
                          v: MicroversionDep) -> dict[str, Any]:
    host = _by_id(session, "hypervisor", hypervisor_id, v)
    item = hypervisor_detail((await _views(session, client, [host]))[0], v)
    if v >= UUID_IDS and request.query_params.get("with_servers", "").lower() in (
            "true", "1", "yes"):
        item["servers"] = _servers(session, host.name)
    return {"hypervisor": item}


@router.get("/os-hypervisors/{pattern}/search")
async def search_hypervisors(pattern: str, session: SessionDep, auth: OsAdminDep,
                             client: MaybeTemporalDep, v: MicroversionDep) -> dict[str, Any]:
    """Before 2.53 only (then: hypervisor_hostname_pattern); 404 when nothing matches."""
    if v >= UUID_IDS:
        raise NotFound("The resource could not be found.")
    found = [h for h in await _views(session, client) if pattern in h.name]
    if not found:
        raise NotFound(f"No hypervisor matching '{pattern}' could be found.")
    return {"hypervisors": [hypervisor_summary(h, v) for h in found]}


@router.get("/os-hypervisors/{pattern}/servers")
async def hypervisor_servers(pattern: str, session: SessionDep, auth: OsAdminDep,
                             client: MaybeTemporalDep, v: MicroversionDep) -> dict[str, Any]:
    """Before 2.53 only (then: with_servers)."""
    found = await search_hypervisors(pattern, session, auth, client, v)
    for item, h in zip(found["hypervisors"], [
            h for h in hosts.listed(session) if pattern in h.name], strict=True):
        item["servers"] = _servers(session, h.name)
    return found


# --- os-services ---------------------------------------------------------------------


def service_view(h: HostPublic, v: Version) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": ident("service", h.name, v), "binary": BINARY, "host": h.name, "zone": ZONE,
        "status": h.status, "state": h.state, "disabled_reason": h.disabled_reason,
        "updated_at": nova_time(h.last_seen or h.updated_at)}
    if v >= FORCED_DOWN:
        out["forced_down"] = h.forced_down
    return out


@router.get("/os-services")
async def list_services(request: Request, session: SessionDep, auth: OsAdminDep,
                        client: MaybeTemporalDep, v: MicroversionDep) -> dict[str, Any]:
    host, binary = request.query_params.get("host"), request.query_params.get("binary")
    if binary not in (None, BINARY):
        return {"services": []}  # vmflow runs no scheduler or conductor services
    rows = [h for h in hosts.listed(session) if host is None or h.name == host]
    return {"services": [service_view(h, v) for h in await _views(session, client, rows)]}


@router.put("/os-services/{service}")
async def update_service(service: str, body: dict[str, Any], session: SessionDep,
                         auth: OsAdminDep, client: MaybeTemporalDep,
                         v: MicroversionDep) -> dict[str, Any]:
    """From 2.53: PUT /os-services/{uuid} {status, disabled_reason, forced_down}, the
    service in the answer. Before: PUT /os-services/{enable|disable|disable-log-reason|
    force-down} {host, binary[, disabled_reason | forced_down]}."""
    if v >= UUID_IDS:
        host = _by_id(session, "service", service, v)
        update = checked(HostUpdate, body)
        hosts.update_host(session, auth, host.name, update)
        view = service_view((await _views(session, client, [host]))[0], v)
        view["updated_at"] = view["updated_at"] or nova_time(host.registered_at)
        return {"service": view}
    return await _legacy_update(service, body, session, auth, client, v)


async def _legacy_update(action: str, body: dict[str, Any], session: Session,
                         auth: Any, client: Client | None, v: Version) -> dict[str, Any]:
    fields = {"enable": {"status": "enabled"}, "disable": {"status": "disabled"},
              "disable-log-reason": {"status": "disabled",
                                     "disabled_reason": body.get("disabled_reason")}}
    if v >= FORCED_DOWN:
        fields["force-down"] = {"forced_down": body.get("forced_down")}
    if action not in fields:
        raise NotFound(f"Unknown action {action}")
    name, binary = body.get("host"), body.get("binary")
    if not isinstance(name, str) or binary != BINARY:
        raise BadRequest("Invalid input for field/attribute: host and binary nova-compute "
                         "are required")
    if session.get(Host, name) is None:
        raise NotFound(f"Host '{name}' is not mapped to any cell")
    hosts.update_host(session, auth, name, checked(HostUpdate, fields[action]))
    view = service_view((await _views(session, client, [hosts.get_host(session, name)]))[0], v)
    keys = {"enable": ("host", "binary", "status"), "disable": ("host", "binary", "status"),
            "disable-log-reason": ("host", "binary", "status", "disabled_reason"),
            "force-down": ("host", "binary", "forced_down")}[action]
    return {"service": {k: view[k] for k in keys}}


# --- os-availability-zone ------------------------------------------------------------


@router.get("/os-availability-zone")
def list_zones(session: SessionDep, auth: OsAuthDep) -> dict[str, Any]:
    """The one zone, available while any host in it is enabled (as Nova's)."""
    rows = hosts.listed(session)
    available = any(h.status != "disabled" for h in rows)
    return {"availabilityZoneInfo": [{"zoneName": ZONE, "zoneState": {"available": available},
                                      "hosts": None}]}


@router.get("/os-availability-zone/detail")
async def list_zones_detail(session: SessionDep, auth: OsAdminDep,
                            client: MaybeTemporalDep) -> dict[str, Any]:
    views = await _views(session, client)
    members = {h.name: {BINARY: {"available": h.state == "up", "active": h.status == "enabled",
                                 "updated_at": nova_time(h.last_seen or h.updated_at)}}
               for h in views}
    available = any(h.status == "enabled" for h in views)
    return {"availabilityZoneInfo": [{"zoneName": ZONE, "zoneState": {"available": available},
                                      "hosts": members or None}]}

