"""The Glance facade's images: discovery, schemas, create with top-level extra
properties, show, JSON-patch, delete, deactivate/reactivate, tags. Every image view is
validated against the schema the facade serves."""

from __future__ import annotations

import uuid

import httpx
import jsonschema
from sqlmodel import select

from tests.api.conftest import World, session
from tests.api.openstack.image_support import (
    GOOD_RAW,
    V2,
    create,
    h,
    patch,
    served_schema,
    upload,
    valid_image,
)
from vmflow.models import Image


async def test_versions_are_discovered_from_the_request_url(api: httpx.AsyncClient) -> None:
    for path in ("/image", "/image/", "/image/versions"):
        r = await api.get(path, follow_redirects=True)  # /image: the mount redirects to /image/
        assert r.status_code == 300, (path, r.text)
        versions = r.json()["versions"]
        assert [v["id"] for v in versions if v["status"] == "CURRENT"] == ["v2.16"]
        assert {v["links"][0]["href"] for v in versions} == {"http://vmflow/image/v2/"}
    r = await api.get("/image/v2/")
    assert r.status_code == 200 and r.json()["versions"]


async def test_schemas_are_glances(api: httpx.AsyncClient, world: World) -> None:
    image = await served_schema(api, world.alice, "image")
    assert image["name"] == "image" and image["additionalProperties"] == {"type": "string"}
    assert image["properties"]["checksum"]["maxLength"] == 32
    assert image["properties"]["kernel_id"]["is_base"] is False
    images = await served_schema(api, world.alice, "images")
    assert images["name"] == "images" and images["properties"]["images"]["items"] == image
    member = await served_schema(api, world.alice, "member")
    assert member["properties"]["status"]["enum"] == ["pending", "accepted", "rejected"]
    members = await served_schema(api, world.alice, "members")
    assert members["properties"]["members"]["items"] == member
    r = await api.get(f"{V2}/info/import", headers=h(world.alice))
    assert r.json()["import-methods"]["value"] == []
    assert (await api.get(f"{V2}/info/stores", headers=h(world.alice))).status_code == 404
    assert (await api.get(f"{V2}/schemas/image")).status_code == 401


async def test_create_with_extra_properties_id_and_attributes(api: httpx.AsyncClient,
                                                              world: World) -> None:
    image_id = str(uuid.uuid4())
    image = await create(api, world.alice, id=image_id, name="img1", tags=["a", "b", "a"],
                         min_disk=2, min_ram=64, protected=False,
                         **{"owner_specified.openstack.md5": "",
                            "owner_specified.openstack.object": "images/img1"})
    assert image["id"] == image_id and image["status"] == "queued"
    assert image["visibility"] == "shared"  # Glance's default
    assert image["owner"] == world.alice.project_id
    assert image["owner_specified.openstack.object"] == "images/img1"
    assert image["owner_specified.openstack.md5"] == ""
    assert (image["tags"], image["min_disk"], image["min_ram"]) == (["a", "b"], 2, 64)
    assert image["self"] == f"/v2/images/{image_id}"
    assert image["file"] == f"/v2/images/{image_id}/file"
    assert image["schema"] == "/v2/schemas/image"
    assert image["created_at"].endswith("Z")
    r = await api.get(f"{V2}/images/{image_id}", headers=h(world.alice))
    assert r.json() == image
    # the same id again: 409
    r = await api.post(f"{V2}/images", headers=h(world.alice), json={"id": image_id})
    assert r.status_code == 409, r.text


async def test_bad_creates_change_nothing(api: httpx.AsyncClient, world: World) -> None:
    with session() as s:
        before = len(s.exec(select(Image)).all())
    cases = [({"name": 5}, 400), ({"visibility": "everyone"}, 400),
             ({"disk_format": "vmdk"}, 400), ({"min_disk": -1}, 400), ({"foo": 3}, 400),
             ({"id": "not-a-uuid"}, 400), ({"disk_format": "aki", "container_format": "bare"},
                                            400), ({"name": "a\x00b"}, 400),
             ({"status": "active"}, 403), ({"self": "/x"}, 403), ({"deleted": "1"}, 403),
             ({"os_glance_x": "1"}, 403), ({"visibility": "public"}, 403)]
    for body, status in cases:
        r = await api.post(f"{V2}/images", headers=h(world.alice), json=body)
        assert r.status_code == status, (body, r.text)
        assert r.json()["error"]["code"] == status
    r = await api.post(f"{V2}/images", headers=h(world.alice), content=b"[",)
    assert r.status_code == 400
    with session() as s:
        assert len(s.exec(select(Image)).all()) == before


