"""A backup schedule on a real QEMU guest through the API: trigger-now fires its
Temporal Schedule, the tick's ScheduledBackup starts SnapshotInstance, the backup
image becomes active with the schedule's type, rotation applies across ticks, a tick
while another operation holds the server is skipped and recorded, and deleting the
server removes the Temporal Schedule."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from temporalio.client import ScheduleDescription
from temporalio.service import RPCError, RPCStatusCode

from tests.integration.conftest import act, delete_server, wait_operation
from tests.integration.guest import kill_agent_and_acpid
from tests.integration.test_actions import launched
from vmflow.contracts.snapshots import ScheduledBackupResult
from vmflow.settings import Settings
from vmflow.temporal import connect

pytestmark = pytest.mark.guest


def describe(s: Settings, schedule_id: str) -> ScheduleDescription | None:
    async def go() -> ScheduleDescription | None:
        client = await connect(s)
        try:
            return await client.get_schedule_handle(schedule_id).describe()
        except RPCError as e:
            if e.status == RPCStatusCode.NOT_FOUND:
                return None
            raise
    return asyncio.run(go())


def tick_result(s: Settings, workflow_id: str) -> ScheduledBackupResult:
    async def go() -> ScheduledBackupResult:
        client = await connect(s)
        result: ScheduledBackupResult = await client.get_workflow_handle(
            workflow_id, result_type=ScheduledBackupResult).result()
        return result
    return asyncio.run(go())


def backups(api: httpx.Client, server_id: str, schedule: str) -> list[dict[str, Any]]:
    return [i for i in api.get("/v1/images").json()["images"]
            if i["properties"].get("instance_uuid") == server_id
            and i["properties"].get("backup_schedule_id") == schedule]


def backup_actions(api: httpx.Client, server_id: str) -> list[dict[str, Any]]:
    return [a for a in api.get(f"/v1/servers/{server_id}/actions").json()["actions"]
            if a["action"] == "backup"]


def trigger(api: httpx.Client, s: Settings, server_id: str,
            sched: dict[str, Any]) -> tuple[dict[str, Any], ScheduledBackupResult]:
    """Fire the schedule now; the backup action it records (finished) and the tick's
    result."""
    before = {a["operation_id"] for a in backup_actions(api, server_id)}
    desc = describe(s, sched["schedule_id"])
    assert desc is not None
    ticks = desc.info.num_actions
    r = api.post(f"/v1/servers/{server_id}/backup-schedules/{sched['id']}/action",
                 json={"trigger": None})
    assert r.status_code == 202, r.text
    deadline = time.monotonic() + 60
    while True:
        desc = describe(s, sched["schedule_id"])
        assert desc is not None
        if desc.info.num_actions > ticks and desc.info.recent_actions:
            break
        assert time.monotonic() < deadline, "the trigger started no tick"
        time.sleep(0.2)
    tick = desc.info.recent_actions[-1].action.workflow_id
    assert tick.startswith(sched["schedule_id"] + "-")
    result = tick_result(s, tick)  # the tick follows its backup to the end
    (new,) = [a for a in backup_actions(api, server_id) if a["operation_id"] not in before]
    if new["result"] == "running":  # the row is final once the tick returned
        new = {**new, "result": wait_operation(api, new["operation_id"])["status"]}
    return new, result


def test_a_schedule_fires_and_produces_a_backup(api: httpx.Client, it_settings: Settings) -> None:
    sid = launched(api, "bsched")
    r = api.post(f"/v1/servers/{sid}/backup-schedules",
                 json={"every": "1d", "backup_type": "nightly", "rotation": 2})
    assert r.status_code == 201, r.text
    sched = r.json()
    desc = describe(it_settings, sched["schedule_id"])
    assert desc is not None and desc.info.num_actions == 0  # nothing until a day from now

    # trigger-now fires it: a backup image of the type, active, with data
    action, result = trigger(api, it_settings, sid, sched)
    assert action["result"] == "succeeded", action
    assert result.status == "succeeded" and result.image_id
    (image,) = backups(api, sid, sched["id"])
    assert image["id"] == result.image_id and image["status"] == "active"
    assert image["properties"]["image_type"] == "backup"
    assert image["properties"]["backup_type"] == "nightly"
    assert image["name"].startswith("bsched-nightly-")
    assert image["size"] and image["checksum"]
    assert image["properties"].get("consistency") in ("quiesced", "crash-consistent")

    # the schedule's rotation holds across ticks: two more, still the newest two
    results = [trigger(api, it_settings, sid, sched)[1] for _ in range(2)]
    live = [i["id"] for i in backups(api, sid, sched["id"]) if i["status"] == "active"]
    assert sorted(live) == sorted(r.image_id for r in results if r.image_id)

    # a tick while another operation holds the server: skipped and recorded (a deaf
    # guest makes the stop wait out its 30 s clean-shutdown timeout)
    kill_agent_and_acpid(sid)
    r = api.post(f"/v1/servers/{sid}/action", json={"os-stop": None})
    assert r.status_code == 202, r.text
    stop_op = r.json()["operation"]["id"]
    action, result = trigger(api, it_settings, sid, sched)
    assert result.status == "skipped", result
    # the stop holds the server either by its running workflow or, once it has
    # claimed it, by its task_state: both are a skip that names the stop
    assert action["result"] == "skipped"
    assert action["fault"] in ("skipped: another operation (stop) is running",
                               "skipped: another operation (powering-off) is in progress")
    assert wait_operation(api, stop_op)["status"] == "succeeded"

    # a paused schedule still fires on trigger; the server is stopped now (offline copy)
    r = api.post(f"/v1/servers/{sid}/backup-schedules/{sched['id']}/action",
                 json={"pause": None})
    assert r.status_code == 200 and r.json()["paused"]
    action, result = trigger(api, it_settings, sid, sched)
    assert action["result"] == "succeeded" and result.status == "succeeded", (action, result)

    # deleting the server removes its schedule (Temporal and the API)
    assert delete_server(api, sid)["status"] == "succeeded"
    assert describe(it_settings, sched["schedule_id"]) is None
    assert api.get(f"/v1/servers/{sid}/backup-schedules").status_code == 404
    # the backups themselves stay (Nova keeps them too)
    assert len([i for i in backups(api, sid, sched["id"]) if i["status"] == "active"]) == 2


def test_a_stopped_server_backs_up_on_its_cron_schedule(api: httpx.Client,
                                                        it_settings: Settings) -> None:
    """A cron schedule, and a stopped server (an offline copy) through a tick too."""
    sid = launched(api, "bsched-off")
    assert act(api, sid, {"os-stop": None})["status"] == "succeeded"
    r = api.post(f"/v1/servers/{sid}/backup-schedules",
                 json={"cron": "0 3 * * *", "backup_type": "daily", "rotation": 1})
    assert r.status_code == 201, r.text
    sched = r.json()
    action, result = trigger(api, it_settings, sid, sched)
    assert action["result"] == "succeeded" and result.status == "succeeded", (action, result)
    (image,) = backups(api, sid, sched["id"])
    assert image["status"] == "active"
    assert delete_server(api, sid)["status"] == "succeeded"
    assert describe(it_settings, sched["schedule_id"]) is None
