"""GET /image/v2/images: Glance's filters, sorting and marker paging (`next`)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import jsonschema

from tests.api.conftest import Caller, World
from tests.api.openstack.image_support import (
    GOOD_RAW,
    V2,
    create,
    h,
    patch,
    served_schema,
    upload,
)


async def listed(api: httpx.AsyncClient, who: Caller, query: str = "") -> dict[str, Any]:
    r = await api.get(f"{V2}/images{query}", headers=h(who))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    jsonschema.validate(body, await served_schema(api, who, "images"))
    return body


def ids(body: dict[str, Any]) -> list[str]:
    return [i["id"] for i in body["images"]]


async def test_filters(api: httpx.AsyncClient, world: World) -> None:
    tag = f"t-{uuid.uuid4().hex[:8]}"
    small = await create(api, world.alice, name=f"{tag}-small", tags=[tag, "small"])
    assert (await upload(api, world.alice, small["id"], GOOD_RAW[:4096])).status_code == 204
    big = await create(api, world.alice, name=f"{tag}-big", tags=[tag], flavour="x")
    assert (await upload(api, world.alice, big["id"], GOOD_RAW)).status_code == 204
    queued = await create(api, world.alice, name=f"{tag}-queued", tags=[tag],
                          visibility="private")
    hidden = await create(api, world.alice, name=f"{tag}-hidden", tags=[tag], os_hidden=True)
    body = await listed(api, world.alice, f"?tag={tag}")
    assert set(ids(body)) == {small["id"], big["id"], queued["id"]}  # hidden: not by default
    assert body["first"] == f"/v2/images?tag={tag}" and body["schema"] == "/v2/schemas/images"
    assert ids(await listed(api, world.alice, f"?tag={tag}&os_hidden=true")) == [hidden["id"]]
    assert ids(await listed(api, world.alice, f"?tag={tag}&tag=small")) == [small["id"]]
    assert ids(await listed(api, world.alice, f"?name={tag}-big")) == [big["id"]]
    assert ids(await listed(api, world.alice, f"?tag={tag}&flavour=x")) == [big["id"]]
    assert set(ids(await listed(api, world.alice, f"?id=in:{small['id']},{big['id']}"))) == {
        small["id"], big["id"]}
    assert ids(await listed(api, world.alice, f"?tag={tag}&status=queued")) == [queued["id"]]
    assert ids(await listed(api, world.alice, f"?tag={tag}&visibility=private")) == [
        queued["id"]]
    assert ids(await listed(api, world.alice, f"?tag={tag}&size_min=5000")) == [big["id"]]
    assert ids(await listed(api, world.alice, f"?tag={tag}&size_max=5000")) == [small["id"]]
    assert ids(await listed(api, world.alice, f"?tag={tag}&size=4096")) == [small["id"]]
    assert ids(await listed(api, world.alice, f"?tag={tag}&owner={world.bob.project_id}")
               ) == []
    assert ids(await listed(api, world.bob, f"?tag={tag}")) == []  # shared, not with bob
    # sorting: sort_key/sort_dir and sort=key:dir; default newest first
    assert ids(await listed(api, world.alice, f"?tag={tag}")) == [
        queued["id"], big["id"], small["id"]]
    assert ids(await listed(api, world.alice, f"?tag={tag}&sort_key=size&sort_dir=desc")
               ) == [big["id"], small["id"], queued["id"]]
    assert ids(await listed(api, world.alice, f"?tag={tag}&sort=name:asc")) == [
        big["id"], queued["id"], small["id"]]
    for bad in ("?sort_key=owner", "?sort_dir=up", "?sort=name&sort_key=id", "?limit=x",
                "?limit=-1", "?visibility=everyone", "?member_status=maybe",
                "?os_hidden=perhaps", f"?marker={uuid.uuid4()}", "?changes-since=2020"):
        r = await api.get(f"{V2}/images{bad}", headers=h(world.alice))
        assert r.status_code == 400, (bad, r.text)


async def test_paging_follows_next(api: httpx.AsyncClient, world: World) -> None:
    tag = f"p-{uuid.uuid4().hex[:8]}"
    made = [(await create(api, world.bob, name=f"{tag}-{n}", tags=[tag]))["id"]
            for n in range(5)]
    seen: list[str] = []
    url: str | None = f"/v2/images?tag={tag}&limit=2&sort_key=name&sort_dir=asc"
    for _ in range(5):  # bounded: 3 pages expected
        if url is None:
            break
        body = await listed(api, world.bob, url.removeprefix("/v2/images"))
        assert len(body["images"]) <= 2
        seen += ids(body)
        url = body.get("next")
    assert seen == made and url is None


async def test_visibility_and_member_status(api: httpx.AsyncClient, world: World) -> None:
    tag = f"v-{uuid.uuid4().hex[:8]}"
    community = await create(api, world.bob, tags=[tag], visibility="community")
    shared = await create(api, world.bob, tags=[tag])
    r = await api.post(f"{V2}/images/{shared['id']}/members", headers=h(world.bob),
                       json={"member": world.alice.project_id})
    assert r.status_code == 200, r.text
    # alice: community only when asked for, the share only once accepted
    assert ids(await listed(api, world.alice, f"?tag={tag}")) == []
    assert ids(await listed(api, world.alice, f"?tag={tag}&visibility=community")) == [
        community["id"]]
    assert ids(await listed(api, world.alice, f"?tag={tag}&visibility=all")) == [
        community["id"]]
    assert ids(await listed(api, world.alice,
                            f"?tag={tag}&visibility=shared&member_status=pending")) == [
        shared["id"]]
    r = await api.put(f"{V2}/images/{shared['id']}/members/{world.alice.project_id}",
                      headers=h(world.alice), json={"status": "accepted"})
    assert r.status_code == 200, r.text
    assert ids(await listed(api, world.alice, f"?tag={tag}")) == [shared["id"]]
    # the owner sees its own community image in the default list
    assert set(ids(await listed(api, world.bob, f"?tag={tag}"))) == {
        community["id"], shared["id"]}
    r = await patch(api, world.bob, community["id"],
                    [{"op": "replace", "path": "/os_hidden", "value": True}])
    assert r.status_code == 200
    assert ids(await listed(api, world.bob, f"?tag={tag}")) == [shared["id"]]
