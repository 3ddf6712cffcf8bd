"""The control activities of backup schedules, run against the API tier's Temporal and
database (no worker polls here, so what they start stays Running): a tick starts its
backup once (a retry finds it), skips a server that cannot back up or is busy, and
removes the schedule of a deleted server; a server's delete removes every schedule."""

from __future__ import annotations

import dataclasses
import json

import httpx
from sqlalchemy import func
from sqlmodel import select
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import ActivityEnvironment

from activities.control.backup_schedules import BackupScheduleActivities
from tests.api.conftest import (
    World,
    add_instance,
    instance_row,
    operations_of,
    session,
    set_state,
)
from tests.api.test_backup_schedules import create, gone, rows
from vmflow import settings
from vmflow.contracts.instances import InstanceRef
from vmflow.contracts.snapshots import ScheduledBackupRequest
from vmflow.models import Image, Operation
from vmflow.names import SA_OPERATION


def activities(vmflow_home: settings.Settings, temporal: Client) -> BackupScheduleActivities:
    return BackupScheduleActivities(vmflow_home, temporal)


def tick_env(tick: str) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id=f"backup-x-{tick}",
                                   workflow_run_id=f"run-{tick}")
    return env


async def test_tick_starts_the_backup_once(api: httpx.AsyncClient, world: World,
                                          temporal: Client,
                                          vmflow_home: settings.Settings) -> None:
    inst = add_instance(world, name="web1")
    body = await create(api, world.alice.h, inst.id, every="1d", backup_type="daily",
                        rotation=4)
    acts = activities(vmflow_home, temporal)
    req = ScheduledBackupRequest(inst.id, body["id"], "daily", 4)
    env = tick_env("once")
    start = await env.run(acts.start_scheduled_backup, req)
    assert start.started and start.workflow_id == f"instance-{inst.id}"
    again = await env.run(acts.start_scheduled_backup, req)  # a retry of the same tick
    assert again == start

    handle = temporal.get_workflow_handle(f"instance-{inst.id}")
    desc = await handle.describe()
    assert (desc.workflow_type, desc.run_id) == ("SnapshotInstance", start.run_id)
    assert desc.typed_search_attributes.get(SA_OPERATION) == "backup"
    history = await handle.fetch_history()
    arg = json.loads(history.events[0].workflow_execution_started_event_attributes
                     .input.payloads[0].data)
    assert arg == {"instance_id": inst.id, "operation_id": start.operation_id,
                   "image_id": start.image_id, "backup_type": "daily", "rotation": 4}
    with session() as s:
        image = s.get(Image, start.image_id)
        assert image is not None
        assert (image.status, image.visibility, image.owner) == (
            "queued", "private", world.alice.project_id)
        assert image.name.startswith("web1-daily-")
        assert {k: image.properties[k] for k in ("image_type", "backup_type", "instance_uuid",
                                                 "base_image_ref", "backup_schedule_id")} == {
            "image_type": "backup", "backup_type": "daily", "instance_uuid": inst.id,
            "base_image_ref": world.image.id, "backup_schedule_id": body["id"]}
    (op,) = operations_of(inst.id)
    assert (op.id, op.action, op.status, op.user_id, op.run_id) == (
        start.operation_id, "backup", "running", world.alice.user_id, start.run_id)
    assert instance_row(inst.id).task_state == "image_snapshot"  # shown from the start

    # the next tick while that backup runs: skipped, recorded, nothing left behind
    images_before = count_images()
    skipped = await tick_env("busy").run(acts.start_scheduled_backup, req)
    assert not skipped.started
    assert skipped.reason == "skipped: another operation (image_snapshot) is in progress"
    assert count_images() == images_before
    actions = (await api.get(f"/v1/servers/{inst.id}/actions", headers=world.alice.h)
               ).json()["actions"]
    assert [(a["action"], a["result"], a["fault"]) for a in actions] == [
        ("backup", "running", None),
        ("backup", "skipped", "skipped: another operation (image_snapshot) is in progress")]
    await handle.terminate("test done")


def count_images() -> int:
    with session() as s:
        return s.exec(select(func.count()).select_from(Image)).one()


async def test_tick_skips_a_server_that_cannot_back_up(api: httpx.AsyncClient, world: World,
                                                      temporal: Client,
                                                      vmflow_home: settings.Settings) -> None:
    inst = add_instance(world, vm_state="error")
    body = await create(api, world.alice.h, inst.id, every="1d")
    req = ScheduledBackupRequest(inst.id, body["id"], "daily", 7)
    start = await tick_env("error").run(activities(vmflow_home, temporal).start_scheduled_backup,
                                        req)
    assert not start.started and start.reason is not None
    assert start.reason.startswith("skipped: the server is ERROR; a backup needs one of ")
    (op,) = operations_of(inst.id)
    assert (op.status, op.last_error, op.workflow_id) == ("skipped", start.reason,
                                                          "backup-x-error")
    try:
        await temporal.get_workflow_handle(f"instance-{inst.id}").describe()
        raise AssertionError("no workflow may start")
    except RPCError as e:
        assert e.status == RPCStatusCode.NOT_FOUND


async def test_tick_of_a_deleted_server_removes_its_schedule(
        api: httpx.AsyncClient, world: World, temporal: Client,
        vmflow_home: settings.Settings) -> None:
    inst = add_instance(world)
    body = await create(api, world.alice.h, inst.id, every="1d")
    set_state(inst.id, "deleted")
    req = ScheduledBackupRequest(inst.id, body["id"], "daily", 7)
    start = await tick_env("deleted").run(
        activities(vmflow_home, temporal).start_scheduled_backup, req)
    assert not start.started
    assert await gone(temporal, body["schedule_id"]) and rows(inst.id) == []
    with session() as s:
        assert s.exec(select(Operation).where(Operation.resource_id == inst.id)).all() == []


async def test_delete_activity_removes_every_schedule(api: httpx.AsyncClient, world: World,
                                                      temporal: Client,
                                                      vmflow_home: settings.Settings) -> None:
    inst = add_instance(world)
    keep = add_instance(world)
    made = [await create(api, world.alice.h, inst.id, every=e) for e in ("1h", "2h")]
    kept = await create(api, world.alice.h, keep.id, every="1h")
    # one Temporal Schedule already gone (a retried delete): still fine
    await temporal.get_schedule_handle(made[0]["schedule_id"]).delete()
    acts = activities(vmflow_home, temporal)
    env = ActivityEnvironment()
    assert await env.run(acts.delete_backup_schedules, InstanceRef(inst.id)) == 2
    assert await env.run(acts.delete_backup_schedules, InstanceRef(inst.id)) == 0
    for m in made:
        assert await gone(temporal, m["schedule_id"])
    assert rows(inst.id) == []
    assert not await gone(temporal, kept["schedule_id"]) and len(rows(keep.id)) == 1
