"""Backup schedules: each one a real Temporal Schedule (described here: spec, overlap
SKIP, the ScheduledBackup action), pause/unpause/trigger, delete, strict timetables
(400 and nothing created), project isolation and readers. The control activities
behind a tick and a server's delete are in test_backup_schedule_ticks.py."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import select
from temporalio.client import (
    Client,
    ScheduleActionStartWorkflow,
    ScheduleDescription,
    ScheduleOverlapPolicy,
    WorkflowExecutionStatus,
)
from temporalio.service import RPCError, RPCStatusCode

from tests.api.conftest import (
    World,
    add_instance,
    session,
    set_state,
)
from tests.api.test_auth import assert_error
from vmflow.contracts.snapshots import ScheduledBackupRequest
from vmflow.models import BackupSchedule
from vmflow.names import CONTROL_QUEUE, SA_OPERATION, SA_PROJECT, SA_RESOURCE


def path(sid: str, schedule: str | None = None, action: bool = False) -> str:
    p = f"/v1/servers/{sid}/backup-schedules"
    if schedule:
        p += f"/{schedule}"
    return p + ("/action" if action else "")


async def create(api: httpx.AsyncClient, h: dict[str, str], sid: str,
                 **body: Any) -> dict[str, Any]:
    r = await api.post(path(sid), headers=h, json={"backup_type": "daily", "rotation": 7, **body})
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


async def describe(temporal: Client, schedule_id: str) -> ScheduleDescription:
    return await temporal.get_schedule_handle(schedule_id).describe()


async def settled(temporal: Client, schedule_id: str,
                  ok: Callable[[ScheduleDescription], bool]) -> ScheduleDescription:
    """The schedule's description once `ok` holds (a trigger is handled by the
    schedule's own workflow, a moment after the call returns)."""
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        desc = await describe(temporal, schedule_id)
        if ok(desc) or asyncio.get_running_loop().time() > deadline:
            return desc
        await asyncio.sleep(0.1)


async def gone(temporal: Client, schedule_id: str) -> bool:
    try:
        await describe(temporal, schedule_id)
    except RPCError as e:
        return e.status == RPCStatusCode.NOT_FOUND
    return False


def rows(instance_id: str) -> list[BackupSchedule]:
    with session() as s:
        return list(s.exec(select(BackupSchedule).where(BackupSchedule.instance_id == instance_id)))


async def test_create_makes_a_temporal_schedule(api: httpx.AsyncClient, world: World,
                                                temporal: Client) -> None:
    inst = add_instance(world)
    before = datetime.now(UTC)
    body = await create(api, world.alice.h, inst.id, every="6h", rotation=3)
    sid = body["id"]
    assert body["schedule_id"] == f"backup-{inst.id}-{sid}"
    assert {k: body[k] for k in ("server_id", "project_id", "user_id", "every", "cron",
                                 "backup_type", "rotation", "paused")} == {
        "server_id": inst.id, "project_id": world.alice.project_id,
        "user_id": world.alice.user_id, "every": "6h", "cron": None, "backup_type": "daily",
        "rotation": 3, "paused": False}

    desc = await describe(temporal, body["schedule_id"])
    assert [i.every for i in desc.schedule.spec.intervals] == [timedelta(hours=6)]
    assert desc.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
    assert not desc.schedule.state.paused
    action = desc.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert (action.workflow, action.id, action.task_queue) == (
        "ScheduledBackup", body["schedule_id"], CONTROL_QUEUE)
    assert [json.loads(p.data) for p in action.args] == [  # type: ignore[attr-defined]
        dataclasses.asdict(ScheduledBackupRequest(inst.id, sid, "daily", 3))]
    attrs = action.typed_search_attributes
    assert (attrs.get(SA_RESOURCE), attrs.get(SA_PROJECT), attrs.get(SA_OPERATION)) == (
        f"instance-{inst.id}", world.alice.project_id, "scheduled-backup")
    first = desc.info.next_action_times[0]
    assert before < first <= datetime.now(UTC) + timedelta(hours=6)

    # list and show (show asks Temporal for the next run)
    r = await api.get(path(inst.id), headers=world.alice.h)
    assert [s["id"] for s in r.json()["backup_schedules"]] == [sid]
    shown = (await api.get(path(inst.id, sid), headers=world.alice.h)).json()
    assert shown["next_run_at"] is not None and shown["running"] == 0
    assert datetime.fromisoformat(shown["next_run_at"]) == first
    assert len(rows(inst.id)) == 1


