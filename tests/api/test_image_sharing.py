"""Images: who may do what (roles, projects, visibility, members with acceptance,
community images, Idempotency-Key) and delete (data removed, protected images
stay)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.api.conftest import World, counts, create_server
from tests.api.test_images import (
    active_image,
    new_image,
    qcow2,
    stored,
    upload,
)
from vmflow.settings import Settings


@pytest.fixture(scope="module")
def good_qcow2(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return qcow2(tmp_path_factory.mktemp("images"))


# --- who may do what ------------------------------------------------------------------

async def test_roles_and_projects(api: httpx.AsyncClient, world: World,
                                  good_qcow2: bytes) -> None:
    image = await new_image(api, world.alice)
    for who in (world.rita, world.bob):  # a reader of p1, a member of p2
        r = await upload(api, who.h, image["id"], good_qcow2)
        assert r.status_code == (403 if who is world.rita else 404), r.text
        r = await api.delete(f"/v1/images/{image['id']}", headers=who.h)
        assert r.status_code == (403 if who is world.rita else 404)
    r = await api.post("/v1/images", headers=world.rita.h, json={
        "name": "x", "disk_format": "raw", "container_format": "bare"})
    assert r.status_code == 403
    assert (await upload(api, world.carol.h, image["id"], good_qcow2)).status_code == 204
    r = await api.post("/v1/images", headers=world.alice.h, json={
        "name": "x", "disk_format": "raw", "container_format": "bare", "visibility": "public"})
    assert r.status_code == 403 and "admin" in r.text
    public = await new_image(api, world.admin, visibility="public")
    assert public["visibility"] == "public"
    r = await api.post("/v1/images", headers=world.alice.h, json={
        "name": "x", "disk_format": "vmdk", "container_format": "bare"})
    assert r.status_code == 400


async def test_private_images_are_invisible_to_other_projects(
        api: httpx.AsyncClient, world: World, good_qcow2: bytes) -> None:
    image = await active_image(api, world.alice, good_qcow2, name="alices-private")
    for path in (f"/v1/images/{image['id']}", f"/v1/images/{image['id']}/file",
                 f"/v1/images/{image['id']}/members"):
        assert (await api.get(path, headers=world.bob.h)).status_code == 404, path
    listed = (await api.get("/v1/images", headers=world.bob.h)).json()["images"]
    assert image["id"] not in {i["id"] for i in listed}
    r = await api.post("/v1/servers", headers=world.bob.h,
                       json={"name": "vm", "image": image["id"], "flavor": "m1.tiny"})
    assert r.status_code == 400 and r.json()["error"]["type"] == "ImageNotFound"
    r = await api.post(f"/v1/images/{image['id']}/members", headers=world.alice.h,
                       json={"member": world.bob.project_id})
    assert r.status_code == 403 and "only shared images have members" in r.text


async def test_a_share_is_usable_only_once_accepted(api: httpx.AsyncClient, world: World,
                                                   good_qcow2: bytes) -> None:
    image = await active_image(api, world.alice, good_qcow2, name="shared-with-bob",
                               visibility="shared")
    iid = image["id"]

    async def bob_lists(status: str | None = None) -> bool:
        query = f"?member_status={status}" if status else ""
        r = await api.get(f"/v1/images{query}", headers=world.bob.h)
        return iid in {i["id"] for i in r.json()["images"]}

    async def bob_launches() -> int:
        r = await api.post("/v1/servers", headers=world.bob.h,
                           json={"name": "from-share", "image": iid, "flavor": "m1.tiny"})
        return r.status_code

    assert (await api.get(f"/v1/images/{iid}", headers=world.bob.h)).status_code == 404
    r = await api.post(f"/v1/images/{iid}/members", headers=world.bob.h,
                       json={"member": world.bob.project_id})
    assert r.status_code == 404  # bob cannot add himself to what he cannot see
    r = await api.post(f"/v1/images/{iid}/members", headers=world.alice.h,
                       json={"member": world.bob.project_id})
    assert r.status_code == 201, r.text
    assert (r.json()["member_id"], r.json()["status"]) == (world.bob.project_id, "pending")
    r = await api.post(f"/v1/images/{iid}/members", headers=world.alice.h,
                       json={"member": world.bob.project_id})
    assert r.status_code == 409

    # pending: bob sees it by id and among pending shares, but cannot boot or fetch it
    assert (await api.get(f"/v1/images/{iid}", headers=world.bob.h)).status_code == 200
    assert not await bob_lists() and await bob_lists("pending")
    before = counts()
    assert await bob_launches() == 400 and counts() == before
    assert (await api.get(f"/v1/images/{iid}/file", headers=world.bob.h)).status_code == 404

    # only bob answers for bob
    member_url = f"/v1/images/{iid}/members/{world.bob.project_id}"
    r = await api.put(member_url, headers=world.alice.h, json={"status": "accepted"})
    assert r.status_code == 403
    r = await api.put(member_url, headers=world.bob.h, json={"status": "rejected"})
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    assert not await bob_lists() and await bob_lists("rejected")
    assert await bob_launches() == 400
    r = await api.put(member_url, headers=world.bob.h, json={"status": "accepted"})
    assert r.status_code == 200 and r.json()["status"] == "accepted"
    assert await bob_lists() and not await bob_lists("pending")
    r = await api.get(f"/v1/images/{iid}/file", headers=world.bob.h)
    assert r.status_code == 200 and r.content == good_qcow2
    assert await bob_launches() == 202

    # members: the owner sees all, bob his own; bob may not remove or upload
    r = await api.get(f"/v1/images/{iid}/members", headers=world.carol.h)
    assert [m["member_id"] for m in r.json()["members"]] == [world.bob.project_id]
    r = await api.get(f"/v1/images/{iid}/members", headers=world.bob.h)
    assert [m["member_id"] for m in r.json()["members"]] == [world.bob.project_id]
    assert (await api.delete(member_url, headers=world.bob.h)).status_code == 403
    assert (await api.delete(f"/v1/images/{iid}", headers=world.bob.h)).status_code == 403
    assert (await api.delete(member_url, headers=world.alice.h)).status_code == 204
    assert (await api.get(f"/v1/images/{iid}", headers=world.bob.h)).status_code == 404
    assert await bob_launches() == 400


async def test_community_images_are_everyones(api: httpx.AsyncClient, world: World,
                                              good_qcow2: bytes) -> None:
    image = await active_image(api, world.alice, good_qcow2, visibility="community")
    assert (await api.get(f"/v1/images/{image['id']}", headers=world.bob.h)).status_code == 200
    await create_server(api, world.bob, name="from-community", image=image["id"])


async def test_idempotent_create_and_member_add(api: httpx.AsyncClient, world: World) -> None:
    key = {"Idempotency-Key": f"img-{uuid.uuid4()}"}
    body = {"name": "idem", "disk_format": "raw", "container_format": "bare",
            "visibility": "shared"}
    first = await api.post("/v1/images", headers={**world.alice.h, **key}, json=body)
    again = await api.post("/v1/images", headers={**world.alice.h, **key}, json=body)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    iid = first.json()["id"]
    mkey = {"Idempotency-Key": f"member-{uuid.uuid4()}"}
    for _ in range(2):
        r = await api.post(f"/v1/images/{iid}/members", headers={**world.alice.h, **mkey},
                           json={"member": "p2"})  # a project's name works too
        assert r.status_code == 201 and r.json()["member_id"] == world.bob.project_id


# --- delete ----------------------------------------------------------------------------

async def test_delete_removes_the_data_and_protected_images_stay(
        api: httpx.AsyncClient, world: World, vmflow_home: Settings, good_qcow2: bytes) -> None:
    image = await active_image(api, world.alice, good_qcow2)
    assert stored(vmflow_home, image["id"]) == [image["id"]]
    assert (await api.delete(f"/v1/images/{image['id']}", headers=world.carol.h)
            ).status_code == 204
    assert (await api.get(f"/v1/images/{image['id']}", headers=world.alice.h)).status_code == 404
    assert (await api.get(f"/v1/images/{image['id']}", headers=world.admin.h)).status_code == 404
    assert stored(vmflow_home, image["id"]) == []
    assert (await api.delete(f"/v1/images/{image['id']}", headers=world.alice.h)
            ).status_code == 404

    for protected in (True, "true"):
        kept = await active_image(api, world.alice, good_qcow2,
                                  properties={"protected": protected})
        r = await api.delete(f"/v1/images/{kept['id']}", headers=world.admin.h)
        assert r.status_code == 409 and r.json()["error"]["type"] == "ImageProtected"
        assert stored(vmflow_home, kept["id"]) == [kept["id"]]
