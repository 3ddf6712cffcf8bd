"""POST /v1/servers/{id}/action against the declared state table.

The matrix is generated from vmflow.states.TRANSITIONS, so a change to the table is
tested without touching this file: every vm_state an action may not start from
answers 409 and changes nothing; every one it may start from starts the table's
workflow with the right input and search attributes (no worker runs here, so it
stays Running and is terminated by the test).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from sqlmodel import select
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from api.services.interfaces import new_port_id
from api.services.server_actions import ACTIONS
from tests.api.conftest import (
    World,
    add_instance,
    counts,
    flavor_id,
    instance_row,
    operations_of,
    session,
    set_state,
)
from tests.api.test_auth import assert_error
from vmflow.models import Host
from vmflow.names import CONTROL_QUEUE, SA_OPERATION, SA_PROJECT, SA_RESOURCE
from vmflow.network_models import Port, SecurityGroup
from vmflow.settings import get_settings
from vmflow.states import LIVE, TRANSITIONS

# one request body per transition the action route serves
BODIES: dict[str, dict[str, Any]] = {
    "start": {"os-start": None},
    "stop": {"os-stop": None},
    "reboot-soft": {"reboot": {"type": "SOFT"}},
    "reboot-hard": {"reboot": {"type": "HARD"}},
    "pause": {"pause": None},
    "unpause": {"unpause": {}},
    "suspend": {"suspend": None},
    "resume": {"resume": None},
    "rescue": {"rescue": None},
    "unrescue": {"unrescue": None},
    "rebuild": {"rebuild": {"imageRef": "cirros"}},
    "snapshot": {"createImage": {"name": "snap"}},
    "backup": {"createBackup": {"name": "bk", "backup_type": "daily", "rotation": 2}},
    "lock": {"lock": None},
    "unlock": {"unlock": None},
    "reset-state": {"os-resetState": {"state": "error"}},
    "force-delete": {"forceDelete": None},
    "resize": {"resize": {"flavorRef": "m1.small"}},
    "migrate": {"migrate": None},
    "confirm-resize": {"confirmResize": None},
    "revert-resize": {"revertResize": None},
    "live-migrate": {"os-migrateLive": {"host": None, "block_migration": "auto"}},
    "evacuate": {"evacuate": {}},
    "shelve": {"shelve": None},
    "shelve-offload": {"shelveOffload": None},
    "unshelve": {"unshelve": None},
    "unshelve-to-host": {"unshelve": {"host": "h1"}},
}
# POST/DELETE /servers, metadata, os-interface
OTHER_ROUTES = {"create", "delete", "set-metadata", "attach-interface", "detach-interface"}
IFACE_NETS: dict[str, str] = {}  # a caller's token -> its network for os-interface
IFACE_PORTS: dict[str, str] = {}  # server id -> the port act() attached to it


async def iface_net(api: httpx.AsyncClient, headers: dict[str, str], cidr: bool) -> str:
    """A network of the caller's project (with a subnet, or without), made once."""
    key = f"{headers['Authorization']} {cidr}"
    if key not in IFACE_NETS:
        r = await api.post("/v1/networks", headers=headers, json={})
        assert r.status_code == 201, r.text
        IFACE_NETS[key] = r.json()["id"]
        if cidr:
            r = await api.post("/v1/subnets", headers=headers, json={
                "network_id": IFACE_NETS[key], "cidr": f"172.28.{len(IFACE_NETS)}.0/24"})
            assert r.status_code == 201, r.text
    return IFACE_NETS[key]


async def iface_port(api: httpx.AsyncClient, headers: dict[str, str], sid: str) -> str:
    """A port attached to the server, as an attach leaves it."""
    r = await api.post("/v1/ports", headers=headers,
                       json={"network_id": await iface_net(api, headers, False)})
    assert r.status_code == 201, r.text
    with session() as s:
        port = s.get(Port, r.json()["id"])
        assert port is not None
        port.device_id, port.device_owner = sid, "compute:nova"
        s.add(port)
        s.commit()
        IFACE_PORTS[sid] = port.id
        return port.id


