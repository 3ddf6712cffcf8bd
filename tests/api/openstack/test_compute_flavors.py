"""Nova's flavors through the compute facade: views at each microversion checked
against Tempest's schemas, create as OSC sends it, extra specs, access lists, filters
and paging, and the refusals (400 with nothing made, 403 for members)."""

from __future__ import annotations

import httpx
import pytest
from sqlmodel import select

from tests.api.conftest import World, session
from tests.api.openstack.nova_support import C, check, fault, nova
from vmflow.models import Flavor

VIEWS = [("2.1", "v2_1.flavors"), ("2.54", "v2_1.flavors"), ("2.55", "v2_55.flavors"),
         ("2.60", "v2_55.flavors"),
         ("2.61", "v2_61.flavors"), ("2.75", "v2_61.flavors"), ("2.79", "v2_61.flavors")]


def osc_body(flavor_name: str, **extra: object) -> dict[str, object]:
    """What `openstack flavor create --vcpus 1 --ram 256 --disk 1 NAME` sends."""
    return {"flavor": {"id": None, "name": flavor_name, "vcpus": 1, "ram": 256, "disk": 1,
                       "swap": 0, "OS-FLV-EXT-DATA:ephemeral": 0,
                       "os-flavor-access:is_public": True, **extra}}


def flavor_count() -> int:
    with session() as s:
        return len(list(s.exec(select(Flavor))))


@pytest.mark.parametrize(("version", "module"), VIEWS)
async def test_views_match_tempest_schemas(api: httpx.AsyncClient, world: World,
                                           version: str, module: str) -> None:
    h = nova(world.alice, version)
    body = check(await api.get(f"{C}/flavors", headers=h), module, "list_flavors")
    assert {"m1.tiny", "m1.small"} <= {f["name"] for f in body["flavors"]}
    detail = check(await api.get(f"{C}/flavors/detail", headers=h), module,
                   "list_flavors_details")
    tiny = next(f for f in detail["flavors"] if f["name"] == "m1.tiny")
    assert (tiny["ram"], tiny["vcpus"], tiny["disk"]) == (512, 1, 1)
    assert ("description" in tiny) == (version >= "2.55")
    assert ("extra_specs" in tiny) == (version >= "2.61")
    assert tiny["swap"] == (0 if version >= "2.75" else "")
    shown = check(await api.get(f"{C}/flavors/{tiny['id']}", headers=h), module,
                  "create_update_get_flavor_details")
    assert shown["flavor"] == tiny
    assert shown["flavor"]["links"][0]["href"].endswith(f"/compute/v2.1/flavors/{tiny['id']}")


async def test_a_name_is_not_an_id(api: httpx.AsyncClient, world: World) -> None:
    """OSC looks up GET /flavors/m1.tiny first and needs a 404 to search by name."""
    fault(await api.get(f"{C}/flavors/m1.tiny", headers=nova(world.alice)), 404)


