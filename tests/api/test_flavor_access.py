"""Private flavors and their access lists (Nova's os-flavor-access): visible and
bootable only by admins and the projects given access; only admins change the list;
bad input is a 4xx that changes nothing."""

from __future__ import annotations

from typing import Any

import httpx
from sqlmodel import select

from tests.api.conftest import World, counts, create_server, session
from tests.api.test_auth import assert_error
from vmflow.models import Flavor, FlavorAccess


async def private_flavor(api: httpx.AsyncClient, world: World, name: str,
                         is_public: bool = False) -> dict[str, Any]:
    r = await api.post("/v1/flavors", headers=world.admin.h,
                       json={"name": name, "vcpus": 1, "ram": 256, "disk": 1,
                             "is_public": is_public})
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


def access_rows(flavor_id: str) -> list[str]:
    with session() as s:
        return sorted(a.project_id for a in s.exec(
            select(FlavorAccess).where(FlavorAccess.flavor_id == flavor_id)))


async def names_seen(api: httpx.AsyncClient, h: dict[str, str]) -> set[str]:
    r = await api.get("/v1/flavors", headers=h)
    assert r.status_code == 200, r.text
    return {f["name"] for f in r.json()["flavors"]}


async def launch_refused(api: httpx.AsyncClient, h: dict[str, str], flavor: str) -> None:
    before = counts()
    r = await api.post("/v1/servers", headers=h,
                       json={"name": "fa-vm", "image": "cirros", "flavor": flavor})
    assert_error(r, 400, "FlavorNotFound")
    assert counts() == before


async def test_access_grants_sight_and_launch_to_that_project_only(api: httpx.AsyncClient,
                                                                   world: World) -> None:
    f = await private_flavor(api, world, "fa.granted")
    fid = f["id"]
    # nobody but admin sees it yet: 404 on show (by id and name), 400 on launch
    assert "fa.granted" not in await names_seen(api, world.alice.h)
    assert "fa.granted" in await names_seen(api, world.admin.h)
    for ref in (fid, "fa.granted"):
        assert_error(await api.get(f"/v1/flavors/{ref}", headers=world.alice.h), 404)
    await launch_refused(api, world.alice.h, "fa.granted")
    await launch_refused(api, world.alice.h, fid)

    # admin gives it to p1 (by name): the whole list comes back, as Nova's addTenantAccess
    r = await api.post(f"/v1/flavors/{fid}/access", headers=world.admin.h,
                       json={"project": "p1"})
    assert r.status_code == 200, r.text
    assert r.json() == {"flavor_access": [{"flavor_id": fid,
                                           "project_id": world.alice.project_id}]}
    assert access_rows(fid) == [world.alice.project_id]
    # p1's members and reader see it; p2 still does not
    assert "fa.granted" in await names_seen(api, world.rita.h)
    shown = await api.get("/v1/flavors/fa.granted", headers=world.carol.h)
    assert shown.status_code == 200 and shown.json()["id"] == fid
    assert "fa.granted" not in await names_seen(api, world.bob.h)
    assert_error(await api.get(f"/v1/flavors/{fid}", headers=world.bob.h), 404)
    await launch_refused(api, world.bob.h, "fa.granted")
    server = await create_server(api, world.alice, name="fa-vm", flavor="fa.granted")
    assert server["server"]["flavor_id"] == fid

    # the listing (by name too), then removal takes it away again
    r = await api.get("/v1/flavors/fa.granted/access", headers=world.admin.h)
    assert r.status_code == 200 and [a["project_id"] for a in r.json()["flavor_access"]] == [
        world.alice.project_id]
    r = await api.delete(f"/v1/flavors/{fid}/access/{world.alice.project_id}",
                         headers=world.admin.h)
    assert r.status_code == 204, r.text
    assert access_rows(fid) == []
    assert "fa.granted" not in await names_seen(api, world.alice.h)
    await launch_refused(api, world.alice.h, "fa.granted")
    assert_error(await api.delete(f"/v1/flavors/{fid}/access/p1", headers=world.admin.h),
                 404, "FlavorAccessNotFound")