async def act(api: httpx.AsyncClient, headers: dict[str, str], action: str,
              sid: str) -> httpx.Response:
    """Run a transition through whichever route serves it."""
    if action == "delete":
        return await api.delete(f"/v1/servers/{sid}", headers=headers)
    if action == "attach-interface":
        return await api.post(f"/v1/servers/{sid}/os-interface", headers=headers, json={
            "interfaceAttachment": {"net_id": await iface_net(api, headers, True)}})
    if action == "detach-interface":
        port_id = await iface_port(api, headers, sid)
        return await api.delete(f"/v1/servers/{sid}/os-interface/{port_id}", headers=headers)
    if action == "set-metadata":
        return await api.put(f"/v1/servers/{sid}/metadata", headers=headers,
                             json={"metadata": {"k": "v"}})
    return await api.post(f"/v1/servers/{sid}/action", headers=headers, json=BODIES[action])


async def no_workflow(temporal: Client, sid: str) -> bool:
    try:
        await temporal.get_workflow_handle(f"instance-{sid}").describe()
    except RPCError as e:
        return e.status == RPCStatusCode.NOT_FOUND
    return False


async def started_input(temporal: Client, workflow_id: str) -> Any:
    """The argument the workflow was started with, from its first history event."""
    history = await temporal.get_workflow_handle(workflow_id).fetch_history()
    attrs = history.events[0].workflow_execution_started_event_attributes
    return json.loads(attrs.input.payloads[0].data)


def test_every_transition_has_a_route() -> None:
    assert set(BODIES) | OTHER_ROUTES == set(TRANSITIONS)
    assert {next(iter(b)) for b in BODIES.values()} == set(ACTIONS)


DISALLOWED = [(a, s.value) for a, t in TRANSITIONS.items() if a != "create"
              for s in sorted(LIVE - t.allowed_from)]
ALLOWED = [(a, s.value) for a, t in TRANSITIONS.items() if t.workflow and a != "create"
           for s in sorted(t.allowed_from)]


@pytest.mark.parametrize("action,vm_state", DISALLOWED)
async def test_disallowed_state_is_409_and_changes_nothing(
        api: httpx.AsyncClient, world: World, temporal: Client, action: str,
        vm_state: str) -> None:
    inst = add_instance(world, vm_state=vm_state)
    before = counts()
    r = await act(api, world.admin.h, action, inst.id)  # admin: neither lock nor role stops it
    err = assert_error(r, 409, "ActionNotAllowed")
    assert err["message"].startswith(f"Cannot '{action}' an instance while it is in vm_state "
                                     f"{vm_state}; allowed from: ")
    after = instance_row(inst.id)
    assert (after.vm_state, after.task_state, after.locked) == (vm_state, None, False)
    assert counts() == before and operations_of(inst.id) == []
    assert await no_workflow(temporal, inst.id)


@pytest.mark.parametrize("action,vm_state", ALLOWED)
async def test_allowed_state_starts_the_tables_workflow(
        api: httpx.AsyncClient, world: World, temporal: Client, action: str,
        vm_state: str) -> None:
    inst = add_instance(world, vm_state=vm_state)
    who = world.admin if TRANSITIONS[action].admin_only else world.alice
    if action == "unshelve-to-host":
        ensure_host("h1")
    r = await act(api, who.h, action, inst.id)
    assert r.status_code == 202, r.text
    brief = r.json()["operation"]
    wf_id = f"instance-{inst.id}"
    assert (brief["workflow_id"], brief["status"]) == (wf_id, "running")

    desc = await temporal.get_workflow_handle(wf_id).describe()
    assert (desc.workflow_type, desc.status, desc.task_queue) == (
        TRANSITIONS[action].workflow, WorkflowExecutionStatus.RUNNING, CONTROL_QUEUE)
    sa = desc.typed_search_attributes
    assert (sa.get(SA_RESOURCE), sa.get(SA_PROJECT), sa.get(SA_OPERATION)) == (
        wf_id, world.alice.project_id, action)  # the server's project, whoever asked

    expected: dict[str, Any] = {"instance_id": inst.id, "operation_id": brief["id"]}
    if action.startswith("reboot-"):
        expected["hard"] = action == "reboot-hard"
    if action == "rescue":
        expected["image_id"] = expected["unrescue_after_s"] = None
    if action == "rebuild":
        expected["image_id"] = world.image.id
    if action == "evacuate":  # h1 is no registered host: down, so it may be evacuated
        expected["host"] = None
    if action == "live-migrate":  # auto: the disks are copied (api/services/migrations.py)
        expected["host"], expected["block_migration"] = None, True
    if action == "resize":
        expected["flavor_id"], expected["host"] = flavor_id("m1.small"), None
    if action == "migrate":
        expected["flavor_id"] = expected["host"] = None
    if action in ("snapshot", "backup"):  # the image record the route made first
        expected["image_id"] = r.json()["image_id"]
        expected["backup_type"] = "daily" if action == "backup" else None
        expected["rotation"] = 2 if action == "backup" else None
    if action == "shelve":  # VMFLOW_SHELVED_OFFLOAD_TIME as the API read it
        expected["offload_after_s"] = get_settings().shelved_offload_time
    if action.startswith("unshelve"):
        expected["host"] = "h1" if action == "unshelve-to-host" else None
    if action == "attach-interface":  # a new port on the caller's network
        with session() as s:
            default = s.exec(select(SecurityGroup.id).where(
                SecurityGroup.project_id == who.project_id,
                SecurityGroup.name == "default")).one()
        expected.update(network_id=await iface_net(api, who.h, True), port_id="",
                        fixed_ip=None, security_group_ids=[default],
                        new_port_id=new_port_id(brief["id"]))
    if action == "detach-interface":
        expected["port_id"] = IFACE_PORTS[inst.id]
    assert await started_input(temporal, wf_id) == expected

    (op,) = operations_of(inst.id)
    assert (op.id, op.action, op.status, op.run_id, op.user_id) == (
        brief["id"], action, "running", desc.run_id, who.user_id)
    # the server shows the operation from its 202 on (as Nova does), not only once
    # the workflow begins
    after = instance_row(inst.id)
    assert (after.vm_state, after.task_state) == (vm_state, TRANSITIONS[action].task_state)
    await temporal.get_workflow_handle(wf_id).terminate(reason="test")


