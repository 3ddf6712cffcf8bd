"""Flavors, images and hosts."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker

from tests.api.conftest import World, add_image, session
from tests.api.test_auth import assert_error
from vmflow.models import Allocation, Host
from vmflow.names import hv_queue

DEFAULT_FLAVORS = {"m1.tiny": (1, 512, 1), "m1.small": (1, 2048, 20),
                   "m1.medium": (2, 4096, 40), "m1.large": (4, 8192, 80),
                   "m1.xlarge": (8, 16384, 160), "t1.micro": (1, 256, 1)}


async def test_default_flavors(api: httpx.AsyncClient, world: World) -> None:
    r = await api.get("/v1/flavors", headers=world.rita.h)
    assert r.status_code == 200
    flavors = {f["name"]: f for f in r.json()["flavors"]}
    for name, (vcpus, ram, disk) in DEFAULT_FLAVORS.items():
        f = flavors[name]
        assert (f["vcpus"], f["ram"], f["disk"], f["is_public"]) == (vcpus, ram, disk, True)
        assert f["extra_specs"] == {}
        shown = await api.get(f"/v1/flavors/{f['id']}", headers=world.rita.h)
        assert shown.json() == f


async def test_admin_creates_flavors_members_cannot(api: httpx.AsyncClient,
                                                    world: World) -> None:
    body = {"name": "c1.private", "vcpus": 2, "ram": 1024, "disk": 5, "is_public": False,
            "extra_specs": {"trait:HW_CPU_X86_AVX2": "required"}}
    assert_error(await api.post("/v1/flavors", headers=world.alice.h, json=body), 403)
    r = await api.post("/v1/flavors", headers=world.admin.h, json=body)
    assert r.status_code == 201, r.text
    created = r.json()
    assert (created["ram"], created["disk"], created["extra_specs"]) == (
        1024, 5, {"trait:HW_CPU_X86_AVX2": "required"})
    # private: invisible to members, visible to admin
    member_names = {f["name"] for f in
                    (await api.get("/v1/flavors", headers=world.alice.h)).json()["flavors"]}
    admin_names = {f["name"] for f in
                   (await api.get("/v1/flavors", headers=world.admin.h)).json()["flavors"]}
    assert "c1.private" not in member_names and "c1.private" in admin_names
    assert_error(await api.get(f"/v1/flavors/{created['id']}", headers=world.alice.h), 404)
    assert_error(await api.post("/v1/flavors", headers=world.admin.h, json=body), 409,
                 "FlavorExists")


async def test_bad_flavor_bodies(api: httpx.AsyncClient, world: World) -> None:
    for body in ({"name": "x", "vcpus": 0, "ram": 512, "disk": 1},
                 {"name": "x", "vcpus": 1, "ram": "512", "disk": 1},
                 {"name": "x", "vcpus": 1, "ram": 512},
                 {"name": "", "vcpus": 1, "ram": 512, "disk": 1}):
        assert_error(await api.post("/v1/flavors", headers=world.admin.h, json=body), 400,
                     "ValidationError")


async def test_idempotent_flavor_create(api: httpx.AsyncClient, world: World) -> None:
    h = {**world.admin.h, "Idempotency-Key": "flavor-once"}
    body = {"name": "c1.idem", "vcpus": 1, "ram": 256, "disk": 1}
    first = await api.post("/v1/flavors", headers=h, json=body)
    again = await api.post("/v1/flavors", headers=h, json=body)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()


async def test_image_visibility(api: httpx.AsyncClient, world: World) -> None:
    community = add_image(f"community-{uuid.uuid4()}", visibility="community",
                          owner=world.bob.project_id)
    deleted = add_image(f"deleted-{uuid.uuid4()}", status="deleted")

    async def ids(who: dict[str, str]) -> set[str]:
        r = await api.get("/v1/images", headers=who)
        assert r.status_code == 200
        return {i["id"] for i in r.json()["images"]}

    alice, bob, admin = await ids(world.alice.h), await ids(world.bob.h), await ids(world.admin.h)
    assert world.image.id in alice and community.id in alice
    assert world.private_p2.id not in alice and world.private_p2.id in bob
    assert world.private_p2.id in admin
    assert deleted.id not in alice | bob | admin

    assert_error(await api.get(f"/v1/images/{world.private_p2.id}", headers=world.alice.h),
                 404, "NotFound")
    r = await api.get(f"/v1/images/{world.image.id}", headers=world.alice.h)
    assert r.status_code == 200
    image = r.json()
    assert (image["name"], image["status"], image["visibility"], image["disk_format"]) == (
        "cirros", "active", "public", "qcow2")
    assert set(image) >= {"id", "container_format", "size", "checksum", "owner", "properties",
                          "created_at"}


def add_host(name: str) -> None:
    with session() as s:
        s.add(Host(name=name, hostname=f"{name}.example", vcpus=8, ram_mb=16384, disk_gb=100,
                   traits=["HW_CPU_X86_AVX2"]))
        s.flush()
        for i, (vcpus, ram, disk) in enumerate([(1, 512, 1), (2, 2048, 20)]):
            s.add(Allocation(instance_id=f"{name}-vm{i}", host=name, vcpus=vcpus, ram_mb=ram,
                             disk_gb=disk))
        s.commit()


@activity.defn(name="test.noop")
async def noop() -> None:
    return None


async def test_hosts_show_usage_and_liveness(api: httpx.AsyncClient, world: World,
                                             temporal: Client) -> None:
    up, down = f"up-{uuid.uuid4().hex[:8]}", f"down-{uuid.uuid4().hex[:8]}"
    add_host(up)
    add_host(down)
    for who in (world.alice, world.rita):
        assert_error(await api.get("/v1/hosts", headers=who.h), 403, "Forbidden")

    async with Worker(temporal, task_queue=hv_queue(up), activities=[noop]):
        deadline = time.monotonic() + 20
        while True:
            r = await api.get("/v1/hosts", headers=world.admin.h)
            assert r.status_code == 200
            hosts = {h["name"]: h for h in r.json()["hosts"]}
            if hosts[up]["alive"] or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
    assert hosts[up]["alive"] is True
    assert hosts[down]["alive"] is False
    h = hosts[up]
    assert (h["hostname"], h["vcpus"], h["ram_mb"], h["disk_gb"], h["traits"]) == (
        f"{up}.example", 8, 16384, 100, ["HW_CPU_X86_AVX2"])
    assert h["used"] == {"vcpus": 3, "ram_mb": 2560, "disk_gb": 21} and h["instances"] == 2
    shown = await api.get(f"/v1/hosts/{down}", headers=world.admin.h)
    assert shown.status_code == 200 and shown.json()["used"]["vcpus"] == 3
    assert_error(await api.get("/v1/hosts/nope", headers=world.admin.h), 404)
