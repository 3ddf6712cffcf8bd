"""`rebuild {imageRef}`: the image is resolved among the caller's visible, active
images before anything changes; the state table's 409s are in test_server_actions."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from tests.api.conftest import (
    World,
    add_image,
    add_instance,
    counts,
    instance_row,
    operations_of,
)
from tests.api.test_auth import assert_error
from tests.api.test_server_actions import no_workflow, started_input


def rebuild(ref: Any) -> dict[str, Any]:
    return {"rebuild": {"imageRef": ref}}


@pytest.mark.parametrize("which,kind", [
    ("unknown", "ImageNotFound"), ("other-project-private", "ImageNotFound"),
    ("queued", "ImageNotActive"), ("deleted", "ImageNotFound"),
])
async def test_a_bad_image_ref_is_400_and_changes_nothing(
        api: httpx.AsyncClient, world: World, temporal: Client, which: str, kind: str) -> None:
    suffix = uuid.uuid4().hex[:6]
    ref = {
        "unknown": lambda: "no-such-image",
        "other-project-private": lambda: world.private_p2.id,
        "queued": lambda: add_image(f"queued-{suffix}", status="queued").id,
        "deleted": lambda: add_image(f"gone-{suffix}", status="deleted").id,
    }[which]()
    inst = add_instance(world, vm_state="active")
    before = counts()
    r = await api.post(f"/v1/servers/{inst.id}/action", headers=world.alice.h,
                       json=rebuild(ref))
    assert_error(r, 400, kind)
    after = instance_row(inst.id)
    assert (after.vm_state, after.task_state, after.image_id) == ("active", None,
                                                                  world.image.id)
    assert counts() == before and operations_of(inst.id) == []
    assert await no_workflow(temporal, inst.id)


@pytest.mark.parametrize("args", [{}, {"imageRef": 5}, {"imageRef": ""},
                                  {"imageRef": "cirros", "name": "x"}, None])
async def test_a_malformed_rebuild_body_is_400(api: httpx.AsyncClient, world: World,
                                               args: Any) -> None:
    inst = add_instance(world, vm_state="active")
    r = await api.post(f"/v1/servers/{inst.id}/action", headers=world.alice.h,
                       json={"rebuild": args})
    assert_error(r, 400, "ValidationError")
    assert operations_of(inst.id) == []


async def test_rebuild_by_id_to_the_callers_own_private_image(
        api: httpx.AsyncClient, world: World, temporal: Client) -> None:
    own = add_image(f"alice-{uuid.uuid4().hex[:6]}", visibility="private",
                    owner=world.alice.project_id)
    inst = add_instance(world, vm_state="stopped")
    r = await api.post(f"/v1/servers/{inst.id}/action", headers=world.alice.h,
                       json=rebuild(own.name))
    assert r.status_code == 202, r.text
    wf_id = f"instance-{inst.id}"
    assert await started_input(temporal, wf_id) == {
        "instance_id": inst.id, "operation_id": r.json()["operation"]["id"],
        "image_id": own.id}
    # the image changes only when the workflow has rebuilt the disk
    assert instance_row(inst.id).image_id == world.image.id
    await temporal.get_workflow_handle(wf_id).terminate(reason="test")


async def test_a_locked_server_refuses_rebuild_from_its_owner(
        api: httpx.AsyncClient, world: World) -> None:
    inst = add_instance(world, vm_state="active", locked=True, locked_by="admin")
    r = await api.post(f"/v1/servers/{inst.id}/action", headers=world.alice.h,
                       json=rebuild("cirros"))
    assert_error(r, 409, "InstanceLocked")
    assert operations_of(inst.id) == []