def ensure_host(name: str) -> None:
    with session() as s:
        if s.get(Host, name) is None:
            s.add(Host(name=name, hostname=f"{name}.example", vcpus=4, ram_mb=8192,
                       disk_gb=50))
            s.commit()


async def test_second_request_while_one_runs_is_409(api: httpx.AsyncClient, world: World,
                                                    temporal: Client) -> None:
    inst = add_instance(world, vm_state="active")
    r = await act(api, world.alice.h, "stop", inst.id)
    assert r.status_code == 202, r.text
    before = counts()
    for action in ("stop", "reboot-hard", "pause", "rescue"):
        err = assert_error(await act(api, world.alice.h, action, inst.id), 409,
                           "ActionNotAllowed")
        assert err["message"] == (f"Cannot '{action}' an instance while task_state "
                                  "powering-off is in progress")
    assert counts() == before
    assert instance_row(inst.id).task_state == "powering-off"  # the first one's, kept
    await temporal.get_workflow_handle(f"instance-{inst.id}").terminate(reason="test")


async def test_concurrent_conflicting_requests_exactly_one_runs(
    api: httpx.AsyncClient, world: World, temporal: Client
) -> None:
    inst = add_instance(world, vm_state="active")
    actions = ["stop", "reboot-hard", "pause", "suspend", "rescue", "reboot-soft"] * 2
    before = counts()
    answers = await asyncio.gather(*(act(api, world.alice.h, a, inst.id) for a in actions))
    codes = sorted(r.status_code for r in answers)
    assert codes == [202] + [409] * (len(actions) - 1), [r.text for r in answers]
    running = operations_of(inst.id)
    assert [o.status for o in running] == ["running"]
    assert counts() == (before[0], before[1] + 1)
    # the winner's task_state, never one a loser set and took back
    assert instance_row(inst.id).task_state == TRANSITIONS[running[0].action].task_state
    await temporal.get_workflow_handle(f"instance-{inst.id}").terminate(reason="test")


async def test_a_task_in_flight_refuses_workflow_actions(api: httpx.AsyncClient,
                                                         world: World) -> None:
    """A task_state left behind (its worker died) refuses actions until an admin
    resets the state; delete and forceDelete are not refused by it."""
    inst = add_instance(world, vm_state="active", task_state="powering-off")
    before = counts()
    for action in ("stop", "reboot-hard", "pause", "suspend", "rescue"):
        err = assert_error(await act(api, world.alice.h, action, inst.id), 409,
                           "ActionNotAllowed")
        assert "task_state powering-off is in progress" in err["message"]
    assert counts() == before
    assert (await act(api, world.alice.h, "lock", inst.id)).status_code == 200