async def test_create_as_osc_then_extra_specs(api: httpx.AsyncClient, world: World) -> None:
    h = nova(world.admin, "2.61")
    r = await api.post(f"{C}/flavors", headers=h, json=osc_body("f.osc"))
    made = check(r, "v2_61.flavors", "create_update_get_flavor_details")["flavor"]
    assert made["id"] and made["os-flavor-access:is_public"] and made["extra_specs"] == {}
    fid = made["id"]
    specs = f"{C}/flavors/{fid}/os-extra_specs"
    r = await api.post(specs, headers=h, json={"extra_specs": {"hw:cpu_policy": "shared",
                                                               "k": 1}})
    assert check(r, "v2_1.flavors_extra_specs", "set_get_flavor_extra_specs") == {
        "extra_specs": {"hw:cpu_policy": "shared", "k": "1"}}
    listed = check(await api.get(specs, headers=nova(world.alice)), "v2_1.flavors_extra_specs",
                   "set_get_flavor_extra_specs")
    assert listed["extra_specs"] == {"hw:cpu_policy": "shared", "k": "1"}
    one = check(await api.get(f"{specs}/k", headers=nova(world.alice)),
                "v2_1.flavors_extra_specs", "set_get_flavor_extra_specs_key")
    assert one == {"k": "1"}
    assert check(await api.put(f"{specs}/k", headers=h, json={"k": "2"}),
                 "v2_1.flavors_extra_specs", "set_get_flavor_extra_specs_key") == {"k": "2"}
    fault(await api.put(f"{specs}/k", headers=h, json={"other": "2"}), 400)
    check(await api.delete(f"{specs}/k", headers=h), "v2_1.flavors_extra_specs",
          "unset_flavor_extra_specs")
    fault(await api.get(f"{specs}/k", headers=h), 404)
    fault(await api.delete(f"{specs}/k", headers=h), 404)
    fault(await api.post(specs, headers=h, json={"extra_specs": {"bad/key": "v"}}), 400)
    shown = (await api.get(f"{C}/flavors/{fid}", headers=h)).json()["flavor"]
    assert shown["extra_specs"] == {"hw:cpu_policy": "shared"}
    # members read extra specs but may not change them; readers may not either
    fault(await api.post(specs, headers=nova(world.alice), json={"extra_specs": {"a": "b"}}),
          403)
    fault(await api.delete(f"{specs}/hw:cpu_policy", headers=nova(world.rita)), 403)
    # delete: 202, then gone
    check(await api.delete(f"{C}/flavors/{fid}", headers=h), "v2_61.flavors", "delete_flavor")
    fault(await api.get(f"{C}/flavors/{fid}", headers=h), 404)


async def test_create_with_id_and_description(api: httpx.AsyncClient, world: World) -> None:
    h = nova(world.admin, "2.55")
    body = osc_body("f.desc", id="f-desc-1", description="for tests")
    made = check(await api.post(f"{C}/flavors", headers=h, json=body), "v2_55.flavors",
                 "create_update_get_flavor_details")["flavor"]
    assert (made["id"], made["description"]) == ("f-desc-1", "for tests")
    fault(await api.post(f"{C}/flavors", headers=h, json=osc_body("f.other", id="f-desc-1")),
          409)
    fault(await api.post(f"{C}/flavors", headers=h, json=osc_body("f.desc")), 409)
    r = await api.put(f"{C}/flavors/f-desc-1", headers=h, json={"flavor": {"description": "x"}})
    updated = check(r, "v2_55.flavors", "create_update_get_flavor_details")["flavor"]
    assert updated["description"] == "x"
    r = await api.put(f"{C}/flavors/f-desc-1", headers=nova(world.admin, "2.54"),
                      json={"flavor": {"description": "y"}})
    fault(r, 405)


@pytest.mark.parametrize("bad", [
    {"swap": 1024}, {"OS-FLV-EXT-DATA:ephemeral": 1}, {"rxtx_factor": 2.0}, {"ram": 0},
    {"vcpus": "many"}, {"name": " padded "}, {"id": "has/slash"}, {"name": ""},
])
async def test_bad_create_is_400_and_makes_nothing(api: httpx.AsyncClient, world: World,
                                                    bad: dict[str, object]) -> None:
    before = flavor_count()
    fault(await api.post(f"{C}/flavors", headers=nova(world.admin, "2.61"),
                         json=osc_body("f.bad", **bad)), 400)
    assert flavor_count() == before


async def test_description_below_255_is_400(api: httpx.AsyncClient, world: World) -> None:
    before = flavor_count()
    fault(await api.post(f"{C}/flavors", headers=nova(world.admin, "2.1"),
                         json=osc_body("f.early", description="d")), 400)
    assert flavor_count() == before


async def test_members_and_readers_may_not_create(api: httpx.AsyncClient, world: World) -> None:
    before = flavor_count()
    fault(await api.post(f"{C}/flavors", headers=nova(world.alice), json=osc_body("f.m")), 403)
    fault(await api.post(f"{C}/flavors", headers=nova(world.rita), json=osc_body("f.r")), 403)
    assert flavor_count() == before


