"""Snapshots, share types with extra specs, availability zones, metadata, replicas,
limits and quota sets at /share/v2."""

from __future__ import annotations

import httpx
import pytest
from sqlmodel import select

from tests.api.conftest import World, session
from tests.api.openstack.share_support import h, running_ops, url
from tests.api.test_shares import add_share, add_snapshot, share_counts
from vmflow.models import ShareSnapshot, ShareType

SNAP_FIELDS = {"id", "share_id", "share_size", "created_at", "status", "name",
               "description", "size", "share_proto", "links", "project_id", "user_id",
               "metadata"}


async def test_snapshot_create_list_show_update_delete(api: httpx.AsyncClient,
                                                       world: World) -> None:
    a = world.alice
    share = add_share(a, name="snap-src")
    r = await api.post(url(a, "/snapshots"), headers=h(a), json={"snapshot": {
        "share_id": share.id, "force": False, "name": "sn1", "description": None,
        "metadata": {}}})
    assert r.status_code == 202, r.text
    snap = r.json()["snapshot"]
    assert set(snap) == SNAP_FIELDS and snap["status"] == "creating"
    assert [op.action for op in running_ops(snap["id"])] == ["snapshot_create"]
    r = await api.get(url(a, "/snapshots/detail?name=sn1"), headers=h(a))
    assert [s["id"] for s in r.json()["snapshots"]] == [snap["id"]]
    r = await api.get(url(a, "/snapshots?share_id=" + share.id), headers=h(a))
    assert set(r.json()["snapshots"][0]) == {"id", "name", "links"}
    r = await api.put(url(a, f"/snapshots/{snap['id']}"), headers=h(a),
                      json={"snapshot": {"display_name": "sn2", "display_description": "d"}})
    assert (r.json()["snapshot"]["name"], r.json()["snapshot"]["description"]) == ("sn2", "d")
    assert "project_id" not in (await api.get(url(a, f"/snapshots/{snap['id']}"),
                                              headers=h(a, "2.16"))).json()["snapshot"]
    # creating: the share's workflow holds it, a delete is refused
    r = await api.delete(url(a, f"/snapshots/{snap['id']}"), headers=h(a))
    assert r.status_code == 409
    done = add_snapshot(add_share(a, name="snap-src2"))
    r = await api.delete(url(a, f"/snapshots/{done.id}", False), headers=h(a))
    assert r.status_code == 202
    assert [op.action for op in running_ops(done.id)] == ["snapshot_delete"]


async def test_bad_snapshot_create_is_400(api: httpx.AsyncClient, world: World) -> None:
    a = world.alice
    share = add_share(a, name="snap-bad")
    before = share_counts()
    for body in ({"share_id": share.id, "metadata": {"k": "v"}}, {"share_id": share.id,
                 "force": "perhaps"}, {"name": "no-share"}, {"share_id": "nope"}):
        r = await api.post(url(a, "/snapshots"), headers=h(a), json={"snapshot": body})
        assert r.status_code in (400, 404), r.text
    assert share_counts() == before


@pytest.mark.parametrize("prefix", ["", "os-"])
async def test_snapshot_admin_actions(api: httpx.AsyncClient, world: World,
                                      prefix: str) -> None:
    snap = add_snapshot(add_share(world.alice, name=f"snap-adm{prefix}"), status="creating")
    path = url(world.admin, f"/snapshots/{snap.id}/action")
    r = await api.post(url(world.alice, f"/snapshots/{snap.id}/action"),
                       headers=h(world.alice), json={prefix + "reset_status": {"status": "error"}})
    assert r.status_code == 403
    r = await api.post(path, headers=h(world.admin),
                       json={prefix + "reset_status": {"status": "bogus"}})
    assert r.status_code == 400
    r = await api.post(path, headers=h(world.admin),
                       json={prefix + "reset_status": {"status": "error"}})
    assert r.status_code == 202
    with session() as s:
        row = s.get(ShareSnapshot, snap.id)
        assert row is not None and row.status == "error"
    r = await api.post(path, headers=h(world.admin), json={prefix + "force_delete": None})
    assert r.status_code == 202
    assert [op.action for op in running_ops(snap.id)] == ["snapshot_delete"]
    # the delete runs on the share: a reset is refused meanwhile
    r = await api.post(path, headers=h(world.admin),
                       json={prefix + "reset_status": {"status": "available"}})
    assert r.status_code == 409


TYPE_FIELDS = {"id", "name", "extra_specs", "required_extra_specs",
               "share_type_access:is_public", "is_default", "description"}