async def test_rescue_image_ref(api: httpx.AsyncClient, world: World,
                                temporal: Client) -> None:
    inst = add_instance(world, vm_state="stopped")
    before = counts()
    for ref, type_ in (("no-such-image", "ImageNotFound"), ("p2-secret", "ImageNotFound"),
                       (world.private_p2.id, "ImageNotFound")):
        r = await api.post(f"/v1/servers/{inst.id}/action", headers=world.alice.h,
                           json={"rescue": {"rescue_image_ref": ref}})
        assert_error(r, 400, type_)
    assert counts() == before and await no_workflow(temporal, inst.id)
    r = await api.post(f"/v1/servers/{inst.id}/action", headers=world.alice.h,
                       json={"rescue": {"rescue_image_ref": "cirros"}})
    assert r.status_code == 202, r.text
    started = await started_input(temporal, f"instance-{inst.id}")
    assert started == {"instance_id": inst.id, "operation_id": r.json()["operation"]["id"],
                       "image_id": world.image.id, "unrescue_after_s": None}
    await temporal.get_workflow_handle(f"instance-{inst.id}").terminate(reason="test")


async def test_rescue_passes_unrescue_after_to_its_workflow(
        api: httpx.AsyncClient, world: World, temporal: Client) -> None:
    inst = add_instance(world, vm_state="active")
    r = await api.post(f"/v1/servers/{inst.id}/action", headers=world.alice.h,
                       json={"rescue": {"unrescue_after": 900}})
    assert r.status_code == 202, r.text
    started = await started_input(temporal, f"instance-{inst.id}")
    assert started == {"instance_id": inst.id, "operation_id": r.json()["operation"]["id"],
                       "image_id": None, "unrescue_after_s": 900}
    await temporal.get_workflow_handle(f"instance-{inst.id}").terminate(reason="test")


async def test_reboot_type_is_case_insensitive(api: httpx.AsyncClient, world: World,
                                               temporal: Client) -> None:
    inst = add_instance(world, vm_state="active")
    r = await api.post(f"/v1/servers/{inst.id}/action", headers=world.alice.h,
                       json={"reboot": {"type": "hard"}})
    assert r.status_code == 202, r.text
    assert operations_of(inst.id)[0].action == "reboot-hard"
    await temporal.get_workflow_handle(f"instance-{inst.id}").terminate(reason="test")


@pytest.mark.parametrize("body,type_", [
    ({}, "ValidationError"),
    ([], "ValidationError"),
    ("os-stop", "ValidationError"),
    (None, "ValidationError"),
    ({"os-stop": None, "os-start": None}, "ValidationError"),
    ({"os-stop": None, "bogus": None}, "ValidationError"),
    ({"bogus": None}, "UnknownAction"),
    ({"os-Stop": None}, "UnknownAction"),
    ({"os-stop": 5}, "ValidationError"),
    ({"os-stop": "now"}, "ValidationError"),
    ({"os-stop": {"force": True}}, "ValidationError"),
    ({"reboot": None}, "ValidationError"),
    ({"reboot": {}}, "ValidationError"),
    ({"reboot": "HARD"}, "ValidationError"),
    ({"reboot": {"type": 1}}, "ValidationError"),
    ({"reboot": {"type": "MEDIUM"}}, "ValidationError"),
    ({"reboot": {"type": "HARD", "extra": 1}}, "ValidationError"),
    ({"rescue": {"rescue_image_ref": 3}}, "ValidationError"),
    ({"rescue": {"adminPass": "x"}}, "ValidationError"),
    ({"rescue": {"unrescue_after": 0}}, "ValidationError"),
    ({"rescue": {"unrescue_after": -5}}, "ValidationError"),
    ({"rescue": {"unrescue_after": 7 * 24 * 3600 + 1}}, "ValidationError"),
    ({"rescue": {"unrescue_after": "3600"}}, "ValidationError"),
    ({"rescue": {"unrescue_after": 1.5}}, "ValidationError"),
    ({"rescue": {"unrescue_after": True}}, "ValidationError"),
    ({"lock": {"locked_reason": 5}}, "ValidationError"),
    ({"lock": {"locked_reason": "x" * 256}}, "ValidationError"),
    ({"os-resetState": None}, "ValidationError"),
    ({"os-resetState": {"state": "stopped"}}, "ValidationError"),
    ({"os-resetState": {"state": "ACTIVE"}}, "ValidationError"),
    ({"os-resetState": {"state": ["active"]}}, "ValidationError"),
    ({"forceDelete": []}, "ValidationError"),
])
async def test_bad_bodies_are_400_and_change_nothing(api: httpx.AsyncClient, world: World,
                                                     temporal: Client, body: Any,
                                                     type_: str) -> None:
    inst = add_instance(world, vm_state="active")
    before = counts()
    r = await api.post(f"/v1/servers/{inst.id}/action", headers=world.admin.h, json=body)
    assert_error(r, 400, type_)
    after = instance_row(inst.id)
    assert (after.vm_state, after.task_state, after.locked) == ("active", None, False)
    assert counts() == before and await no_workflow(temporal, inst.id)


