"""POST /compute/v2.1/servers/{id}/action: every vmflow action under Nova's name, with
Nova's status and body (checked with Tempest's schemas), the operation it started
carrying the response's request id; locked 409, wrong state 409, bad body 400, admin
only 403, reader 403, and nothing changed by a refusal."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from tempest.lib.api_schema.response.compute.v2_1 import servers as s21
from tempest.lib.api_schema.response.compute.v2_45 import images as i245
from tempest.lib.api_schema.response.compute.v2_45 import servers as s245

from tests.api.conftest import (
    Caller,
    World,
    add_image,
    add_instance,
    counts,
    instance_row,
    operations_of,
)
from tests.api.openstack.test_compute_servers_support import (
    h,
    post_action,
    schemas,
    validate,
)

NO_BODY_202 = s21.server_actions_common_schema

# Nova action, its body, the vm_state it runs from, admin?, vmflow's operation
CASES: list[tuple[str, Any, str, bool, str]] = [
    ("os-stop", None, "active", False, "stop"),
    ("os-start", None, "stopped", False, "start"),
    ("reboot", {"type": "SOFT"}, "active", False, "reboot-soft"),
    ("reboot", {"type": "HARD"}, "stopped", False, "reboot-hard"),
    ("pause", None, "active", False, "pause"),
    ("unpause", None, "paused", False, "unpause"),
    ("suspend", None, "active", False, "suspend"),
    ("resume", None, "suspended", False, "resume"),
    ("unrescue", None, "rescued", False, "unrescue"),
    ("shelve", None, "active", False, "shelve"),
    ("shelveOffload", None, "shelved", True, "shelve-offload"),
    ("unshelve", None, "shelved", False, "unshelve"),
    ("unshelve", {"availability_zone": "nova"}, "shelved_offloaded", False, "unshelve"),
    ("migrate", None, "active", True, "migrate"),
    ("migrate", {"host": None}, "stopped", True, "migrate"),
    ("os-migrateLive", {"host": None, "block_migration": "auto", "force": False},
     "active", True, "live-migrate"),
    ("resize", {"flavorRef": "m1.small", "OS-DCF:diskConfig": "AUTO"}, "active", False,
     "resize"),
    ("revertResize", None, "resized", False, "revert-resize"),
    ("forceDelete", None, "active", False, "force-delete"),
]


@pytest.mark.parametrize("key,value,vm_state,admin,action", CASES)
async def test_workflow_action_202_without_body(api: httpx.AsyncClient, world: World,
                                                key: str, value: Any, vm_state: str,
                                                admin: bool, action: str) -> None:
    inst = add_instance(world, vm_state=vm_state, name=f"act-{key}")
    who = world.admin if admin else world.alice
    if admin:  # a member is refused first, and nothing starts
        r = await post_action(api, world.alice, inst.id, {key: value})
        assert r.status_code == 403 and "forbidden" in r.json(), r.text
        assert operations_of(inst.id) == []
    r = await post_action(api, who, inst.id, {key: value}, "2.79")
    validate(NO_BODY_202, r)
    (op,) = operations_of(inst.id)
    assert op.action == action and op.status == "running"
    assert op.request_id == r.headers["X-OpenStack-Request-Id"]


async def test_confirm_resize_204(api: httpx.AsyncClient, world: World) -> None:
    inst = add_instance(world, vm_state="resized", name="confirm")
    r = await post_action(api, world.alice, inst.id, {"confirmResize": None})
    validate(s21.server_actions_confirm_resize, r)
    assert [o.action for o in operations_of(inst.id)] == ["confirm-resize"]


async def test_evacuate_200(api: httpx.AsyncClient, world: World) -> None:
    inst = add_instance(world, name="evac")  # h1 never beats: its service is down
    r = await post_action(api, world.admin, inst.id,
                          {"evacuate": {"onSharedStorage": False}}, "2.14")
    validate(s21.evacuate_server, r)
    inst2 = add_instance(world, name="evac-old")
    r = await post_action(api, world.admin, inst2.id, {"evacuate": {"adminPass": "x"}}, "2.1")
    assert validate(s21.evacuate_server_with_admin_pass, r)["adminPass"] == "x"


async def test_rescue_200_with_admin_pass(api: httpx.AsyncClient, world: World) -> None:
    inst = add_instance(world, name="rescue")
    r = await post_action(api, world.alice, inst.id,
                          {"rescue": {"adminPass": "secret", "rescue_image_ref": "cirros"}})
    assert validate(s21.rescue_server_with_admin_pass, r)["adminPass"] == "secret"
    assert [o.action for o in operations_of(inst.id)] == ["rescue"]


@pytest.mark.parametrize("version", ["2.1", "2.9", "2.19", "2.26", "2.47", "2.54", "2.57",
                                     "2.63", "2.71", "2.73", "2.75", "2.79"])
async def test_rebuild_202_with_the_server(api: httpx.AsyncClient, world: World,
                                           version: str) -> None:
    new = add_image(name=f"rebuild-to-{version}")
    inst = add_instance(world, name="before")
    for who in (world.alice, world.admin):
        body = {"rebuild": {"imageRef": new.id, "name": "after", "adminPass": "pw",
                            "metadata": {"m": "1"}, "preserve_ephemeral": False}}
        r = await post_action(api, who, inst.id, body, version)
        server = validate(schemas(version).rebuild_server_with_admin_pass, r)["server"]
        assert server["image"]["id"] == new.id and server["name"] == "after"
        assert server["metadata"] == {"m": "1"} and server["adminPass"] == "pw"
        assert [o.action for o in operations_of(inst.id)] == ["rebuild"]
        inst = add_instance(world, name="before")


@pytest.mark.parametrize("key,value", [
    ("createImage", {"name": "snap", "metadata": {"k": "v"}}),
    ("createBackup", {"name": "bk", "backup_type": "daily", "rotation": "2"}),
])
async def test_image_actions_location_then_image_id(api: httpx.AsyncClient, world: World,
                                                    key: str, value: Any) -> None:
    inst = add_instance(world, name=f"img-{key}")
    r = await post_action(api, world.alice, inst.id, {key: value}, "2.44")
    validate(NO_BODY_202 if key == "createImage" else s21.create_backup, r)
    first = r.headers["Location"].rsplit("/", 1)[-1]
    assert r.headers["Location"] == f"http://vmflow/image/v2/images/{first}"
    inst = add_instance(world, name=f"img-{key}-2")
    r = await post_action(api, world.alice, inst.id, {key: value}, "2.45")
    body = validate(i245.create_image if key == "createImage" else s245.create_backup, r)
    assert body["image_id"] != first
    assert operations_of(inst.id)[0].action == ("snapshot" if key == "createImage"
                                                else "backup")


async def test_lock_reason_and_locked_conflict(api: httpx.AsyncClient, world: World) -> None:
    inst = add_instance(world, name="lockme")
    r = await post_action(api, world.alice, inst.id, {"lock": {"locked_reason": "x"}}, "2.72")
    assert r.status_code == 400
    assert not instance_row(inst.id).locked
    r = await post_action(api, world.alice, inst.id, {"lock": {"locked_reason": "why"}},
                          "2.73")
    validate(NO_BODY_202, r)
    shown = (await api.get(f"/compute/v2.1/servers/{inst.id}", headers=h(world.alice, "2.73"))
             ).json()["server"]
    assert shown["locked"] is True and shown["locked_reason"] == "why"
    before = counts()
    for who in (world.alice, world.carol):  # even the member who locked it
        r = await post_action(api, who, inst.id, {"os-stop": None})
        assert r.status_code == 409 and "conflictingRequest" in r.json()
    assert counts() == before
    r = await post_action(api, world.admin, inst.id, {"os-stop": None})
    assert r.status_code == 202  # an admin passes the lock
    inst2 = add_instance(world, name="unlockme", locked=True, locked_by="owner")
    validate(NO_BODY_202, await post_action(api, world.alice, inst2.id, {"unlock": None}))
    assert not instance_row(inst2.id).locked
    assert [o.action for o in operations_of(inst2.id)] == ["unlock"]


async def test_reset_state_admin_only(api: httpx.AsyncClient, world: World) -> None:
    inst = add_instance(world, vm_state="error", name="reset")
    body = {"os-resetState": {"state": "active"}}
    assert (await post_action(api, world.alice, inst.id, body)).status_code == 403
    assert instance_row(inst.id).vm_state == "error"
    r = await post_action(api, world.admin, inst.id, body)
    validate(NO_BODY_202, r)
    assert instance_row(inst.id).vm_state == "active"
    (op,) = operations_of(inst.id)
    assert op.request_id == r.headers["X-OpenStack-Request-Id"]


@pytest.mark.parametrize("body,status", [
    ({"restore": None}, 409),  # no soft-deleted servers here
    ({"os-start": None}, 409),  # active already
    ({"unpause": None}, 409),
    ({"reboot": {"type": "WARM"}}, 400),
    ({"reboot": None}, 400),
    ({"resize": {}}, 400),
    ({"resize": {"flavorRef": "no-such-flavor"}}, 400),
    ({"rebuild": {"imageRef": "no-such-image"}}, 400),
    ({"createImage": {}}, 400),
    ({"os-resetState": {"state": "bogus"}}, 400),
    ({"changePassword": {"adminPass": "x"}}, 400),
    ({"os-stop": None, "os-start": None}, 400),
    ([], 400),
])
async def test_refused_actions_change_nothing(api: httpx.AsyncClient, world: World,
                                              body: Any, status: int) -> None:
    inst = add_instance(world, name="refuse")
    before = counts()
    r = await post_action(api, world.admin if "os-resetState" in body else world.alice,
                          inst.id, body)
    assert r.status_code == status, r.text
    assert ("badRequest" if status == 400 else "conflictingRequest") in r.json()
    assert counts() == before
    row = instance_row(inst.id)
    assert (row.vm_state, row.task_state, row.name) == ("active", None, "refuse")


async def test_unknown_foreign_server_and_reader(api: httpx.AsyncClient, world: World) -> None:
    bobs = add_instance(world, owner=world.bob, name="bob-act")
    mine = add_instance(world, name="reader-act")
    cases: list[tuple[Caller, str, int]] = [(world.alice, bobs.id, 404),
                                            (world.alice, "nope", 404),
                                            (world.rita, mine.id, 403)]
    for who, sid, status in cases:
        r = await post_action(api, who, sid, {"os-stop": None})
        assert r.status_code == status, r.text
    assert operations_of(bobs.id) == operations_of(mine.id) == []