async def test_cron_schedule(api: httpx.AsyncClient, world: World, temporal: Client) -> None:
    inst = add_instance(world)
    body = await create(api, world.alice.h, inst.id, cron="0  3 * * *", backup_type="nightly")
    assert body["cron"] == "0 3 * * *" and body["every"] is None  # single spaces
    desc = await describe(temporal, body["schedule_id"])
    (cal,) = desc.schedule.spec.calendars  # Temporal keeps a cron line as a calendar
    assert [(r.start, r.end) for r in cal.minute] == [(0, 0)]
    assert [(r.start, r.end) for r in cal.hour] == [(3, 3)]
    assert all((t.hour, t.minute, t.second) == (3, 0, 0) for t in desc.info.next_action_times)
    assert desc.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP

    body = await create(api, world.alice.h, inst.id, cron="*/15 9-17 * JAN-MAR mon-fri")
    desc = await describe(temporal, body["schedule_id"])
    (cal,) = desc.schedule.spec.calendars
    assert [(r.start, r.end, r.step) for r in cal.minute] == [(0, 59, 15)]
    assert [(r.start, r.end) for r in cal.month] == [(1, 3)]
    assert [(r.start, r.end) for r in cal.day_of_week] == [(1, 5)]


async def test_pause_unpause_trigger_delete(api: httpx.AsyncClient, world: World,
                                            temporal: Client) -> None:
    inst = add_instance(world)
    body = await create(api, world.alice.h, inst.id, every="1d")
    sid, schedule_id = body["id"], body["schedule_id"]

    r = await api.post(path(inst.id, sid, action=True), headers=world.alice.h,
                       json={"pause": None})
    assert (r.status_code, r.json()["paused"], r.json()["next_run_at"]) == (200, True, None)
    desc = await describe(temporal, schedule_id)
    assert desc.schedule.state.paused and desc.schedule.state.note == "paused by alice"
    assert rows(inst.id)[0].paused

    r = await api.post(path(inst.id, sid, action=True), headers=world.alice.h,
                       json={"unpause": {}})
    assert (r.status_code, r.json()["paused"]) == (200, False)
    assert not (await describe(temporal, schedule_id)).schedule.state.paused
    assert not rows(inst.id)[0].paused

    # trigger: a tick now; with no worker here it stays running, which SKIP then shows
    r = await api.post(path(inst.id, sid, action=True), headers=world.alice.h,
                       json={"trigger": None})
    assert r.status_code == 202, r.text
    desc = await settled(temporal, schedule_id, lambda d: len(d.info.running_actions) == 1)
    assert len(desc.info.running_actions) == 1 and desc.info.num_actions == 1
    run = desc.info.running_actions[0]
    assert run.workflow_id.startswith(schedule_id + "-")
    tick = await temporal.get_workflow_handle(run.workflow_id).describe()
    assert (tick.workflow_type, tick.status) == ("ScheduledBackup",
                                                 WorkflowExecutionStatus.RUNNING)
    r = await api.post(path(inst.id, sid, action=True), headers=world.alice.h,
                       json={"trigger": None})
    assert r.status_code == 202
    desc = await settled(temporal, schedule_id,
                         lambda d: d.info.num_actions_skipped_overlap == 1)
    assert desc.info.num_actions == 1 and desc.info.num_actions_skipped_overlap == 1
    shown = (await api.get(path(inst.id, sid), headers=world.alice.h)).json()
    assert shown["running"] == 1 and shown["last_run_at"] is not None
    await temporal.get_workflow_handle(run.workflow_id).terminate("test done")

    r = await api.delete(path(inst.id, sid), headers=world.alice.h)
    assert r.status_code == 204 and r.content == b""
    assert await gone(temporal, schedule_id)
    assert rows(inst.id) == []
    assert_error(await api.delete(path(inst.id, sid), headers=world.alice.h), 404, "NotFound")
    assert_error(await api.get(path(inst.id, sid), headers=world.alice.h), 404, "NotFound")
    # no schedule action is an instance action
    assert (await api.get(f"/v1/servers/{inst.id}/actions", headers=world.alice.h)
            ).json()["actions"] == []


