"""The control worker: every workflow plus the database activities, on `control`.
It also keeps the power-state reconciler's Temporal Schedule in place."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

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

import workflows
from activities.actions import ActionActivities
from activities.backup_schedules import BackupScheduleActivities
from activities.control import ControlActivities
from activities.images_control import SnapshotImageActivities
from activities.share_control import ShareControlActivities
from vmflow.contracts import InstanceIds
from vmflow.names import CONTROL_QUEUE, POWER_SYNC_SCHEDULE
from vmflow.settings import Settings, get_settings
from workers.common import connect_patiently, run_until_signalled, setup_logging
from workflows.share_access import SyncShareAccess
from workflows.share_create import CreateShare
from workflows.share_delete import DeleteShare
from workflows.share_extend import ExtendShare
from workflows.share_shrink import ShrinkShare
from workflows.share_snapshot_create import CreateShareSnapshot
from workflows.share_snapshot_delete import DeleteShareSnapshot

SHARE_WORKFLOWS = [CreateShare, DeleteShare, ExtendShare, ShrinkShare, SyncShareAccess,
                   CreateShareSnapshot, DeleteShareSnapshot]


def build(client: Client, settings: Settings, executor: ThreadPoolExecutor) -> Worker:
    return Worker(
        client,
        task_queue=CONTROL_QUEUE,
        workflows=[*workflows.ALL, *SHARE_WORKFLOWS],
        activities=[*ControlActivities(settings, client).all(),
                    *BackupScheduleActivities(settings, client).all(),
                    *ActionActivities(settings).all(),
                    *SnapshotImageActivities(settings).all(),
                    *ShareControlActivities(settings).all()],
        activity_executor=executor,
        max_concurrent_activities=16,
    )


async def ensure_power_sync_schedule(client: Client, settings: Settings) -> None:
    schedule = Schedule(
        action=ScheduleActionStartWorkflow("PowerSync", InstanceIds([]), id=POWER_SYNC_SCHEDULE,
                                           task_queue=CONTROL_QUEUE),
        spec=ScheduleSpec(intervals=[
            ScheduleIntervalSpec(every=timedelta(seconds=settings.power_sync_interval))]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    try:
        await client.create_schedule(POWER_SYNC_SCHEDULE, schedule)
    except ScheduleAlreadyRunningError:  # keep it, with today's interval

        def update(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(POWER_SYNC_SCHEDULE).update(update)


async def main() -> None:
    setup_logging()
    settings = get_settings()
    client = await connect_patiently(settings)
    await ensure_power_sync_schedule(client, settings)
    with ThreadPoolExecutor(max_workers=16) as executor:
        await run_until_signalled(build(client, settings, executor))


if __name__ == "__main__":
    asyncio.run(main())
