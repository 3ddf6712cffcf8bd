"""The hypervisor worker of one host: libvirt and qemu-img steps on `hv.<host>`.

On start it announces the host (capacity from libvirt, traits from settings, its
libvirt URI) through the control plane, then heartbeats (vmflow.host_liveness.beat)
while it runs; it never touches the database itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.worker import Worker

from activities.hypervisor.host import HostActivities
from activities.hypervisor.libvirt.connection import Connection
from activities.hypervisor.libvirt.events import start_event_loop
from activities.hypervisor.migrate import MigrationActivities
from activities.hypervisor.network.activities import NetworkActivities
from activities.hypervisor.network.floating import FloatingIpActivities
from activities.hypervisor.network.metadata import MetadataActivities
from activities.hypervisor.rebuild import RebuildActivities
from activities.hypervisor.resize import ResizeActivities
from activities.hypervisor.snapshot import SnapshotActivities
from vmflow.host_liveness import beat
from vmflow.names import CONTROL_QUEUE, host_workflow_id, hv_queue
from vmflow.settings import Settings, get_settings
from workers import fault_point
from workers.common import connect_patiently, log, run_until_signalled, setup_logging


def activities(settings: Settings) -> list[Callable[..., Any]]:
    """Every activity this worker registers (each declared in HostStub), on one
    libvirt connection to settings.libvirt_uri."""
    acts = HostActivities(settings, Connection(settings.libvirt_uri))
    conn, instance_dir = acts.conn, acts.instance_dir
    return [*acts.all(),
            *RebuildActivities(settings, conn, instance_dir).all(),
            *SnapshotActivities(settings, conn, instance_dir).all(),
            *ResizeActivities(settings, conn, instance_dir).all(),
            *MigrationActivities(acts).all(),
            *NetworkActivities(settings, conn).all(),
            *FloatingIpActivities(settings).all(),
            *MetadataActivities(settings).all()]


def build(client: Client, settings: Settings, executor: ThreadPoolExecutor) -> Worker:
    return Worker(
        client,
        task_queue=hv_queue(settings.host),
        activities=activities(settings),
        activity_executor=executor,
        interceptors=fault_point.interceptors(settings),
        max_concurrent_activities=16,
    )


async def register(client: Client, settings: Settings) -> WorkflowHandle:
    acts = HostActivities(settings, Connection(settings.libvirt_uri))
    info = await asyncio.to_thread(acts.info)
    log.info("registering host %s: %s", settings.host, info)
    return await client.start_workflow(
        "RegisterHost",
        info,
        id=host_workflow_id(settings.host),
        task_queue=CONTROL_QUEUE,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        id_conflict_policy=WorkflowIDConflictPolicy.TERMINATE_EXISTING,
    )


async def main() -> None:
    setup_logging()
    start_event_loop()  # before any connection opens: wait_agent hears the agent connect
    settings = get_settings()
    client = await connect_patiently(settings)
    await register(client, settings)
    beating = asyncio.create_task(beat(client, settings.host, settings.host_down_after))
    try:
        with ThreadPoolExecutor(max_workers=16) as executor:
            await run_until_signalled(build(client, settings, executor))
    finally:
        beating.cancel()  # the host reads as down once its last beat ages


if __name__ == "__main__":
    asyncio.run(main())