async def test_share_types(api: httpx.AsyncClient, world: World) -> None:
    ad, a = world.admin, world.alice
    r = await api.get(url(a, "/types/default"), headers=h(a))
    default = r.json()["share_type"]
    assert set(default) == TYPE_FIELDS and r.json()["volume_type"] == default
    assert default["required_extra_specs"] == {"driver_handles_share_servers": "False"}
    assert default["is_default"] is True
    old = (await api.get(url(a, f"/types/{default['id']}"), headers=h(a, "2.6"))).json()
    assert "os-share-type-access:is_public" in old["share_type"]
    body = {"share_type": {"name": "gold", "description": "fast", "extra_specs": {
        "driver_handles_share_servers": "False", "snapshot_support": "True"},
        "share_type_access:is_public": False}}
    r = await api.post(url(a, "/types"), headers=h(a), json=body)
    assert r.status_code == 403
    r = await api.post(url(ad, "/types"), headers=h(ad), json=body)
    assert r.status_code == 200, r.text
    gold = r.json()["share_type"]
    assert (gold["description"], gold["share_type_access:is_public"]) == ("fast", False)
    listed = (await api.get(url(ad, "/types?is_public=all"), headers=h(ad))).json()
    assert gold["id"] in [t["id"] for t in listed["share_types"]]
    assert listed["volume_types"] == listed["share_types"]
    mine = (await api.get(url(a, "/types?is_public=all"), headers=h(a))).json()
    assert gold["id"] not in [t["id"] for t in mine["share_types"]]
    assert (await api.get(url(a, f"/types/{gold['id']}"), headers=h(a))).status_code == 404
    specs = url(ad, f"/types/{gold['id']}/extra_specs")
    r = await api.post(specs, headers=h(ad), json={"extra_specs": {"k": "v"}})
    assert r.status_code == 200 and r.json() == {"extra_specs": {"k": "v"}}
    r = await api.get(specs, headers=h(ad))
    assert r.json()["extra_specs"]["k"] == "v"
    assert (await api.delete(specs + "/k", headers=h(ad))).status_code == 202
    assert (await api.delete(specs + "/k", headers=h(ad))).status_code == 404
    r = await api.delete(specs + "/driver_handles_share_servers", headers=h(ad))
    assert r.status_code == 403
    r = await api.post(specs, headers=h(ad),
                       json={"extra_specs": {"driver_handles_share_servers": "True"}})
    assert r.status_code == 400
    assert (await api.delete(url(a, f"/types/{gold['id']}"), headers=h(a))).status_code == 403
    assert (await api.delete(url(ad, f"/types/{gold['id']}"), headers=h(ad))).status_code == 202
    with session() as s:
        assert s.get(ShareType, gold["id"]) is None


@pytest.mark.parametrize("specs", [{}, {"driver_handles_share_servers": "True"},
                                   {"driver_handles_share_servers": "maybe"}])
async def test_type_create_needs_dhss_false(api: httpx.AsyncClient, world: World,
                                            specs: dict[str, str]) -> None:
    r = await api.post(url(world.admin, "/types"), headers=h(world.admin),
                       json={"volume_type": {"name": "bad-dhss", "extra_specs": specs}})
    assert r.status_code == 400, r.text
    with session() as s:
        assert s.exec(select(ShareType).where(ShareType.name == "bad-dhss")).first() is None


async def test_zones_replicas_limits_quotas(api: httpx.AsyncClient, world: World) -> None:
    a = world.alice
    for path in ("/availability-zones", "/os-availability-zone"):
        (zone,) = (await api.get(url(a, path), headers=h(a))).json()["availability_zones"]
        assert zone["name"] == "nova"
    for path in ("/share-replicas", "/share-replicas/detail?share_id=x"):
        assert (await api.get(url(a, path), headers=h(a))).json() == {"share_replicas": []}
    absolute = (await api.get(url(a, "/limits"), headers=h(a))).json()["limits"]["absolute"]
    assert {"maxTotalShares", "totalSharesUsed", "maxTotalShareGigabytes"} <= set(absolute)
    r = await api.get(url(a, f"/quota-sets/{a.project_id}"), headers=h(a))
    assert r.json()["quota_set"]["id"] == a.project_id and "shares" in r.json()["quota_set"]
    r = await api.get(url(a, f"/quota-sets/{world.bob.project_id}"), headers=h(a))
    assert r.status_code == 404


async def test_share_metadata(api: httpx.AsyncClient, world: World) -> None:
    a = world.alice
    share = add_share(a, name="meta", meta={"a": "1"})
    m = url(a, f"/shares/{share.id}/metadata")
    r = await api.post(m, headers=h(a), json={"metadata": {"b": "2"}})
    assert r.json() == {"metadata": {"a": "1", "b": "2"}}
    r = await api.put(m, headers=h(a), json={"metadata": {"c": "3"}})
    assert r.json() == {"metadata": {"c": "3"}}
    r = await api.put(m + "/d", headers=h(a), json={"meta": {"d": "4"}})
    assert r.json() == {"meta": {"d": "4"}}
    assert (await api.get(m + "/d", headers=h(a))).json() == {"meta": {"d": "4"}}
    assert (await api.put(m + "/e", headers=h(a), json={"meta": {"d": "4"}})).status_code == 400
    assert (await api.delete(m + "/d", headers=h(a))).status_code == 200
    assert (await api.get(m + "/d", headers=h(a))).status_code == 404
    assert (await api.get(m, headers=h(a))).json() == {"metadata": {"c": "3"}}
    r = await api.post(m, headers=h(a), json={"metadata": {"": "x"}})
    assert r.status_code == 400
    assert (await api.get(m, headers=h(a))).json() == {"metadata": {"c": "3"}}