BAD: list[dict[str, Any]] = [
    {},  # neither
    {"every": "6h", "cron": "0 3 * * *"},  # both
    {"every": None, "cron": None},
    {"every": "0m"}, {"every": "5s"}, {"every": "1.5h"}, {"every": "6H"}, {"every": " 6h"},
    {"every": "6 h"}, {"every": "6hours"}, {"every": "h"}, {"every": "-1h"}, {"every": "367d"},
    {"every": "06h"}, {"every": 6}, {"every": ""},
    {"cron": ""}, {"cron": "* * * *"}, {"cron": "0 0 * * * *"}, {"cron": "@daily"},
    {"cron": "60 * * * *"}, {"cron": "* 24 * * *"}, {"cron": "0 0 0 * *"},
    {"cron": "0 0 32 * *"}, {"cron": "0 0 * 13 *"}, {"cron": "0 0 * * 7"},
    {"cron": "0 0 1 * MON"}, {"cron": "*/0 * * * *"}, {"cron": "*/60 * * * *"},
    {"cron": "5-1 * * * *"}, {"cron": "0 0 ? * *"}, {"cron": "0 0 L * *"},
    {"cron": "0 0 * * 1#2"}, {"cron": "0 0 * * MON/2"}, {"cron": "1,,2 * * * *"},
    {"cron": "0 0 * FOO *"}, {"cron": "CRON_TZ=UTC 0 0 * *"}, {"cron": "0 0 1W * *"},
    {"cron": "5/10 * * * *"}, {"cron": "0 0 * * SUN-SAT-MON"},
    {"every": "6h", "rotation": 0}, {"every": "6h", "rotation": -1},
    {"every": "6h", "rotation": 1001}, {"every": "6h", "rotation": "7"},
    {"every": "6h", "rotation": True}, {"every": "6h", "rotation": 1.0},
    {"every": "6h", "backup_type": ""}, {"every": "6h", "backup_type": " daily"},
    {"every": "6h", "backup_type": "x" * 256}, {"every": "6h", "backup_type": "a\nb"},
    {"every": "6h", "backup_type": 5}, {"every": "6h", "name": "extra key"},
]


@pytest.mark.parametrize("body", BAD, ids=[json.dumps(b)[:60] for b in BAD])
async def test_bad_request_is_400_and_creates_nothing(api: httpx.AsyncClient, world: World,
                                                      temporal: Client,
                                                      body: dict[str, Any]) -> None:
    inst = add_instance(world)
    full = {"backup_type": "daily", "rotation": 7, **body}
    r = await api.post(path(inst.id), headers=world.alice.h, json=full)
    assert_error(r, 400, "ValidationError")
    assert rows(inst.id) == []
    async for listed in await temporal.list_schedules():
        assert not listed.id.startswith(f"backup-{inst.id}-")


