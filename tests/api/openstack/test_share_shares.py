"""Manila's shares at /share/v2: create, list/detail filters, show, update, delete,
export locations, instances, and the view per microversion."""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import World
from tests.api.openstack.share_support import fault, h, running_ops, url
from tests.api.test_shares import add_share, share_counts, share_row

# what python-manilaclient 6.3 reads (osc/v2/share.py list columns) and CLIENTS.md 5.2
CLIENT_FIELDS = {
    "id", "name", "size", "share_proto", "status", "is_public", "share_type_name",
    "availability_zone", "description", "share_network_id", "share_server_id", "share_type",
    "share_group_id", "host", "user_id", "project_id", "access_rules_status", "snapshot_id",
    "snapshot_support", "create_share_from_snapshot_support", "mount_snapshot_support",
    "revert_to_snapshot_support", "task_state", "source_share_group_snapshot_member_id",
    "replication_type", "has_replicas", "created_at", "metadata", "updated_at",
    "volume_type", "is_soft_deleted", "scheduled_to_be_deleted_at", "progress",
    "source_backup_id", "links"}
# what `openstack share create NFS 1 --name sh1` sends
OSC_BODY = {"size": 1, "snapshot_id": None, "name": "sh1", "description": None,
            "metadata": {}, "share_proto": "NFS", "share_network_id": None,
            "share_type": None, "is_public": False, "availability_zone": None,
            "scheduler_hints": {}}


@pytest.mark.parametrize("project_in_url", [True, False])
async def test_create_as_openstack_share_create_sends(api: httpx.AsyncClient, world: World,
                                                      project_in_url: bool) -> None:
    a = world.admin
    default = (await api.get(url(a, "/types/default"), headers=h(a))).json()["share_type"]
    body = {**OSC_BODY, "name": f"sh-{project_in_url}", "share_type": default["id"],
            "metadata": {"k": "v"}, "description": "d"}
    r = await api.post(url(world.alice, "/shares", project_in_url), headers=h(world.alice),
                       json={"share": body})
    assert r.status_code == 200, r.text
    share = r.json()["share"]
    assert set(share) == CLIENT_FIELDS - {"host", "share_server_id"}  # admin-only
    assert (share["status"], share["share_type"], share["share_type_name"]) == \
        ("creating", default["id"], "default")
    assert (share["metadata"], share["description"], share["is_public"]) == \
        ({"k": "v"}, "d", False)
    assert "export_locations" not in share and "export_location" not in share
    assert [op.action for op in running_ops(share["id"])] == ["create"]
    # an operation runs on it: delete is refused (Manila: the status forbids it)
    r = await api.delete(url(world.alice, f"/shares/{share['id']}"), headers=h(world.alice))
    assert r.status_code == 409 and fault(r.json())[0] == "conflictingRequest"


async def test_create_with_null_type_takes_the_default_and_types_by_name(
        api: httpx.AsyncClient, world: World) -> None:
    a = world.alice
    r = await api.post(url(a, "/shares"), headers=h(a, "2.5"),
                       json={"share": {**OSC_BODY, "name": "by-null"}})
    assert r.status_code == 200, r.text
    assert r.json()["share"]["share_type"] == "default"  # the name below 2.6
    r = await api.post(url(a, "/shares"), headers=h(a),
                       json={"share": {**OSC_BODY, "name": "by-name", "share_type": "default",
                                       "display_description": "dd"}})
    assert r.status_code == 200 and r.json()["share"]["description"] == "dd"


@pytest.mark.parametrize("change, status", [
    ({"share_type": "no-such-type"}, 400), ({"share_network_id": "net"}, 400),
    ({"availability_zone": "elsewhere"}, 400), ({"share_proto": "CIFS"}, 400),
    ({"size": 0}, 400), ({"is_public": "maybe"}, 400), ({"metadata": {"k": "v" * 1024}}, 400),
    ({"size": None}, 400)])