async def test_bad_requests_change_nothing(api: httpx.AsyncClient, world: World) -> None:
    f = await private_flavor(api, world, "fa.bad")
    fid = f["id"]
    r = await api.post(f"/v1/flavors/{fid}/access", headers=world.admin.h,
                       json={"project": world.bob.project_id})
    assert r.status_code == 200, r.text
    cases: list[tuple[str, dict[str, Any], int, str | None]] = [
        (fid, {"project": "no-such-project"}, 400, "ProjectNotFound"),
        (fid, {"project": "p2"}, 409, "FlavorAccessExists"),  # duplicate, by name
        (fid, {}, 400, "ValidationError"),
        (fid, {"project": "p1", "extra": 1}, 400, "ValidationError"),
        (fid, {"project": 7}, 400, "ValidationError"),
        ("no-such-flavor", {"project": "p1"}, 404, None),
        ("m1.tiny", {"project": "p1"}, 409, "FlavorIsPublic"),
    ]
    for ref, body, code, type_ in cases:
        r = await api.post(f"/v1/flavors/{ref}/access", headers=world.admin.h, json=body)
        assert_error(r, code, type_)
        assert access_rows(fid) == [world.bob.project_id], body
    assert_error(await api.get("/v1/flavors/m1.tiny/access", headers=world.admin.h), 409,
                 "FlavorIsPublic")
    assert_error(await api.delete("/v1/flavors/m1.tiny/access/p1", headers=world.admin.h),
                 409, "FlavorIsPublic")
    assert_error(await api.delete(f"/v1/flavors/{fid}/access/nobody", headers=world.admin.h),
                 404, "FlavorAccessNotFound")
    assert access_rows(fid) == [world.bob.project_id]


async def test_only_admins_change_or_read_access(api: httpx.AsyncClient, world: World) -> None:
    f = await private_flavor(api, world, "fa.admin-only")
    fid = f["id"]
    for who in (world.alice, world.bob, world.rita):
        assert_error(await api.post(f"/v1/flavors/{fid}/access", headers=who.h,
                                    json={"project": who.project_id}), 403)
        assert_error(await api.get(f"/v1/flavors/{fid}/access", headers=who.h), 403)
    await api.post(f"/v1/flavors/{fid}/access", headers=world.admin.h, json={"project": "p2"})
    # bob now sees the flavor but may still not change who else does
    assert_error(await api.delete(f"/v1/flavors/{fid}/access/p2", headers=world.bob.h), 403)
    assert_error(await api.post(f"/v1/flavors/{fid}/access", headers=world.bob.h,
                                json={"project": "p1"}), 403)
    assert access_rows(fid) == [world.bob.project_id]


async def test_idempotent_add(api: httpx.AsyncClient, world: World) -> None:
    f = await private_flavor(api, world, "fa.idem")
    h = {**world.admin.h, "Idempotency-Key": "fa-idem-1"}
    first = await api.post(f"/v1/flavors/{f['id']}/access", headers=h, json={"project": "p1"})
    again = await api.post(f"/v1/flavors/{f['id']}/access", headers=h, json={"project": "p1"})
    assert first.status_code == again.status_code == 200, again.text
    assert first.json() == again.json()
    assert access_rows(f["id"]) == [world.alice.project_id]


async def test_delete_flavor(api: httpx.AsyncClient, world: World) -> None:
    f = await private_flavor(api, world, "fa.delete")
    fid = f["id"]
    await api.post(f"/v1/flavors/{fid}/access", headers=world.admin.h, json={"project": "p1"})
    await create_server(api, world.alice, name="fa-uses", flavor="fa.delete")
    # used by a server: refused, nothing changed
    assert_error(await api.delete(f"/v1/flavors/{fid}", headers=world.admin.h), 409,
                 "FlavorInUse")
    assert access_rows(fid) == [world.alice.project_id]
    assert_error(await api.delete(f"/v1/flavors/{fid}", headers=world.alice.h), 403)

    unused = await private_flavor(api, world, "fa.unused")
    await api.post(f"/v1/flavors/{unused['id']}/access", headers=world.admin.h,
                   json={"project": "p2"})
    assert (await api.delete("/v1/flavors/fa.unused", headers=world.admin.h)).status_code == 204
    with session() as s:
        assert s.get(Flavor, unused["id"]) is None
    assert access_rows(unused["id"]) == []
    assert_error(await api.get(f"/v1/flavors/{unused['id']}", headers=world.admin.h), 404)
    assert_error(await api.delete("/v1/flavors/fa.unused", headers=world.admin.h), 404)
