"""lock/unlock (Nova's semantics), os-resetState (admin, audited), forceDelete
(terminate, then delete) and DELETE cancelling a running operation."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus

from api.services import preempt
from tests.api.conftest import (
    World,
    add_instance,
    counts,
    create_server,
    instance_row,
    operations_of,
    session,
)
from tests.api.test_auth import assert_error
from tests.api.test_server_actions import started_input
from vmflow.models import Operation
from vmflow.names import SA_OPERATION


async def action(api: httpx.AsyncClient, headers: dict[str, str], sid: str,
                 body: dict[str, Any]) -> httpx.Response:
    return await api.post(f"/v1/servers/{sid}/action", headers=headers, json=body)


async def terminate(temporal: Client, sid: str) -> None:
    await temporal.get_workflow_handle(f"instance-{sid}").terminate(reason="test")


# --- lock ----------------------------------------------------------------------------

async def test_owner_lock_refuses_members_but_not_admins(
        api: httpx.AsyncClient, world: World, temporal: Client) -> None:
    inst = add_instance(world, vm_state="active")
    r = await action(api, world.alice.h, inst.id, {"lock": {"locked_reason": "maintenance"}})
    assert r.status_code == 200, r.text
    server = r.json()
    assert (server["id"], server["locked"], server["locked_reason"]) == (
        inst.id, True, "maintenance")
    assert instance_row(inst.id).locked_by == "owner"

    before = counts()
    for who in (world.carol, world.alice):  # Nova: the locking member is refused too
        err = assert_error(await action(api, who.h, inst.id, {"os-stop": None}), 409,
                           "InstanceLocked")
        assert err["message"] == f"server {inst.id} is locked: maintenance"
        assert_error(await api.delete(f"/v1/servers/{inst.id}", headers=who.h), 409,
                     "InstanceLocked")
        assert_error(await action(api, who.h, inst.id, {"forceDelete": None}), 409,
                     "InstanceLocked")
    assert counts() == before
    assert instance_row(inst.id).vm_state == "active"

    r = await action(api, world.admin.h, inst.id, {"os-stop": None})  # admin overrides
    assert r.status_code == 202, r.text
    await terminate(temporal, inst.id)

    r = await action(api, world.alice.h, inst.id, {"unlock": None})  # the owner lifts it
    assert r.status_code == 200, r.text
    assert (r.json()["locked"], r.json()["locked_reason"]) == (False, None)
    assert instance_row(inst.id).locked_by is None
    history = (await api.get(f"/v1/servers/{inst.id}/actions", headers=world.alice.h)).json()
    assert [(a["action"], a["result"], a["user"], a["workflow_id"])
            for a in history["actions"]] == [
        ("lock", "succeeded", "alice", ""), ("stop", "running", "admin", f"instance-{inst.id}"),
        ("unlock", "succeeded", "alice", "")]
    assert all(a["finish"] for a in history["actions"] if a["action"] != "stop")


async def test_another_member_may_lift_an_owner_lock(api: httpx.AsyncClient,
                                                     world: World) -> None:
    """The owner is the project, as in Nova."""
    inst = add_instance(world, vm_state="stopped")
    assert (await action(api, world.alice.h, inst.id, {"lock": None})).status_code == 200
    r = await action(api, world.carol.h, inst.id, {"unlock": None})
    assert (r.status_code, r.json()["locked"]) == (200, False)


async def test_admin_lock_holds_against_members(api: httpx.AsyncClient,
                                                world: World) -> None:
    inst = add_instance(world, vm_state="active")
    r = await action(api, world.admin.h, inst.id, {"lock": {"locked_reason": "forensics"}})
    assert r.status_code == 200, r.text
    assert instance_row(inst.id).locked_by == "admin"
    before = counts()
    err = assert_error(await action(api, world.alice.h, inst.id, {"unlock": None}), 409,
                       "InstanceLocked")
    assert "locked by an administrator" in err["message"]
    # re-locking would make it an owner lock the member could lift
    assert_error(await action(api, world.alice.h, inst.id, {"lock": None}), 409,
                 "InstanceLocked")
    err = assert_error(await action(api, world.alice.h, inst.id, {"os-stop": None}), 409,
                       "InstanceLocked")
    assert err["message"] == f"server {inst.id} is locked by an administrator: forensics"
    assert counts() == before
    row = instance_row(inst.id)
    assert (row.locked, row.locked_by, row.locked_reason) == (True, "admin", "forensics")
    r = await action(api, world.admin.h, inst.id, {"unlock": None})
    assert (r.status_code, r.json()["locked"]) == (200, False)


async def test_lock_works_in_every_live_state_and_is_shown(api: httpx.AsyncClient,
                                                           world: World) -> None:
    inst = add_instance(world, vm_state="error", task_state="rebooting_hard")
    r = await action(api, world.alice.h, inst.id, {"lock": {}})
    assert (r.status_code, r.json()["locked"], r.json()["locked_reason"]) == (200, True, None)
    shown = (await api.get(f"/v1/servers/{inst.id}", headers=world.rita.h)).json()
    assert shown["locked"] is True and "locked_reason" in shown


# --- os-resetState -------------------------------------------------------------------

async def test_reset_state_is_admin_only(api: httpx.AsyncClient, world: World) -> None:
    inst = add_instance(world, vm_state="error", task_state="rebooting_hard")
    before = counts()
    for who in (world.alice, world.carol):
        r = await action(api, who.h, inst.id, {"os-resetState": {"state": "active"}})
        assert_error(r, 403, "Forbidden")
    r = await action(api, world.admin.h, inst.id, {"os-resetState": {"state": "stopped"}})
    assert_error(r, 400, "ValidationError")
    assert counts() == before
    row = instance_row(inst.id)
    assert (row.vm_state, row.task_state) == ("error", "rebooting_hard")


async def test_reset_state_is_audited(api: httpx.AsyncClient, world: World) -> None:
    inst = add_instance(world, vm_state="error", task_state="rebooting_hard", locked=True,
                        locked_by="owner")  # the lock does not stop an admin reset
    r = await action(api, world.admin.h, inst.id, {"os-resetState": {"state": "active"}})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["vm_state"], r.json()["task_state"]) == (
        "ACTIVE", "active", None)
    (op,) = operations_of(inst.id)
    assert (op.action, op.status, op.workflow_id, op.user_id) == (
        "reset-state", "succeeded", "", world.admin.user_id)
    assert op.last_error == "reset by admin from error/rebooting_hard to active"
    assert op.finished_at is not None
    history = (await api.get(f"/v1/servers/{inst.id}/actions", headers=world.alice.h)).json()
    assert history["actions"][0]["fault"] == op.last_error
    # and back to error, from a state without a task
    r = await action(api, world.admin.h, inst.id, {"os-resetState": {"state": "error"}})
    assert r.json()["vm_state"] == "error"
    assert operations_of(inst.id)[1].last_error == "reset by admin from active/- to error"


async def test_reset_state_refuses_while_a_workflow_runs(api: httpx.AsyncClient, world: World,
                                                         temporal: Client) -> None:
    sid = (await create_server(api, world.alice, name="resetting"))["server"]["id"]
    before = counts()
    r = await action(api, world.admin.h, sid, {"os-resetState": {"state": "error"}})
    err = assert_error(r, 409, "Conflict")
    assert "operation create is running" in err["message"] and "forceDelete" in err["message"]
    assert counts() == before
    assert instance_row(sid).vm_state == "building"
    await terminate(temporal, sid)
    # the workflow is gone, its row still says running (a dead worker): Temporal decides
    assert operations_of(sid)[0].status == "running"
    r = await action(api, world.admin.h, sid, {"os-resetState": {"state": "error"}})
    assert r.status_code == 200, r.text
    assert (r.json()["vm_state"], r.json()["task_state"]) == ("error", None)


# --- forceDelete ---------------------------------------------------------------------

async def test_force_delete_terminates_the_launch_and_deletes(
        api: httpx.AsyncClient, world: World, temporal: Client) -> None:
    created = await create_server(api, world.alice, name="doomed")
    sid, launch_id = created["server"]["id"], created["operation"]["id"]
    launch_run = operations_of(sid)[0].run_id
    r = await action(api, world.alice.h, sid, {"forceDelete": None})
    assert r.status_code == 202, r.text
    delete_op = r.json()["operation"]

    launch = temporal.get_workflow_handle(f"instance-{sid}", run_id=launch_run)
    assert (await launch.describe()).status == WorkflowExecutionStatus.TERMINATED
    history = await launch.fetch_history()
    last = history.events[-1]
    assert last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED
    assert last.workflow_execution_terminated_event_attributes.reason == "force-delete by alice"
    with session() as s:
        row = s.get(Operation, launch_id)
    assert row is not None
    assert (row.status, row.last_error) == ("failed", "terminated by force-delete")
    assert row.finished_at is not None

    desc = await temporal.get_workflow_handle(f"instance-{sid}").describe()
    assert (desc.workflow_type, desc.status) == ("DeleteInstance",
                                                 WorkflowExecutionStatus.RUNNING)
    assert desc.typed_search_attributes.get(SA_OPERATION) == "force-delete"
    assert await started_input(temporal, f"instance-{sid}") == {
        "instance_id": sid, "operation_id": delete_op["id"]}
    assert [(o.action, o.status) for o in operations_of(sid)] == [
        ("create", "failed"), ("force-delete", "running")]
    # forceDelete also ends a running delete, and starts its own
    r = await action(api, world.alice.h, sid, {"forceDelete": None})
    assert r.status_code == 202, r.text
    assert [(o.action, o.status) for o in operations_of(sid)] == [
        ("create", "failed"), ("force-delete", "failed"), ("force-delete", "running")]
    await terminate(temporal, sid)


async def test_force_delete_of_a_stuck_task(api: httpx.AsyncClient, world: World,
                                            temporal: Client) -> None:
    inst = add_instance(world, vm_state="active", task_state="suspending")
    r = await action(api, world.alice.h, inst.id, {"forceDelete": None})
    assert r.status_code == 202, r.text
    assert [o.action for o in operations_of(inst.id)] == ["force-delete"]
    await terminate(temporal, inst.id)


# --- DELETE cancels what runs --------------------------------------------------------

async def test_delete_cancels_a_running_launch_and_waits(
        api: httpx.AsyncClient, world: World, temporal: Client,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """No worker runs here, so the cancelled launch never compensates: DELETE gives up
    after the wait with 409, having delivered the cancellation."""
    monkeypatch.setattr(preempt, "CANCEL_WAIT_S", 0.6)
    created = await create_server(api, world.alice, name="cancelled")
    sid, launch_id = created["server"]["id"], created["operation"]["id"]
    before = counts()
    r = await api.delete(f"/v1/servers/{sid}", headers=world.alice.h)
    err = assert_error(r, 409, "StillCompensating")
    assert err["message"] == f"operation {launch_id} (create) is still compensating; retry"
    assert counts() == before

    handle = temporal.get_workflow_handle(f"instance-{sid}")
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    events = [e.event_type for e in (await handle.fetch_history()).events]
    assert EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED in events
    await terminate(temporal, sid)