async def test_bad_create_is_400_and_changes_nothing(api: httpx.AsyncClient, world: World,
                                                     change: dict[str, object],
                                                     status: int) -> None:
    before = share_counts()
    r = await api.post(url(world.alice, "/shares"), headers=h(world.alice),
                       json={"share": {**OSC_BODY, **change}})
    assert r.status_code == status, r.text
    assert fault(r.json())[0] == "badRequest"
    assert share_counts() == before


async def test_reader_cannot_create(api: httpx.AsyncClient, world: World) -> None:
    before = share_counts()
    r = await api.post(url(world.rita, "/shares"), headers=h(world.rita),
                       json={"share": OSC_BODY})
    assert r.status_code == 403 and share_counts() == before


async def test_view_fields_follow_the_microversion(api: httpx.AsyncClient,
                                                   world: World) -> None:
    share = add_share(world.alice, name="mv")
    a = world.alice

    async def show(v: str) -> dict[str, object]:
        r = await api.get(url(a, f"/shares/{share.id}"), headers=h(a, v))
        assert r.status_code == 200, r.text
        body: dict[str, object] = r.json()["share"]
        return body
    old = await show("2.0")
    assert old["export_locations"] == ["127.0.0.1:/shares/x"]
    assert old["export_location"] == "127.0.0.1:/shares/x"
    assert "task_state" not in old and "share_type_name" not in old and "user_id" not in old
    assert "export_locations" not in await show("2.9")
    assert "access_rules_status" not in await show("2.9")
    assert "user_id" in await show("2.16")
    assert "consistency_group_id" in await show("2.30")
    assert "consistency_group_id" not in await show("2.31")
    assert "is_soft_deleted" not in await show("2.68")
    assert (await show("2.69"))["is_soft_deleted"] is False
    assert "source_backup_id" not in await show("2.79")
    assert "source_backup_id" in await show("2.80")
    admin_view = (await api.get(url(world.admin, f"/shares/{share.id}"),
                                headers=h(world.admin))).json()["share"]
    assert set(admin_view) == CLIENT_FIELDS and admin_view["host"] == "st1"


async def test_list_filters_sorting_paging(api: httpx.AsyncClient, world: World) -> None:
    a, b = world.alice, world.bob
    s1 = add_share(a, name="flt-one", size=1, meta={"env": "prod"})
    s2 = add_share(a, name="flt-two", size=3, status="error")
    pub = add_share(b, name="flt-bob-public", is_public=True)
    hidden = add_share(b, name="flt-bob-private")

    async def ids(query: str, who=a, detail: bool = True) -> list[str]:
        path = "/shares/detail" if detail else "/shares"
        r = await api.get(url(who, path) + query, headers=h(who))
        assert r.status_code == 200, r.text
        return [s["id"] for s in r.json()["shares"]]
    assert await ids("?name=flt-one") == [s1.id]
    assert set(await ids("?name~=FLT-")) == {s1.id, s2.id}
    assert await ids("?status=error&name~=flt") == [s2.id]
    assert await ids("?metadata=%7B%27env%27%3A+%27prod%27%7D") == [s1.id]
    assert await ids("?name~=flt&sort_key=size&sort_dir=asc") == [s1.id, s2.id]
    assert await ids("?name~=flt&sort_key=size&sort_dir=desc&limit=1") == [s2.id]
    assert await ids("?name~=flt&sort_key=size&sort_dir=asc&offset=1") == [s2.id]
    assert await ids("?name~=flt&export_location=127.0.0.1:/shares/x&status=available") == \
        [s1.id]
    # the name lookups of `openstack share show NAME`
    assert set(await ids("?all_tenants=1&is_public=True&name~=flt")) == {s1.id, s2.id, pub.id}
    assert await ids("?all_tenants=1&is_soft_deleted=True") == []
    # all_tenants is an admin's: ignored for members, every project's for the admin
    assert hidden.id not in await ids("?all_tenants=1", who=a)
    assert hidden.id in await ids("?all_tenants=1&name~=flt", who=world.admin)
    assert hidden.id not in await ids("?name~=flt", who=world.admin)
    summary = (await api.get(url(a, "/shares?name=flt-one"), headers=h(a))).json()["shares"]
    assert set(summary[0]) == {"id", "name", "links"}
    r = await api.get(url(a, "/shares/detail?name~=flt&with_count=true&limit=1"),
                      headers=h(a))
    assert r.json()["count"] == 2 and len(r.json()["shares"]) == 1
    for bad in ("?sort_key=nope", "?sort_dir=up", "?limit=x", "?is_public=maybe"):
        assert (await api.get(url(a, "/shares/detail") + bad, headers=h(a))).status_code == 400