async def test_isolation_and_readers(api: httpx.AsyncClient, world: World,
                                     temporal: Client) -> None:
    inst = add_instance(world)
    body = await create(api, world.alice.h, inst.id, every="30m")
    sid = body["id"]
    bob, rita, carol, admin = world.bob.h, world.rita.h, world.carol.h, world.admin.h
    # another project: nothing exists
    assert_error(await api.get(path(inst.id), headers=bob), 404)
    assert_error(await api.get(path(inst.id, sid), headers=bob), 404)
    assert_error(await api.post(path(inst.id), headers=bob,
                                json={"every": "1h", "backup_type": "x", "rotation": 1}), 404)
    assert_error(await api.post(path(inst.id, sid, action=True), headers=bob,
                                json={"pause": None}), 404)
    assert_error(await api.delete(path(inst.id, sid), headers=bob), 404)
    # a schedule of one server is not reachable through another
    other = add_instance(world, owner=world.bob)
    assert_error(await api.get(path(other.id, sid), headers=admin), 404)
    # readers read, and change nothing
    assert (await api.get(path(inst.id), headers=rita)).json()["backup_schedules"][0]["id"] == sid
    assert (await api.get(path(inst.id, sid), headers=rita)).status_code == 200
    assert_error(await api.post(path(inst.id), headers=rita,
                                json={"every": "1h", "backup_type": "x", "rotation": 1}), 403)
    assert_error(await api.post(path(inst.id, sid, action=True), headers=rita,
                                json={"trigger": None}), 403)
    assert_error(await api.delete(path(inst.id, sid), headers=rita), 403)
    assert not (await describe(temporal, body["schedule_id"])).schedule.state.paused
    # another member of the project and the admin may act on it
    r = await api.post(path(inst.id, sid, action=True), headers=carol, json={"pause": None})
    assert r.status_code == 200
    r = await api.post(path(inst.id, sid, action=True), headers=admin, json={"unpause": None})
    assert r.status_code == 200
    assert len(rows(inst.id)) == 1


async def test_action_body_and_server_state(api: httpx.AsyncClient, world: World) -> None:
    inst = add_instance(world)
    sid = (await create(api, world.alice.h, inst.id, every="1h"))["id"]
    for bad, kind in [({}, "ValidationError"), ({"pause": None, "unpause": None},
                                                 "ValidationError"),
                      ({"resume": None}, "UnknownAction"), ({"pause": {"x": 1}},
                                                            "ValidationError"),
                      ([], "ValidationError")]:
        assert_error(await api.post(path(inst.id, sid, action=True), headers=world.alice.h,
                                    json=bad), 400, kind)
    assert_error(await api.post(path(inst.id, "nope", action=True), headers=world.alice.h,
                                json={"pause": None}), 404)
    # a locked server still takes schedules (a backup ignores the lock)
    r = await api.post(f"/v1/servers/{inst.id}/action", headers=world.alice.h,
                       json={"lock": None})
    assert r.status_code == 200
    await create(api, world.alice.h, inst.id, every="2h")
    # a server being deleted does not
    set_state(inst.id, "active", "deleting")
    assert_error(await api.post(path(inst.id), headers=world.alice.h,
                                json={"every": "1h", "backup_type": "x", "rotation": 1}),
                 409, "ActionNotAllowed")
    assert len(rows(inst.id)) == 2


async def test_idempotency_key(api: httpx.AsyncClient, world: World, temporal: Client) -> None:
    inst = add_instance(world)
    h = {**world.alice.h, "Idempotency-Key": f"bs-{inst.id}"}
    body = {"every": "12h", "backup_type": "twice-daily", "rotation": 2}
    first = await api.post(path(inst.id), headers=h, json=body)
    again = await api.post(path(inst.id), headers=h, json=body)
    assert (first.status_code, again.status_code) == (201, 201)
    assert first.json()["id"] == again.json()["id"] and len(rows(inst.id)) == 1
    sid = first.json()["id"]
    th = {**world.alice.h, "Idempotency-Key": f"bs-trigger-{inst.id}"}
    for _ in range(2):
        r = await api.post(path(inst.id, sid, action=True), headers=th, json={"trigger": None})
        assert r.status_code == 202
    desc = await settled(temporal, first.json()["schedule_id"],
                         lambda d: d.info.num_actions == 1)
    await asyncio.sleep(0.5)  # a second trigger, had one been sent, would show by now
    desc = await describe(temporal, first.json()["schedule_id"])
    assert desc.info.num_actions == 1 and desc.info.num_actions_skipped_overlap == 0
    for run in desc.info.running_actions:
        await temporal.get_workflow_handle(run.workflow_id).terminate("test done")
    dh = {**world.alice.h, "Idempotency-Key": f"bs-delete-{inst.id}"}
    assert (await api.delete(path(inst.id, sid), headers=dh)).status_code == 204
    assert (await api.delete(path(inst.id, sid), headers=dh)).status_code == 204