async def test_malformed_and_missing_bodies_are_400(api: httpx.AsyncClient,
                                                    world: World) -> None:
    inst = add_instance(world, vm_state="active")
    path = f"/v1/servers/{inst.id}/action"
    r = await api.post(path, headers={**world.alice.h, "Content-Type": "application/json"},
                       content=b'{"os-stop": ')
    assert_error(r, 400, "InvalidJSON")
    assert_error(await api.post(path, headers=world.alice.h), 400, "ValidationError")
    assert operations_of(inst.id) == []


async def test_every_action_of_a_deleted_or_foreign_server_is_404(
        api: httpx.AsyncClient, world: World) -> None:
    gone = add_instance(world, vm_state="deleted")
    bobs = add_instance(world, owner=world.bob, vm_state="active")
    before = counts()
    for action in sorted(set(BODIES) | {"delete", "set-metadata"}):
        assert_error(await act(api, world.admin.h, action, gone.id), 404, "NotFound")
        assert_error(await act(api, world.alice.h, action, bobs.id), 404, "NotFound")
        assert_error(await act(api, world.alice.h, action, "no-such-id"), 404, "NotFound")
    assert counts() == before


async def test_idempotency_key_returns_the_first_operation(
        api: httpx.AsyncClient, world: World, temporal: Client) -> None:
    inst = add_instance(world, vm_state="active")
    path = f"/v1/servers/{inst.id}/action"
    key = {**world.alice.h, "Idempotency-Key": "stop-once"}
    first = await api.post(path, headers=key, json={"os-stop": None})
    assert first.status_code == 202, first.text
    await temporal.get_workflow_handle(f"instance-{inst.id}").terminate(reason="test")
    set_state(inst.id, "stopped")  # as if the stop had finished
    before = counts()
    again = await api.post(path, headers=key, json={"os-stop": None})
    assert (again.status_code, again.json()) == (202, first.json())
    assert counts() == before
    # the same key for another action is refused, not replayed
    assert_error(await api.post(path, headers=key, json={"os-start": None}), 409,
                 "IdempotencyKeyReused")
    # synchronous actions replay their answer too, with one row
    lock_key = {**world.alice.h, "Idempotency-Key": "lock-once"}
    one = await api.post(path, headers=lock_key, json={"lock": {"locked_reason": "a"}})
    two = await api.post(path, headers=lock_key, json={"lock": {"locked_reason": "a"}})
    assert one.status_code == two.status_code == 200
    assert two.json()["locked"] is True
    assert [o.action for o in operations_of(inst.id)] == ["stop", "lock"]
    # a repeat after the server is gone still answers the first result
    assert (await api.post(path, headers=world.alice.h, json={"unlock": None})).is_success
    gone_key = {**world.alice.h, "Idempotency-Key": "force-once"}
    first = await api.post(path, headers=gone_key, json={"forceDelete": None})
    assert first.status_code == 202, first.text
    await temporal.get_workflow_handle(f"instance-{inst.id}").terminate(reason="test")
    set_state(inst.id, "deleted")
    again = await api.post(path, headers=gone_key, json={"forceDelete": None})
    assert (again.status_code, again.json()) == (202, first.json())
    # bob cannot replay alice's key (or learn that the server existed)
    bobs = {**world.bob.h, "Idempotency-Key": "force-once"}
    assert_error(await api.post(path, headers=bobs, json={"forceDelete": None}), 404)


async def test_a_reader_may_change_nothing(api: httpx.AsyncClient, world: World,
                                           temporal: Client) -> None:
    inst = add_instance(world, vm_state="active")
    before = counts()
    for action in sorted(set(BODIES) | {"delete", "set-metadata"}):
        assert_error(await act(api, world.rita.h, action, inst.id), 403, "Forbidden")
        assert_error(await act(api, {}, action, inst.id), 401, "Unauthorized")
    assert counts() == before and await no_workflow(temporal, inst.id)
    after = instance_row(inst.id)
    assert (after.vm_state, after.locked, after.meta) == ("active", False, {})
