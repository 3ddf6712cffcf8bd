"""`createImage {name, metadata?}` and `createBackup {name, backup_type, rotation}`:
the image record is made first (queued, private to the server's project, typed and
linked to the server and its base image) and SnapshotInstance started with it; a bad
body or a refused state creates nothing. No worker runs here: workflows stay Running
and the tests terminate them."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlmodel import select
from temporalio.client import Client

from tests.api.conftest import (
    World,
    add_instance,
    counts,
    instance_row,
    operations_of,
    session,
)
from tests.api.test_auth import assert_error
from tests.api.test_server_actions import no_workflow, started_input
from vmflow.models import Image, Instance


def images_of(instance_id: str) -> list[Image]:
    with session() as s:
        return [i for i in s.exec(select(Image)).all()
                if (i.properties or {}).get("instance_uuid") == instance_id]


def base_image() -> Image:
    """A bootable base like the tiny guest: kernel, ramdisk, command line, agent."""
    image = Image(name=f"base-{uuid.uuid4().hex[:6]}", status="active", disk_format="qcow2",
                  visibility="public", size=1 << 20,
                  properties={"kernel_id": "k-1", "ramdisk_id": "r-1",
                              "os_command_line": "console=ttyS0 quiet",
                              "hw_qemu_guest_agent": "yes", "os_require_quiesce": "yes"})
    with session() as s:
        s.add(image)
        s.commit()
    return image


def built_from(inst: Instance, image: Image) -> Instance:
    with session() as s:
        row = s.get(Instance, inst.id)
        assert row is not None
        row.image_id = image.id
        s.add(row)
        s.commit()
    return row


async def act(api: httpx.AsyncClient, h: dict[str, str], sid: str, body: Any,
              key: str | None = None) -> httpx.Response:
    headers = {**h, **({"Idempotency-Key": key} if key else {})}
    return await api.post(f"/v1/servers/{sid}/action", headers=headers, json=body)


async def test_create_image_records_the_image_then_starts_the_workflow(
        api: httpx.AsyncClient, world: World, temporal: Client) -> None:
    base = base_image()
    inst = built_from(add_instance(world, vm_state="active"), base)
    # an admin snapshots alice's server: the image is still her project's
    r = await act(api, world.admin.h, inst.id,
                  {"createImage": {"name": "snap-1", "metadata": {"purpose": "test"}}})
    assert r.status_code == 202, r.text
    body = r.json()
    image_id = body["image_id"]
    assert body["image"] == {"id": image_id, "status": "queued"}
    assert r.headers["location"] == f"/v1/images/{image_id}"
    assert body["operation"]["status"] == "running"

    (image,) = images_of(inst.id)
    assert image.id == image_id
    assert (image.name, image.status, image.disk_format, image.visibility, image.owner) == (
        "snap-1", "queued", "qcow2", "private", world.alice.project_id)
    props = image.properties
    assert {k: props[k] for k in ("image_type", "instance_uuid", "base_image_ref", "owner_id",
                                  "user_id", "purpose")} == {
        "image_type": "snapshot", "instance_uuid": inst.id, "base_image_ref": base.id,
        "owner_id": world.alice.project_id, "user_id": world.admin.user_id, "purpose": "test"}
    # boots like its base
    for key in ("kernel_id", "ramdisk_id", "os_command_line", "hw_qemu_guest_agent"):
        assert props[key] == base.properties[key]
    assert "backup_type" not in props

    wf_id = f"instance-{inst.id}"
    assert await started_input(temporal, wf_id) == {
        "instance_id": inst.id, "operation_id": body["operation"]["id"], "image_id": image_id,
        "backup_type": None, "rotation": None}
    (op,) = operations_of(inst.id)
    assert (op.action, op.status) == ("snapshot", "running")
    await temporal.get_workflow_handle(wf_id).terminate(reason="test")


async def test_create_backup_is_a_typed_snapshot(api: httpx.AsyncClient, world: World,
                                                 temporal: Client) -> None:
    inst = add_instance(world, vm_state="stopped")
    r = await act(api, world.alice.h, inst.id,
                  {"createBackup": {"name": "nightly", "backup_type": "daily", "rotation": 3}})
    assert r.status_code == 202, r.text
    (image,) = images_of(inst.id)
    assert (image.properties["image_type"], image.properties["backup_type"]) == (
        "backup", "daily")
    assert await started_input(temporal, f"instance-{inst.id}") == {
        "instance_id": inst.id, "operation_id": r.json()["operation"]["id"],
        "image_id": image.id, "backup_type": "daily", "rotation": 3}
    (op,) = operations_of(inst.id)
    assert op.action == "backup"
    await temporal.get_workflow_handle(f"instance-{inst.id}").terminate(reason="test")


BAD: list[dict[str, Any]] = [
    {"createImage": None}, {"createImage": {}}, {"createImage": {"name": ""}},
    {"createImage": {"name": "   "}}, {"createImage": {"name": 5}},
    {"createImage": {"name": "x" * 256}}, {"createImage": {"name": "s", "extra": 1}},
    {"createImage": {"name": "s", "metadata": {"k": 5}}},
    {"createImage": {"name": "s", "metadata": {"image_type": "backup"}}},
    {"createImage": {"name": "s", "metadata": {"instance_uuid": "x"}}},
    {"createImage": {"name": "s", "metadata": {f"k{i}": "v" for i in range(129)}}},
    {"createBackup": {"name": "b", "backup_type": "daily"}},
    {"createBackup": {"name": "b", "rotation": 1}},
    {"createBackup": {"name": "b", "backup_type": "daily", "rotation": -1}},
    {"createBackup": {"name": "b", "backup_type": "daily", "rotation": "2"}},
    {"createBackup": {"name": "b", "backup_type": "daily", "rotation": True}},
    {"createBackup": {"name": "b", "backup_type": "daily", "rotation": 1.5}},
    {"createBackup": {"name": "b", "backup_type": "", "rotation": 1}},
    {"createBackup": {"backup_type": "daily", "rotation": 1}},
]


@pytest.mark.parametrize("body", BAD)
async def test_bad_input_is_400_and_creates_nothing(api: httpx.AsyncClient, world: World,
                                                    temporal: Client, body: Any) -> None:
    inst = add_instance(world, vm_state="active")
    before = counts()
    r = await act(api, world.alice.h, inst.id, body)
    assert_error(r, 400)
    assert images_of(inst.id) == [] and counts() == before
    assert await no_workflow(temporal, inst.id)


@pytest.mark.parametrize("vm_state", ["rescued", "error", "building", "shelved"])
@pytest.mark.parametrize("body", [{"createImage": {"name": "s"}},
                                  {"createBackup": {"name": "b", "backup_type": "w",
                                                    "rotation": 1}}])
async def test_a_refused_state_creates_no_image(api: httpx.AsyncClient, world: World,
                                                temporal: Client, vm_state: str,
                                                body: Any) -> None:
    inst = add_instance(world, vm_state=vm_state)
    r = await act(api, world.alice.h, inst.id, body)
    assert_error(r, 409, "ActionNotAllowed")
    assert images_of(inst.id) == [] and operations_of(inst.id) == []
    assert await no_workflow(temporal, inst.id)


async def test_a_running_operation_is_409_and_its_image_is_not_left(
        api: httpx.AsyncClient, world: World, temporal: Client) -> None:
    inst = add_instance(world, vm_state="active")
    first = await act(api, world.alice.h, inst.id, {"createImage": {"name": "one"}})
    assert first.status_code == 202, first.text
    # the workflow holds instance-<id> (no worker claims the task_state here)
    r = await act(api, world.alice.h, inst.id, {"createImage": {"name": "two"}})
    err = assert_error(r, 409)
    assert "snapshot" in err["message"]
    assert [i.name for i in images_of(inst.id)] == ["one"]
    assert len(operations_of(inst.id)) == 1
    await temporal.get_workflow_handle(f"instance-{inst.id}").terminate(reason="test")


async def test_snapshot_ignores_the_user_lock(api: httpx.AsyncClient, world: World,
                                              temporal: Client) -> None:
    inst = add_instance(world, vm_state="paused", locked=True, locked_by="owner")
    r = await act(api, world.carol.h, inst.id, {"createImage": {"name": "locked"}})
    assert r.status_code == 202, r.text
    assert instance_row(inst.id).locked
    await temporal.get_workflow_handle(f"instance-{inst.id}").terminate(reason="test")


async def test_readers_and_other_projects_create_nothing(api: httpx.AsyncClient,
                                                         world: World) -> None:
    inst = add_instance(world, vm_state="active")
    assert_error(await act(api, world.rita.h, inst.id, {"createImage": {"name": "r"}}), 403)
    assert_error(await act(api, world.bob.h, inst.id, {"createImage": {"name": "b"}}), 404)
    assert images_of(inst.id) == []


async def test_an_idempotency_key_replays_operation_and_image(
        api: httpx.AsyncClient, world: World, temporal: Client) -> None:
    inst = add_instance(world, vm_state="suspended")
    key = f"k-{uuid.uuid4().hex}"
    body = {"createBackup": {"name": "b", "backup_type": "weekly", "rotation": 1}}
    first = await act(api, world.alice.h, inst.id, body, key)
    again = await act(api, world.alice.h, inst.id, body, key)
    assert (first.status_code, again.status_code) == (202, 202), again.text
    assert again.json()["operation"]["id"] == first.json()["operation"]["id"]
    assert again.json()["image_id"] == first.json()["image_id"]
    assert len(images_of(inst.id)) == 1 and len(operations_of(inst.id)) == 1
    await temporal.get_workflow_handle(f"instance-{inst.id}").terminate(reason="test")
