"""Hypervisor hosts: capacity, what is allocated on them, and liveness.

The logic behind api/routers/hosts.py. A host is alive while a worker polls its task
queue (Temporal keeps each poller's last access time).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, col, select
from temporalio.api.enums.v1 import TaskQueueKind, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from api.errors import NotFound
from api.schemas.hosts import HostPublic, HostUsage
from vmflow.models import Allocation, Host
from vmflow.names import hv_queue
from vmflow.operations import RPC_TIMEOUT

log = logging.getLogger(__name__)

ALIVE_WITHIN = timedelta(seconds=60)
_QUEUE_TYPES = (TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY, TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW)


def listed(session: Session) -> list[Host]:
    return list(session.exec(select(Host).order_by(col(Host.name))))


def get_host(session: Session, name: str) -> Host:
    host = session.get(Host, name)
    if host is None:
        raise NotFound(f"host {name} not found")
    return host


async def host_alive(client: Client | None, host: str) -> bool:
    """A worker polled the host's queue within ALIVE_WITHIN (Temporal keeps the last
    poll time per poller); without Temporal we cannot tell, so: not alive."""
    if client is None:
        return False
    cutoff = datetime.now(UTC) - ALIVE_WITHIN
    for queue_type in _QUEUE_TYPES:
        try:
            resp = await client.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(
                    namespace=client.namespace,
                    task_queue=TaskQueue(name=hv_queue(host),
                                         kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
                    task_queue_type=queue_type),
                timeout=RPC_TIMEOUT)
        except Exception as e:  # liveness is best effort; an error reads as "not alive"
            log.info("describe_task_queue %s failed: %s", hv_queue(host), e)
            return False
        if any(p.last_access_time.ToDatetime(tzinfo=UTC) >= cutoff for p in resp.pollers):
            return True
    return False


async def host_views(session: Session, client: Client | None,
                     hosts: list[Host]) -> list[HostPublic]:
    """Each host with its allocations summed and whether it is alive."""
    used = {
        row[0]: row[1:]
        for row in session.exec(
            select(  # type: ignore[call-overload]  # 5 columns: beyond the typed overloads
                Allocation.host, func.sum(Allocation.vcpus), func.sum(Allocation.ram_mb),
                func.sum(Allocation.disk_gb), func.count())
            .group_by(col(Allocation.host)))
    }
    alive = await asyncio.gather(*(host_alive(client, h.name) for h in hosts))
    views = []
    for h, up in zip(hosts, alive, strict=True):
        vcpus, ram, disk, count = used.get(h.name, (0, 0, 0, 0))
        views.append(HostPublic(
            name=h.name, hostname=h.hostname, vcpus=h.vcpus, ram_mb=h.ram_mb,
            disk_gb=h.disk_gb, traits=list(h.traits or []), virt_type=h.virt_type,
            used=HostUsage(vcpus=vcpus or 0, ram_mb=ram or 0, disk_gb=disk or 0),
            instances=count, alive=up))
    return views
