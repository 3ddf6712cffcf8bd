"""The control worker: every workflow plus the database activities, on `control`.
It also keeps the reconcilers' Temporal Schedules in place: the power-state one and
the ledger one."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.worker import Worker

from activities.control.actions import ActionActivities
from activities.control.auto_unrescue import AutoUnrescueActivities
from activities.control.backup_schedules import BackupScheduleActivities
from activities.control.evacuate import EvacuateActivities
from activities.control.floating_ips import FloatingIpControlActivities
from activities.control.image_store import ImageStoreReconcileActivities
from activities.control.images import SnapshotImageActivities
from activities.control.instances import ControlActivities
from activities.control.interface_ports import InterfacePortActivities
from activities.control.ledger import LedgerReconcileActivities
from activities.control.metadata_docs import MetadataDocsActivities
from activities.control.migrations import MigrationActivities
from activities.control.network_reconcile import NetworkReconcileActivities
from activities.control.operation_rows import OperationRowActivities
from activities.control.port_rules import SecurityGroupSyncActivities
from activities.control.ports import PortActivities
from activities.control.resize import ResizeControlActivities
from activities.control.share_ledger import ShareReconcileActivities
from activities.control.shares import ShareControlActivities
from activities.control.shelve import ShelveActivities
from vmflow.contracts.actions import InstanceIds
from vmflow.contracts.reconcile import ReconcileLedgerRequest
from vmflow.names import CONTROL_QUEUE, LEDGER_RECONCILE_SCHEDULE, POWER_SYNC_SCHEDULE
from vmflow.settings import Settings, get_settings
from workers import fault_point
from workers.common import (
    connect_patiently,
    run_until_signalled,
    setup_logging,
    workflow_runner,
)
from workflows.registry import ALL as WORKFLOWS


def activities(settings: Settings, client: Client) -> list[Callable[..., Any]]:
    """Every activity this worker registers (each declared in ControlStub)."""
    return [*ControlActivities(settings, client).all(),
            *BackupScheduleActivities(settings, client).all(),
            *ActionActivities(settings).all(),
            *AutoUnrescueActivities(settings, client).all(),
            *SnapshotImageActivities(settings).all(),
            *ShelveActivities(settings, client).all(),
            *LedgerReconcileActivities(settings, client).all(),
            *ImageStoreReconcileActivities(settings, client).all(),
            *ShareReconcileActivities(settings, client).all(),
            *ShareControlActivities(settings).all(),
            *OperationRowActivities(settings, client).all(),
            *EvacuateActivities(settings, client).all(),
            *MigrationActivities(settings, client).all(),
            *ResizeControlActivities(settings, client).all(),
            *FloatingIpControlActivities(settings, client).all(),
            *SecurityGroupSyncActivities(settings).all(),
            *NetworkReconcileActivities(settings, client).all(),
            *MetadataDocsActivities(settings).all(),
            *PortActivities(settings).all(),
            *InterfacePortActivities(settings).all()]


def build(client: Client, settings: Settings, executor: ThreadPoolExecutor) -> Worker:
    return Worker(
        client,
        task_queue=CONTROL_QUEUE,
        workflows=WORKFLOWS,
        workflow_runner=workflow_runner(),
        activities=activities(settings, client),
        activity_executor=executor,
        interceptors=fault_point.interceptors(settings),
        max_concurrent_activities=16,
    )


async def ensure_schedule(client: Client, schedule_id: str, workflow: str, arg: object,
                          every_s: float) -> None:
    """A reconciler's Temporal Schedule: `workflow` every `every_s` on `control`,
    overlap SKIP; made if absent, else updated to today's interval and input."""
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(workflow, arg, id=schedule_id,
                                           task_queue=CONTROL_QUEUE),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=every_s))]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    try:
        await client.create_schedule(schedule_id, schedule)
    except ScheduleAlreadyRunningError:  # keep it, with today's interval

        def update(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(schedule_id).update(update)


async def ensure_power_sync_schedule(client: Client, settings: Settings) -> None:
    await ensure_schedule(client, POWER_SYNC_SCHEDULE, "PowerSync", InstanceIds([]),
                          settings.power_sync_interval)


async def ensure_ledger_reconcile_schedule(client: Client, settings: Settings) -> None:
    """Its runs use VMFLOW_RECONCILE_GRACE as the control worker has it when they run."""
    await ensure_schedule(client, LEDGER_RECONCILE_SCHEDULE, "ReconcileLedger",
                          ReconcileLedgerRequest(), settings.reconcile_interval)


async def main() -> None:
    setup_logging()
    settings = get_settings()
    client = await connect_patiently(settings)
    await ensure_power_sync_schedule(client, settings)
    await ensure_ledger_reconcile_schedule(client, settings)
    with ThreadPoolExecutor(max_workers=16) as executor:
        await run_until_signalled(build(client, settings, executor))


if __name__ == "__main__":
    asyncio.run(main())