async def test_json_patch(api: httpx.AsyncClient, world: World) -> None:
    image = await create(api, world.alice, name="patchme", foo="1")
    url = f"{V2}/images/{image['id']}"
    r = await patch(api, world.alice, image["id"], [
        {"op": "replace", "path": "/name", "value": "renamed"},
        {"op": "add", "path": "/bar", "value": "2"},
        {"op": "replace", "path": "/foo", "value": "one"},
        {"op": "add", "path": "/tags", "value": ["x"]},
        {"op": "replace", "path": "/min_ram", "value": 128},
        {"op": "replace", "path": "/os_hidden", "value": True},
        {"op": "replace", "path": "/visibility", "value": "private"},
        {"op": "replace", "path": "/disk_format", "value": "qcow2"}])
    assert r.status_code == 200, r.text
    got = await valid_image(api, world.alice, r.json())
    assert (got["name"], got["bar"], got["foo"], got["tags"], got["min_ram"],
            got["os_hidden"], got["visibility"], got["disk_format"]) == (
        "renamed", "2", "one", ["x"], 128, True, "private", "qcow2")
    r = await patch(api, world.alice, image["id"], [{"op": "remove", "path": "/bar"}])
    assert r.status_code == 200 and "bar" not in r.json()
    # refused, and nothing of the batch is applied
    for ops, status in [
            ([{"op": "replace", "path": "/name", "value": "zz"},
              {"op": "remove", "path": "/nope"}], 409),
            ([{"op": "replace", "path": "/nope", "value": "1"}], 409),
            ([{"op": "remove", "path": "/name"}], 403),
            ([{"op": "replace", "path": "/status", "value": "active"}], 403),
            ([{"op": "replace", "path": "/size", "value": 1}], 403),
            ([{"op": "replace", "path": "/owner", "value": world.bob.project_id}], 403),
            ([{"op": "replace", "path": "/visibility", "value": "public"}], 403),
            ([{"op": "add", "path": "/deleted", "value": "1"}], 403),
            ([{"op": "move", "path": "/name", "value": "zz"}], 400),
            ([{"op": "replace", "path": "name", "value": "zz"}], 400),
            ([{"op": "replace", "path": "/a/b", "value": "zz"}], 400),
            ([{"op": "replace", "path": "/name"}], 400),
            ([{"op": "replace", "path": "/min_disk", "value": "big"}], 400),
            ([{"op": "add", "path": "/foo", "value": 1}], 400),
            ({"op": "add"}, 400)]:
        r = await patch(api, world.alice, image["id"], ops)  # type: ignore[arg-type]
        assert r.status_code == status, (ops, r.text)
    r = await api.get(url, headers=h(world.alice))
    assert r.json()["name"] == "renamed" and r.json()["owner"] == world.alice.project_id
    # wrong content type: 415 with the accepted ones
    r = await api.patch(url, headers=h(world.alice), json=[])
    assert r.status_code == 415 and "json-patch" in r.headers["Accept-Patch"]
    # the v2.0 form
    r = await api.patch(url, content=b'[{"replace": "/name", "value": "old-style"}]',
                        headers={**h(world.alice), "Content-Type":
                                 "application/openstack-images-v2.0-json-patch"})
    assert r.status_code == 200 and r.json()["name"] == "old-style"


async def test_formats_change_only_while_queued(api: httpx.AsyncClient, world: World) -> None:
    image = await create(api, world.alice)
    assert (await upload(api, world.alice, image["id"], GOOD_RAW)).status_code == 204
    r = await patch(api, world.alice, image["id"],
                    [{"op": "replace", "path": "/disk_format", "value": "qcow2"}])
    assert r.status_code == 403, r.text