async def test_show_update_and_public_shares(api: httpx.AsyncClient, world: World) -> None:
    a, b = world.alice, world.bob
    share = add_share(a, name="upd")
    assert (await api.get(url(b, f"/shares/{share.id}"), headers=h(b))).status_code == 404
    r = await api.put(url(a, f"/shares/{share.id}"), headers=h(a), json={
        "share": {"display_name": "renamed", "display_description": "dd", "is_public": True}})
    assert r.status_code == 200, r.text
    assert (r.json()["share"]["name"], r.json()["share"]["description"]) == ("renamed", "dd")
    # a public share is readable by other projects (Manila), still not changeable
    assert (await api.get(url(b, f"/shares/{share.id}"), headers=h(b))).status_code == 200
    r = await api.put(url(b, f"/shares/{share.id}"), headers=h(b),
                      json={"share": {"name": "theirs"}})
    assert r.status_code == 404
    r = await api.put(url(a, f"/shares/{share.id}"), headers=h(a),
                      json={"share": {"name": "x" * 256}})
    assert r.status_code == 400
    row = share_row(share.id)
    assert row is not None and (row.name, row.is_public) == ("renamed", True)
    r = await api.put(url(world.rita, f"/shares/{share.id}"), headers=h(world.rita),
                      json={"share": {"name": "reader"}})
    assert r.status_code == 403


async def test_delete_starts_the_operation(api: httpx.AsyncClient, world: World) -> None:
    share = add_share(world.alice, name="del")
    r = await api.delete(url(world.alice, f"/shares/{share.id}", False),
                         headers=h(world.alice))
    assert r.status_code == 202 and r.content == b""
    assert [op.action for op in running_ops(share.id)] == ["delete"]
    row = share_row(share.id)
    assert row is not None and row.status == "deleting"
    r = await api.get(url(world.alice, f"/shares/{share.id}"), headers=h(world.alice))
    assert r.json()["share"]["status"] == "deleting"


async def test_export_locations_and_instances(api: httpx.AsyncClient, world: World) -> None:
    a = world.alice
    share = add_share(a, name="exp")
    r = await api.get(url(a, f"/shares/{share.id}/export_locations"), headers=h(a))
    assert r.status_code == 200
    (loc,) = r.json()["export_locations"]
    assert (loc["path"], loc["preferred"]) == ("127.0.0.1:/shares/x", True)
    r = await api.get(url(world.admin, f"/shares/{share.id}/export_locations"),
                      headers=h(world.admin))
    (admin_loc,) = r.json()["export_locations"]
    assert {"id", "path", "preferred", "share_instance_id", "is_admin_only"} <= set(admin_loc)
    r = await api.get(url(a, f"/shares/{share.id}/export_locations/{loc['id']}"),
                      headers=h(a))
    assert r.json()["export_location"] == loc
    r = await api.get(url(a, f"/shares/{share.id}/export_locations/nope"), headers=h(a))
    assert r.status_code == 404
    r = await api.get(url(world.admin, f"/shares/{share.id}/instances"),
                      headers=h(world.admin))
    (inst,) = r.json()["share_instances"]
    assert (inst["id"], inst["share_id"]) == (admin_loc["share_instance_id"], share.id)
    r = await api.get(url(a, f"/shares/{share.id}/instances"), headers=h(a))
    assert r.status_code == 403