async def test_filters_sorting_and_paging(api: httpx.AsyncClient, world: World) -> None:
    h = nova(world.alice, "2.61")
    big = (await api.get(f"{C}/flavors/detail?minRam=4096&minDisk=40", headers=h)).json()
    assert {f["name"] for f in big["flavors"]} >= {"m1.medium", "m1.large", "m1.xlarge"}
    assert all(f["ram"] >= 4096 and f["disk"] >= 40 for f in big["flavors"])
    by_ram = (await api.get(f"{C}/flavors/detail?sort_key=memory_mb&sort_dir=desc",
                            headers=h)).json()["flavors"]
    assert [f["ram"] for f in by_ram] == sorted((f["ram"] for f in by_ram), reverse=True)
    r = await api.get(f"{C}/flavors?limit=2", headers=h)
    first = check(r, "v2_61.flavors", "list_flavors")
    assert len(first["flavors"]) == 2 and first["flavors_links"][0]["rel"] == "next"
    r = await api.get(f"{C}/flavors?limit=2&marker={first['flavors'][-1]['id']}", headers=h)
    second = check(r, "v2_61.flavors", "list_flavors")
    assert not {f["id"] for f in first["flavors"]} & {f["id"] for f in second["flavors"]}
    fault(await api.get(f"{C}/flavors?marker=no-such-flavor", headers=h), 400)
    fault(await api.get(f"{C}/flavors?limit=-1", headers=h), 400)
    fault(await api.get(f"{C}/flavors?sort_key=colour", headers=h), 400)
    fault(await api.get(f"{C}/flavors/detail?minRam=lots", headers=h), 400)


async def test_private_flavor_access(api: httpx.AsyncClient, world: World) -> None:
    h = nova(world.admin, "2.61")
    body = osc_body("f.private", **{"os-flavor-access:is_public": False})
    fid = (await api.post(f"{C}/flavors", headers=h, json=body)).json()["flavor"]["id"]
    # admins list public ones by default; is_public=None shows all, false the private
    default = (await api.get(f"{C}/flavors", headers=h)).json()["flavors"]
    assert fid not in {f["id"] for f in default}
    for value in ("None", "false"):
        listed = (await api.get(f"{C}/flavors?is_public={value}", headers=h)).json()
        assert fid in {f["id"] for f in listed["flavors"]}
    fault(await api.get(f"{C}/flavors?is_public=perhaps", headers=h), 400)
    fault(await api.get(f"{C}/flavors/{fid}", headers=nova(world.alice)), 404)
    access = f"{C}/flavors/{fid}/os-flavor-access"
    assert check(await api.get(access, headers=h), "v2_1.flavors_access",
                 "add_remove_list_flavor_access") == {"flavor_access": []}
    add = {"addTenantAccess": {"tenant": world.alice.project_id}}
    r = await api.post(f"{C}/flavors/{fid}/action", headers=h, json=add)
    assert check(r, "v2_1.flavors_access", "add_remove_list_flavor_access") == {
        "flavor_access": [{"flavor_id": fid, "tenant_id": world.alice.project_id}]}
    fault(await api.post(f"{C}/flavors/{fid}/action", headers=h, json=add), 409)
    # now alice's project sees it (whatever is_public she sends), bob's does not
    seen = (await api.get(f"{C}/flavors?is_public=false", headers=nova(world.alice))).json()
    assert fid in {f["id"] for f in seen["flavors"]}
    fault(await api.get(f"{C}/flavors/{fid}", headers=nova(world.bob)), 404)
    fault(await api.get(access, headers=nova(world.alice)), 403)
    fault(await api.post(f"{C}/flavors/{fid}/action", headers=nova(world.alice), json=add), 403)
    remove = {"removeTenantAccess": {"tenant": world.alice.project_id}}
    r = await api.post(f"{C}/flavors/{fid}/action", headers=h, json=remove)
    assert check(r, "v2_1.flavors_access", "add_remove_list_flavor_access") == {
        "flavor_access": []}
    fault(await api.post(f"{C}/flavors/{fid}/action", headers=h, json=remove), 404)
    fault(await api.post(f"{C}/flavors/{fid}/action", headers=h, json={"grant": {}}), 400)
    tiny = (await api.get(f"{C}/flavors", headers=h)).json()["flavors"][0]["id"]
    fault(await api.get(f"{C}/flavors/{tiny}/os-flavor-access", headers=h), 404)