async def test_protected_delete_and_delete(api: httpx.AsyncClient, world: World) -> None:
    image = await create(api, world.alice, protected=True)
    url = f"{V2}/images/{image['id']}"
    assert (await api.delete(url, headers=h(world.alice))).status_code == 403
    r = await patch(api, world.alice, image["id"],
                    [{"op": "replace", "path": "/protected", "value": False}])
    assert r.status_code == 200 and r.json()["protected"] is False
    assert (await api.delete(url, headers=h(world.alice))).status_code == 204
    assert (await api.get(url, headers=h(world.alice))).status_code == 404
    assert (await api.delete(url, headers=h(world.alice))).status_code == 404


async def test_deactivate_reactivate(api: httpx.AsyncClient, world: World) -> None:
    image = await create(api, world.alice)
    url = f"{V2}/images/{image['id']}"
    # only an active image can be deactivated
    assert (await api.post(f"{url}/actions/deactivate", headers=h(world.alice))
            ).status_code == 403
    assert (await upload(api, world.alice, image["id"], GOOD_RAW)).status_code == 204
    for _ in range(2):  # the second time changes nothing
        r = await api.post(f"{url}/actions/deactivate", headers=h(world.alice))
        assert r.status_code == 204, r.text
    assert (await api.get(url, headers=h(world.alice))).json()["status"] == "deactivated"
    r = await api.get(f"{url}/file", headers=h(world.alice))
    assert r.status_code == 403
    # carol (same project, member role) is an owner too; bob does not see the image
    assert (await api.post(f"{url}/actions/reactivate", headers=h(world.bob))
            ).status_code == 404
    r = await api.post(f"{url}/actions/reactivate", headers=h(world.carol))
    assert r.status_code == 204
    got = await valid_image(api, world.alice,
                            (await api.get(url, headers=h(world.alice))).json())
    assert got["status"] == "active"
    assert (await api.get(f"{url}/file", headers=h(world.alice))).content == GOOD_RAW


async def test_admin_may_deactivate_others_image(api: httpx.AsyncClient,
                                                 world: World) -> None:
    r = await api.post(f"{V2}/images/{world.image.id}/actions/deactivate",
                       headers=h(world.alice))
    assert r.status_code == 403  # public, not alice's
    r = await api.post(f"{V2}/images/{world.private_p2.id}/actions/deactivate",
                       headers=h(world.admin))
    assert r.status_code == 204
    r = await api.post(f"{V2}/images/{world.private_p2.id}/actions/reactivate",
                       headers=h(world.admin))
    assert r.status_code == 204
    r = await api.get(f"{V2}/images/{world.private_p2.id}", headers=h(world.bob))
    assert r.json()["status"] == "active"


async def test_tags(api: httpx.AsyncClient, world: World) -> None:
    image = await create(api, world.alice, tags=["one"])
    url = f"{V2}/images/{image['id']}"
    for _ in range(2):
        assert (await api.put(f"{url}/tags/two", headers=h(world.alice))).status_code == 204
    assert (await api.get(url, headers=h(world.alice))).json()["tags"] == ["one", "two"]
    assert (await api.delete(f"{url}/tags/one", headers=h(world.alice))).status_code == 204
    assert (await api.delete(f"{url}/tags/one", headers=h(world.alice))).status_code == 404
    assert (await api.put(f"{url}/tags/{'t' * 256}", headers=h(world.alice))
            ).status_code == 400
    assert (await api.get(url, headers=h(world.alice))).json()["tags"] == ["two"]
    assert (await api.put(f"{url}/tags/x", headers=h(world.bob))).status_code == 404


async def test_errors_keep_glances_codes(api: httpx.AsyncClient, world: World) -> None:
    r = await api.get(f"{V2}/images/{uuid.uuid4()}", headers=h(world.alice))
    assert r.status_code == 404 and r.json()["error"]["code"] == 404
    r = await api.get(f"{V2}/images/{world.private_p2.id}", headers=h(world.alice))
    assert r.status_code == 404
    r = await api.get(f"{V2}/images")
    assert r.status_code == 401
    assert "X-OpenStack-Request-Id" in r.headers
    # a reader may read but not create
    assert (await api.get(f"{V2}/images", headers=h(world.rita))).status_code == 200
    r = await api.post(f"{V2}/images", headers=h(world.rita), json={})
    assert r.status_code == 403
    jsonschema.validate((await api.get(f"{V2}/images/{world.image.id}",
                                       headers=h(world.alice))).json(),
                        await served_schema(api, world.alice, "image"))
