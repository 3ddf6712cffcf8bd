"""Nova's servers on /compute/v2.1: create (the bodies OSC, Tempest and Rally send),
show/list/detail at every microversion against Tempest's schemas, filters and paging,
update, delete; 400/404/409 leave nothing changed."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from tempest.lib.api_schema.response.compute.v2_1 import servers as s21

from api.openstack.microversion import Version
from tests.api.conftest import (
    World,
    add_image,
    add_instance,
    counts,
    flavor_id,
    instance_row,
    operations_of,
    session,
)
from tests.api.net_support import make_net, make_port
from tests.api.openstack.test_compute_servers_support import (
    VERSIONS,
    C,
    h,
    schemas,
    validate,
)
from tests.api.test_metadata_documents import give_port
from vmflow.models import Instance

OSC_BODY: dict[str, Any] = {  # CLIENTS.md 3.2, `openstack server create` at 2.79
    "name": "osc-vm", "imageRef": "cirros", "flavorRef": "m1.tiny",
    "metadata": {"a": "b"}, "user_data": "I2Nsb3VkLWNvbmZpZwo=", "min_count": 1,
    "max_count": 1, "networks": "none",
    "block_device_mapping_v2": [{"uuid": "cirros", "boot_index": 0, "source_type": "image",
                                 "destination_type": "local",
                                 "delete_on_termination": True}],
}


async def test_create_as_osc_sends_it(api: httpx.AsyncClient, world: World) -> None:
    body = {**OSC_BODY, "imageRef": world.image.id,
            "accessIPv4": "1.1.1.1", "description": "from osc", "adminPass": "pw",
            "OS-DCF:diskConfig": "AUTO", "availability_zone": "nova"}
    r = await api.post(f"{C}/servers", headers=h(world.alice, "2.79"), json={"server": body})
    server = validate(s21.create_server_with_admin_pass, r)["server"]
    assert server["adminPass"] == "pw"
    assert r.headers["Location"] == server["links"][0]["href"]
    row = instance_row(server["id"])
    assert (row.name, row.image_id, row.meta, row.description, row.access_ip_v4) == \
        ("osc-vm", world.image.id, {"a": "b"}, "from osc", "1.1.1.1")
    ops = operations_of(server["id"])
    assert [o.action for o in ops] == ["create"]
    # the request id the client got is the one the instance action records
    assert ops[0].request_id == r.headers["X-OpenStack-Request-Id"]
    assert r.headers["X-Compute-Request-Id"] == ops[0].request_id
    shown = await api.get(f"{C}/servers/{server['id']}/os-instance-actions/"
                          f"{ops[0].request_id}", headers=h(world.alice))
    assert shown.json()["instanceAction"]["action"] == "create"


async def test_create_at_21_from_bdm_without_image_ref(api: httpx.AsyncClient,
                                                        world: World) -> None:
    body = {k: v for k, v in OSC_BODY.items() if k != "imageRef"}
    body.update(name="bdm-vm", networks=[])
    body["block_device_mapping_v2"] = [{**body["block_device_mapping_v2"][0],
                                        "uuid": world.image.id}]
    r = await api.post(f"{C}/servers", headers=h(world.alice, "2.1", legacy=True),
                       json={"server": body})
    server = validate(s21.create_server_with_admin_pass, r)["server"]
    assert instance_row(server["id"]).image_id == world.image.id
    assert r.headers["X-OpenStack-Nova-API-Version"] == "2.1"


async def test_create_rally_body_without_networks(api: httpx.AsyncClient,
                                                   world: World) -> None:
    r = await api.post(f"{C}/servers", headers=h(world.alice), json={"server": {
        "name": "rally-vm", "imageRef": world.image.id, "flavorRef": flavor_id("m1.tiny")}})
    validate(s21.create_server_with_admin_pass, r)


@pytest.mark.parametrize("version,change,status", [
    ("2.79", {"networks": None}, 400),  # required from 2.37: sent as absent below
    ("2.79", {"networks": "bogus"}, 400),
    ("2.36", {"networks": "auto"}, 400),  # a list before 2.37
    ("2.79", {"min_count": 2, "max_count": 2}, 400),
    ("2.79", {"block_device_mapping_v2": [{"source_type": "volume", "uuid": "x",
                                           "destination_type": "volume"}]}, 400),
    ("2.79", {"flavorRef": "no-such-flavor"}, 400),
    ("2.79", {"imageRef": "no-such-image", "block_device_mapping_v2": []}, 400),
    ("2.79", {"key_name": "no-such-key"}, 400),
    ("2.79", {"metadata": {"a": 1}}, 400),
    ("2.79", {"user_data": "not base64!"}, 400),
    ("2.1", {"description": "too early", "networks": []}, 400),
    ("2.79", {"name": ""}, 400),
])
async def test_create_refused_changes_nothing(api: httpx.AsyncClient, world: World,
                                              version: str, change: dict[str, Any],
                                              status: int) -> None:
    body = {**OSC_BODY, **change}
    body = {k: v for k, v in body.items() if v is not None}
    before = counts()
    r = await api.post(f"{C}/servers", headers=h(world.alice, version), json={"server": body})
    assert r.status_code == status, r.text
    assert "badRequest" in r.json()
    assert counts() == before


async def test_reader_may_not_create(api: httpx.AsyncClient, world: World) -> None:
    before = counts()
    r = await api.post(f"{C}/servers", headers=h(world.rita, "2.79"),
                       json={"server": OSC_BODY})
    assert r.status_code == 403 and "forbidden" in r.json()
    assert counts() == before


@pytest.fixture(scope="module")
async def networked(api: httpx.AsyncClient, world: World) -> str:
    """A server with a port (addresses, MAC, security groups in its views)."""
    inst = add_instance(world, name="networked")
    net, _ = await make_net(api, world.alice, "10.231.0.0/24", name="cs-net")
    port = await make_port(api, world.alice, net["id"])
    give_port(port["id"], inst.id)
    return inst.id


@pytest.mark.parametrize("version", VERSIONS)
async def test_views_match_tempest_schemas(api: httpx.AsyncClient, world: World,
                                           networked: str, version: str) -> None:
    """show, list, detail and update, as member and admin, against the schema Tempest
    picks for the microversion: nothing extra, nothing missing."""
    inst = add_instance(world, name=f"view-{version}", locked=True, locked_reason="why",
                        fault=None, description="d", access_ip_v6="::1")
    errored = add_instance(world, vm_state="error", name=f"err-{version}", fault="boom")
    schema = schemas(version)
    for who in (world.alice, world.admin):
        for one in (inst.id, errored.id, networked):
            r = await api.get(f"{C}/servers/{one}", headers=h(who, version))
            server = validate(schema.get_server, r)["server"]
            assert ("OS-EXT-SRV-ATTR:host" in server) == (who is world.admin)
        q = "?all_tenants=1" if who is world.admin else ""
        validate(schema.list_servers_detail,
                 await api.get(f"{C}/servers/detail{q}", headers=h(who, version)))
        validate(schema.list_servers, await api.get(f"{C}/servers", headers=h(who, version)))
        r = await api.put(f"{C}/servers/{inst.id}", headers=h(who, version),
                          json={"server": {"name": f"view-{version}"}})
        validate(schema.update_server, r)
    server = (await api.get(f"{C}/servers/{errored.id}", headers=h(world.alice, version))
              ).json()["server"]
    assert server["status"] == "ERROR" and server["fault"]["message"] == "boom"
    wired = (await api.get(f"{C}/servers/{networked}", headers=h(world.alice, version))
             ).json()["server"]
    (entry,) = wired["addresses"]["cs-net"]
    assert entry["OS-EXT-IPS:type"] == "fixed" and entry["addr"].startswith("10.231.0.")
    assert wired["security_groups"] == [{"name": "default"}]
    if Version.parse(version) >= Version(2, 47):
        assert server["flavor"]["original_name"] == "m1.tiny"
    else:
        assert server["flavor"]["id"] == inst.flavor_id


async def test_shapes_by_microversion(api: httpx.AsyncClient, world: World) -> None:
    inst = add_instance(world, name="shapes", locked=True, locked_reason="maintenance")
    url = f"{C}/servers/{inst.id}"
    old = (await api.get(url, headers=h(world.alice, "2.1"))).json()["server"]
    new = (await api.get(url, headers=h(world.alice, "2.79"))).json()["server"]
    assert "locked" not in old and new["locked"] is True
    assert new["locked_reason"] == "maintenance" and "locked_reason" not in old
    assert set(new["flavor"]) == {"original_name", "vcpus", "ram", "disk", "ephemeral",
                                  "swap", "extra_specs"}
    assert new["tags"] == [] and new["server_groups"] == []
    assert new["trusted_image_certificates"] is None and new["description"] is None
    assert new["OS-EXT-STS:vm_state"] == "active" and new["OS-EXT-STS:power_state"] == 1
    assert new["image"]["links"][0]["href"] == f"http://vmflow/compute/images/{inst.image_id}"
    admin = (await api.get(url, headers=h(world.admin, "2.79"))).json()["server"]
    assert admin["OS-EXT-SRV-ATTR:host"] == "h1"
    with session() as db:  # a host no test registers
        row = db.get(Instance, inst.id)
        assert row is not None
        row.host = "cs-never-registered"
        db.add(row)
        db.commit()
    admin = (await api.get(url, headers=h(world.admin, "2.79"))).json()["server"]
    assert admin["host_status"] == "UNKNOWN"


@pytest.mark.parametrize("bad", ["not-a-uuid", str(uuid.uuid4()), "bob"])
async def test_show_unknown_foreign_or_malformed_is_404(api: httpx.AsyncClient, world: World,
                                                        bad: str) -> None:
    if bad == "bob":
        bad = add_instance(world, owner=world.bob, name="bobs").id
    for method in ("GET", "DELETE"):
        r = await api.request(method, f"{C}/servers/{bad}", headers=h(world.alice))
        assert r.status_code == 404 and "itemNotFound" in r.json()
    r = await api.put(f"{C}/servers/{bad}", headers=h(world.alice),
                      json={"server": {"name": "x"}})
    assert r.status_code == 404


async def test_list_filters_and_paging(api: httpx.AsyncClient, world: World) -> None:
    names = [f"page-{n}" for n in range(5)]
    ids = [add_instance(world, name=n).id for n in names]
    stopped = add_instance(world, vm_state="stopped", name="page-stopped")
    bobs = add_instance(world, owner=world.bob, name="page-bob")

    async def listed(query: str, who: Any = None) -> list[str]:
        r = await api.get(f"{C}/servers/detail?{query}", headers=h(who or world.alice))
        assert r.status_code == 200, r.text
        return [s["id"] for s in r.json()["servers"]]

    assert await listed("name=^page-[0-4]$") == ids[::-1]  # newest first
    assert await listed("name=page&status=SHUTOFF") == [stopped.id]
    assert bobs.id not in await listed("name=page")
    assert bobs.id not in await listed("name=page", world.admin)  # own project only
    assert bobs.id in await listed("name=page&all_tenants=1", world.admin)
    assert await listed(f"name=page&all_tenants=1&project_id={world.bob.project_id}",
                        world.admin) == [bobs.id]
    r = await api.get(f"{C}/servers?all_tenants=1", headers=h(world.alice))
    assert r.status_code == 403
    assert await listed("name=^page-&status=BOGUS") == []
    assert await listed(f"name=^page-&image={world.image.id}&flavor={flavor_id('m1.tiny')}"
                        "&deleted=False") == [stopped.id, *ids[::-1]]
    assert await listed("name=^page-&changes-since=2999-01-01T00:00:00Z") == []

    seen: list[str] = []
    url = f"{C}/servers?name=^page-[0-4]$&limit=2"
    for _ in range(5):  # bounded
        r = await api.get(url, headers=h(world.alice))
        body = validate(s21.list_servers, r)
        seen += [s["id"] for s in body["servers"]]
        if "servers_links" not in body:
            break
        url = body["servers_links"][0]["href"].removeprefix("http://vmflow")
    assert seen == ids[::-1]
    for query in ("limit=-1", "limit=x", f"marker={uuid.uuid4()}", "changes-since=nope",
                  "name=(["):
        r = await api.get(f"{C}/servers?{query}", headers=h(world.alice))
        assert r.status_code == 400, query


async def test_update_name_description_access_ips(api: httpx.AsyncClient,
                                                  world: World) -> None:
    inst = add_instance(world, name="upd")
    url = f"{C}/servers/{inst.id}"
    r = await api.put(url, headers=h(world.alice, "2.19"), json={"server": {
        "name": "upd2", "description": "desc", "accessIPv4": "10.0.0.1",
        "accessIPv6": "fe80::1"}})
    server = validate(schemas("2.19").update_server, r)["server"]
    assert (server["name"], server["description"], server["accessIPv4"],
            server["accessIPv6"]) == ("upd2", "desc", "10.0.0.1", "fe80::1")
    assert "OS-EXT-STS:vm_state" not in server
    r = await api.put(url, headers=h(world.alice, "2.75"), json={"server": {"name": "upd3"}})
    assert validate(schemas("2.75").update_server, r)["server"]["OS-EXT-STS:vm_state"]
    row = instance_row(inst.id)
    for body, version in (({"accessIPv4": "fe80::1"}, "2.79"), ({"name": " pad"}, "2.79"),
                          ({"description": "x"}, "2.18"), ({"name": None}, "2.79"),
                          ({"name": "x" * 256}, "2.79")):
        r = await api.put(url, headers=h(world.alice, version), json={"server": body})
        assert r.status_code == 400, body
    assert instance_row(inst.id).name == row.name == "upd3"
    r = await api.put(url, headers=h(world.rita), json={"server": {"name": "reader"}})
    assert r.status_code == 403
    assert instance_row(inst.id).name == "upd3"


async def test_delete_starts_the_delete_workflow(api: httpx.AsyncClient,
                                                 world: World) -> None:
    inst = add_instance(world, name="del")
    r = await api.delete(f"{C}/servers/{inst.id}", headers=h(world.alice))
    assert r.status_code == 204 and not r.content
    ops = operations_of(inst.id)
    assert [o.action for o in ops] == ["delete"]
    assert ops[0].request_id == r.headers["X-OpenStack-Request-Id"]


async def test_delete_locked_is_409_for_members(api: httpx.AsyncClient, world: World) -> None:
    inst = add_instance(world, name="del-locked", locked=True, locked_by="owner")
    r = await api.delete(f"{C}/servers/{inst.id}", headers=h(world.alice))
    assert r.status_code == 409 and "conflictingRequest" in r.json()
    assert operations_of(inst.id) == []
    r = await api.delete(f"{C}/servers/{inst.id}", headers=h(world.rita))
    assert r.status_code == 403


async def test_osc_name_lookup_is_404_then_detail_by_name(api: httpx.AsyncClient,
                                                           world: World) -> None:
    inst = add_instance(world, name="lookup.vm")
    add_image(name="unused-lookup")
    assert (await api.get(f"{C}/servers/lookup.vm", headers=h(world.alice))).status_code == 404
    r = await api.get(f"{C}/servers/detail?name=lookup.vm", headers=h(world.alice, "2.79"))
    assert [s["id"] for s in r.json()["servers"]] == [inst.id]
