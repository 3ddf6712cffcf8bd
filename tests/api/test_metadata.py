"""Server metadata: get/set/delete, Nova's limits, the lock, scoping, Idempotency-Key."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.conftest import World, add_instance, counts, instance_row
from tests.api.test_auth import assert_error


def path(sid: str, key: str | None = None) -> str:
    return f"/v1/servers/{sid}/metadata" + (f"/{key}" if key is not None else "")


# (method, key or None for the whole set, body) of every route that changes metadata
CHANGES: list[tuple[str, str | None, Any]] = [
    ("PUT", None, {"metadata": {}}), ("POST", None, {"metadata": {}}),
    ("PUT", "a", {"meta": {"a": "2"}}), ("DELETE", "a", None)]


async def send(api: httpx.AsyncClient, method: str, sid: str, key: str | None, body: Any,
               headers: dict[str, str]) -> httpx.Response:
    return await api.request(method, path(sid, key), headers=headers, json=body)


async def test_metadata_crud(api: httpx.AsyncClient, world: World) -> None:
    inst = add_instance(world, meta={"role": "web"})
    h = world.alice.h
    assert (await api.get(path(inst.id), headers=h)).json() == {"metadata": {"role": "web"}}

    r = await api.post(path(inst.id), headers=h, json={"metadata": {"tier": "1", "role": "db"}})
    assert (r.status_code, r.json()) == (200, {"metadata": {"role": "db", "tier": "1"}})
    r = await api.put(path(inst.id), headers=h, json={"metadata": {"only": "this"}})
    assert (r.status_code, r.json()) == (200, {"metadata": {"only": "this"}})

    r = await api.put(path(inst.id, "colour"), headers=h, json={"meta": {"colour": "blue"}})
    assert (r.status_code, r.json()) == (200, {"meta": {"colour": "blue"}})
    r = await api.get(path(inst.id, "colour"), headers=h)
    assert (r.status_code, r.json()) == (200, {"meta": {"colour": "blue"}})
    # a key may hold "/" (sent as %2F) and be empty-valued
    r = await api.put(path(inst.id, "a%2Fb"), headers=h, json={"meta": {"a/b": ""}})
    assert r.status_code == 200, r.text
    assert (await api.get(path(inst.id, "a%2Fb"), headers=h)).json() == {"meta": {"a/b": ""}}

    r = await api.delete(path(inst.id, "only"), headers=h)
    assert r.status_code == 204 and r.content == b""
    assert_error(await api.delete(path(inst.id, "only"), headers=h), 404, "NotFound")
    assert_error(await api.get(path(inst.id, "only"), headers=h), 404, "NotFound")
    assert instance_row(inst.id).meta == {"colour": "blue", "a/b": ""}
    shown = (await api.get(f"/v1/servers/{inst.id}", headers=h)).json()
    assert shown["metadata"] == {"colour": "blue", "a/b": ""}
    # metadata is no instance action (Nova records none)
    actions = (await api.get(f"/v1/servers/{inst.id}/actions", headers=h)).json()
    assert actions["actions"] == []


TOO_MANY = {f"k{i}": "v" for i in range(129)}


@pytest.mark.parametrize("method,key,body", [
    ("put", None, {"metadata": {"": "v"}}),
    ("put", None, {"metadata": {"k" * 256: "v"}}),
    ("put", None, {"metadata": {"k": "v" * 256}}),
    ("put", None, {"metadata": {"k": 1}}),
    ("put", None, {"metadata": {"k": None}}),
    ("put", None, {"metadata": TOO_MANY}),
    ("put", None, {"metadata": ["k"]}),
    ("put", None, {"meta": {"k": "v"}}),
    ("put", None, {}),
    ("post", None, {"metadata": TOO_MANY}),
    ("post", None, {"metadata": {f"n{i}": "v" for i in range(127)}}),  # 2 + 127 > 128
    ("post", None, {"metadata": {"k": "v"}, "extra": 1}),
    ("put", "k", {"meta": {"other": "v"}}),
    ("put", "k", {"meta": {"k": "v", "k2": "v"}}),
    ("put", "k", {"meta": {}}),
    ("put", "k", {"meta": {"k": "v" * 256}}),
    ("put", "k", {"metadata": {"k": "v"}}),
    ("put", "k" * 256, {"meta": {"k" * 256: "v"}}),
])
async def test_bad_metadata_is_400_and_changes_nothing(api: httpx.AsyncClient, world: World,
                                                       method: str, key: str | None,
                                                       body: Any) -> None:
    inst = add_instance(world, meta={"a": "1", "b": "2"})
    before = counts()
    r = await send(api, method.upper(), inst.id, key, body, world.alice.h)
    assert_error(r, 400)
    assert instance_row(inst.id).meta == {"a": "1", "b": "2"}
    assert counts() == before


async def test_limits_are_inclusive(api: httpx.AsyncClient, world: World) -> None:
    inst = add_instance(world)
    full = {f"k{i:03}": "v" * 255 for i in range(127)} | {"x" * 255: ""}
    r = await api.put(path(inst.id), headers=world.alice.h, json={"metadata": full})
    assert r.status_code == 200, r.text
    assert len(instance_row(inst.id).meta) == 128
    r = await api.post(path(inst.id), headers=world.alice.h, json={"metadata": {"k000": "new"}})
    assert r.status_code == 200, r.text  # replacing a key does not add one
    assert_error(await api.put(path(inst.id, "one-more"), headers=world.alice.h,
                               json={"meta": {"one-more": "v"}}), 400, "MetadataLimitExceeded")


async def test_metadata_honours_the_lock(api: httpx.AsyncClient, world: World) -> None:
    inst = add_instance(world, locked=True, locked_by="owner", meta={"a": "1"})
    for method, key, body in CHANGES:
        r = await send(api, method, inst.id, key, body, world.carol.h)
        assert_error(r, 409, "InstanceLocked")
    assert (await api.get(path(inst.id), headers=world.carol.h)).status_code == 200
    assert instance_row(inst.id).meta == {"a": "1"}
    r = await api.put(path(inst.id, "a"), headers=world.admin.h, json={"meta": {"a": "2"}})
    assert r.status_code == 200, r.text
    assert instance_row(inst.id).meta == {"a": "2"}


async def test_metadata_scoping_and_roles(api: httpx.AsyncClient, world: World) -> None:
    inst = add_instance(world, meta={"a": "1"})
    for method, key, body in [("GET", None, None), ("GET", "a", None), *CHANGES]:
        r = await send(api, method, inst.id, key, body, world.bob.h)
        assert_error(r, 404, "NotFound")
    gone = add_instance(world, vm_state="deleted")
    assert_error(await api.get(path(gone.id), headers=world.alice.h), 404)
    assert (await api.get(path(inst.id), headers=world.rita.h)).status_code == 200
    before = counts()
    for method, key, body in CHANGES:
        r = await send(api, method, inst.id, key, body, world.rita.h)
        assert_error(r, 403, "Forbidden")
    assert instance_row(inst.id).meta == {"a": "1"} and counts() == before


async def test_metadata_idempotency_key(api: httpx.AsyncClient, world: World) -> None:
    inst = add_instance(world, meta={"a": "1", "b": "2"})
    h = {**world.alice.h, "Idempotency-Key": "drop-a"}
    assert (await api.delete(path(inst.id, "a"), headers=h)).status_code == 204
    assert (await api.delete(path(inst.id, "a"), headers=h)).status_code == 204  # replayed
    assert instance_row(inst.id).meta == {"b": "2"}
    h = {**world.alice.h, "Idempotency-Key": "merge-c"}
    r1 = await api.post(path(inst.id), headers=h, json={"metadata": {"c": "3"}})
    r2 = await api.post(path(inst.id), headers=h, json={"metadata": {"c": "3"}})
    assert r1.json() == r2.json() == {"metadata": {"b": "2", "c": "3"}}
