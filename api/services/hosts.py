"""Hypervisor hosts: capacity, what is allocated on them, their state (Nova's
os-services: enabled/disabled with a reason, forced_down) and whether they are up.

The logic behind api/routers/hosts.py. Up means a fresh heartbeat (Temporal's record
of the worker's polls, vmflow.host_liveness, within VMFLOW_HOST_DOWN_AFTER) and not
forced down: the same judgement the scheduler makes.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select
from temporalio.client import Client

from api.auth import AuthContext
from api.errors import NotFound
from api.schemas.common import utc
from api.schemas.hosts import HostPublic, HostUpdate, HostUsage
from api.services.operations import find_idempotent, remember_key
from vmflow.host_liveness import fresh, last_seen, state
from vmflow.models import Allocation, Host, now
from vmflow.settings import get_settings

log = logging.getLogger(__name__)


def listed(session: Session) -> list[Host]:
    return list(session.exec(select(Host).order_by(col(Host.name))))


def get_host(session: Session, name: str) -> Host:
    host = session.get(Host, name)
    if host is None:
        raise NotFound(f"host {name} not found")
    return host


async def seen(client: Client | None, host: str) -> datetime | None:
    """The host's last heartbeat; without Temporal (or when it does not answer) we
    cannot tell, which reads as never seen, so: down."""
    if client is None:
        return None
    try:
        return await last_seen(client, host)
    except Exception as e:  # liveness is best effort here; the scheduler's raises
        log.info("heartbeat of host %s unknown: %s", host, e)
        return None


def update_host(session: Session, auth: AuthContext, name: str, body: HostUpdate,
                idempotency_key: str | None = None) -> Host:
    """Nova's service update: enabling clears the reason; disabling without one leaves
    none. Setting what is already set changes nothing (updated_at included), nor does a
    repeated Idempotency-Key."""
    host = get_host(session, name)
    if find_idempotent(session, auth, idempotency_key, "host", "update", name) is not None:
        return host
    remember_key(session, auth, idempotency_key, "host", name, "update")
    status, reason, forced = host.status, host.disabled_reason, host.forced_down
    if body.status == "enabled":
        status, reason = "enabled", None
    elif body.status == "disabled":
        status, reason = "disabled", body.disabled_reason
    if body.forced_down is not None:
        forced = body.forced_down
    if (status, reason, forced) != (host.status, host.disabled_reason, host.forced_down):
        host.status, host.disabled_reason, host.forced_down = status, reason, forced
        host.updated_at = now()
        session.add(host)
        log.info("host %s: status %s (%s), forced_down %s", name, status, reason, forced)
    session.commit()  # the change, the key's record, or nothing
    session.refresh(host)
    return host


async def host_views(session: Session, client: Client | None,
                     hosts: list[Host]) -> list[HostPublic]:
    """Each host with its allocations summed, its state and its last heartbeat."""
    used = {
        row[0]: row[1:]
        for row in session.exec(
            select(  # type: ignore[call-overload]  # 5 columns: beyond the typed overloads
                Allocation.host, func.sum(Allocation.vcpus), func.sum(Allocation.ram_mb),
                func.sum(Allocation.disk_gb), func.count())
            .group_by(col(Allocation.host)))
    }
    down_after = get_settings().host_down_after
    beats = await asyncio.gather(*(seen(client, h.name) for h in hosts))
    views = []
    for h, beat in zip(hosts, beats, strict=True):
        vcpus, ram, disk, count = used.get(h.name, (0, 0, 0, 0))
        up = state(fresh(beat, down_after), h.forced_down)
        views.append(HostPublic(
            name=h.name, hostname=h.hostname, vcpus=h.vcpus, ram_mb=h.ram_mb,
            disk_gb=h.disk_gb, traits=list(h.traits or []), virt_type=h.virt_type,
            libvirt_uri=h.libvirt_uri, migration_address=h.migration_address,
            migration_uri=h.migration_uri,
            used=HostUsage(vcpus=vcpus or 0, ram_mb=ram or 0, disk_gb=disk or 0),
            instances=count, alive=up == "up", state=up, last_seen=beat,
            status="disabled" if h.status == "disabled" else "enabled",
            disabled_reason=h.disabled_reason, forced_down=h.forced_down,
            updated_at=utc(h.updated_at)))
    return views
