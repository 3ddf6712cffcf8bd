"""Glance facade image members: the owner adds, the member project accepts or rejects
as itself (with the extra "member" key openstackclient sends), the owner removes."""

from __future__ import annotations

import httpx
import jsonschema

from tests.api.conftest import World
from tests.api.openstack.image_support import GOOD_RAW, V2, create, h, served_schema, upload


async def test_share_accept_reject_remove(api: httpx.AsyncClient, world: World) -> None:
    image = await create(api, world.alice, name="to-share")
    assert (await upload(api, world.alice, image["id"], GOOD_RAW)).status_code == 204
    url = f"{V2}/images/{image['id']}/members"
    bob = world.bob.project_id
    member_schema = await served_schema(api, world.alice, "member")
    r = await api.post(url, headers=h(world.alice), json={"member": bob})
    assert r.status_code == 200, r.text
    jsonschema.validate(r.json(), member_schema)
    assert (r.json()["member_id"], r.json()["status"], r.json()["schema"]) == (
        bob, "pending", "/v2/schemas/member")
    assert (await api.post(url, headers=h(world.alice), json={"member": bob})
            ).status_code == 409
    r = await api.get(url, headers=h(world.alice))
    jsonschema.validate(r.json(), await served_schema(api, world.alice, "members"))
    assert [m["member_id"] for m in r.json()["members"]] == [bob]
    # pending: bob sees the image, may not download it yet
    assert (await api.get(f"{V2}/images/{image['id']}", headers=h(world.bob))
            ).status_code == 200
    assert (await api.get(f"{V2}/images/{image['id']}/file", headers=h(world.bob))
            ).status_code == 404
    # the owner may not answer for bob; bob may not add members
    r = await api.put(f"{url}/{bob}", headers=h(world.alice),
                      json={"member": bob, "status": "accepted"})
    assert r.status_code == 403
    r = await api.post(url, headers=h(world.bob), json={"member": world.admin.project_id})
    assert r.status_code == 403
    assert (await api.put(f"{url}/{bob}", headers=h(world.bob), json={"status": "maybe"})
            ).status_code == 400
    r = await api.put(f"{url}/{bob}", headers=h(world.bob),
                      json={"member": bob, "status": "accepted"})
    assert r.status_code == 200 and r.json()["status"] == "accepted"
    r = await api.get(f"{V2}/images/{image['id']}/file", headers=h(world.bob))
    assert r.status_code == 200 and r.content == GOOD_RAW
    r = await api.get(f"{url}/{bob}", headers=h(world.bob))
    assert r.json()["status"] == "accepted"
    r = await api.put(f"{url}/{bob}", headers=h(world.bob), json={"status": "rejected"})
    assert r.status_code == 200
    r = await api.get(f"{V2}/images", headers=h(world.bob))
    assert image["id"] not in [i["id"] for i in r.json()["images"]]
    # only the owner removes
    assert (await api.delete(f"{url}/{bob}", headers=h(world.bob))).status_code == 403
    assert (await api.delete(f"{url}/{bob}", headers=h(world.alice))).status_code == 204
    assert (await api.get(f"{url}/{bob}", headers=h(world.alice))).status_code == 404
    assert (await api.get(f"{V2}/images/{image['id']}", headers=h(world.bob))
            ).status_code == 404


async def test_only_shared_images_have_members(api: httpx.AsyncClient, world: World) -> None:
    image = await create(api, world.alice, visibility="private")
    r = await api.post(f"{V2}/images/{image['id']}/members", headers=h(world.alice),
                       json={"member": world.bob.project_id})
    assert r.status_code == 403
    r = await api.post(f"{V2}/images/{image['id']}/members", headers=h(world.alice), json={})
    assert r.status_code == 400
