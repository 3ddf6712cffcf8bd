"""Nova's server metadata routes: codes and bodies against Tempest's schemas; a key
that is not there 404, a mismatched or bad body 400, a locked server 409 (members),
a reader 403, nothing changed by any of them."""

from __future__ import annotations

import httpx
from tempest.lib.api_schema.response.compute.v2_1 import servers as s21

from tests.api.conftest import World, add_instance, instance_row
from tests.api.openstack.test_compute_servers_support import C, h, validate


async def test_metadata_routes(api: httpx.AsyncClient, world: World) -> None:
    inst = add_instance(world, name="meta", meta={"a": "1"})
    url, hh = f"{C}/servers/{inst.id}/metadata", h(world.alice)
    body = validate(s21.list_server_metadata, await api.get(url, headers=hh))
    assert body == {"metadata": {"a": "1"}}
    r = await api.post(url, headers=hh, json={"metadata": {"b": "2"}})
    assert validate(s21.update_server_metadata, r) == {"metadata": {"a": "1", "b": "2"}}
    r = await api.put(url, headers=hh, json={"metadata": {"c": "3"}})
    assert validate(s21.set_server_metadata, r) == {"metadata": {"c": "3"}}
    r = await api.put(f"{url}/d", headers=hh, json={"meta": {"d": "4"}})
    assert validate(s21.set_show_server_metadata_item, r) == {"meta": {"d": "4"}}
    r = await api.get(f"{url}/d", headers=hh)
    assert validate(s21.set_show_server_metadata_item, r) == {"meta": {"d": "4"}}
    validate(s21.delete_server_metadata_item, await api.delete(f"{url}/d", headers=hh))
    assert instance_row(inst.id).meta == {"c": "3"}


async def test_metadata_refusals_change_nothing(api: httpx.AsyncClient, world: World) -> None:
    inst = add_instance(world, name="meta-bad", meta={"a": "1"})
    url, hh = f"{C}/servers/{inst.id}/metadata", h(world.alice)
    cases = [
        ("GET", f"{url}/nope", None, 404), ("DELETE", f"{url}/nope", None, 404),
        ("PUT", f"{url}/a", {"meta": {"b": "2"}}, 400),
        ("PUT", f"{url}/a", {"meta": {"a": "2", "b": "3"}}, 400),
        ("PUT", url, {"metadata": {"a": 1}}, 400),
        ("POST", url, {"metadata": {"k" * 256: "v"}}, 400),
        ("POST", url, {"metadata": {f"k{n}": "v" for n in range(129)}}, 400),
        ("POST", url, {"nometadata": {}}, 400),
    ]
    for method, path, body, status in cases:
        r = await api.request(method, path, headers=hh, json=body)
        assert r.status_code == status, (method, path, body, r.text)
    assert instance_row(inst.id).meta == {"a": "1"}


async def test_metadata_locked_foreign_reader(api: httpx.AsyncClient, world: World) -> None:
    locked = add_instance(world, name="meta-locked", meta={"a": "1"}, locked=True,
                          locked_by="owner")
    r = await api.post(f"{C}/servers/{locked.id}/metadata", headers=h(world.alice),
                       json={"metadata": {"b": "2"}})
    assert r.status_code == 409 and "conflictingRequest" in r.json()
    mine = add_instance(world, name="meta-reader", meta={"a": "1"})
    r = await api.put(f"{C}/servers/{mine.id}/metadata/a", headers=h(world.rita),
                      json={"meta": {"a": "2"}})
    assert r.status_code == 403
    r = await api.get(f"{C}/servers/{mine.id}/metadata", headers=h(world.bob))
    assert r.status_code == 404
    assert instance_row(locked.id).meta == instance_row(mine.id).meta == {"a": "1"}
