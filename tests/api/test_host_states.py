"""Host states through the API (Nova's os-services): admin PUT /v1/hosts/{name}
{status, disabled_reason, forced_down}, its validation, and what GET shows."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker

from tests.api.conftest import World, session
from tests.api.test_auth import assert_error
from vmflow.models import Host
from vmflow.names import hv_queue


def add_host(name: str) -> None:
    with session() as s:
        s.add(Host(name=name, hostname=f"{name}.example", vcpus=4, ram_mb=8192, disk_gb=50,
                   libvirt_uri=f"qemu+ssh://{name}.example/system"))
        s.commit()


def row(name: str) -> Host:
    with session() as s:
        host = s.get(Host, name)
        assert host is not None
        return host


def fresh_name() -> str:
    return f"hs-{uuid.uuid4().hex[:8]}"


async def put(api: httpx.AsyncClient, world: World, name: str,
              body: dict[str, Any]) -> httpx.Response:
    return await api.put(f"/v1/hosts/{name}", headers=world.admin.h, json=body)


async def test_get_shows_state_status_and_libvirt_uri(api: httpx.AsyncClient,
                                                      world: World) -> None:
    name = fresh_name()
    add_host(name)
    h = (await api.get(f"/v1/hosts/{name}", headers=world.admin.h)).json()
    assert (h["status"], h["disabled_reason"], h["forced_down"]) == ("enabled", None, False)
    assert (h["state"], h["alive"], h["last_seen"]) == ("down", False, None)  # never polled
    assert h["libvirt_uri"] == f"qemu+ssh://{name}.example/system"
    listed = {x["name"]: x for x in (await api.get("/v1/hosts", headers=world.admin.h))
              .json()["hosts"]}
    assert listed[name] == h


async def test_disable_with_reason_then_enable_clears_it(api: httpx.AsyncClient,
                                                         world: World) -> None:
    name = fresh_name()
    add_host(name)
    r = await put(api, world, name, {"status": "disabled", "disabled_reason": " new DIMMs "})
    assert r.status_code == 200
    assert (r.json()["status"], r.json()["disabled_reason"]) == ("disabled", "new DIMMs")
    first = row(name)
    assert (first.status, first.disabled_reason, first.updated_at is not None) == (
        "disabled", "new DIMMs", True)
    # the same request again: same answer, nothing written (updated_at kept)
    again = await put(api, world, name, {"status": "disabled", "disabled_reason": "new DIMMs"})
    assert again.status_code == 200 and again.json() == r.json()
    assert row(name).updated_at == first.updated_at
    # disabling without a reason leaves none (Nova), enabling clears it
    r = await put(api, world, name, {"status": "disabled"})
    assert (r.json()["status"], r.json()["disabled_reason"]) == ("disabled", None)
    await put(api, world, name, {"status": "disabled", "disabled_reason": "again"})
    r = await put(api, world, name, {"status": "enabled"})
    assert (r.json()["status"], r.json()["disabled_reason"]) == ("enabled", None)
    # forced_down alone leaves the status as it is
    r = await put(api, world, name, {"forced_down": True})
    assert (r.json()["status"], r.json()["forced_down"]) == ("enabled", True)


async def test_bad_bodies_are_400_and_change_nothing(api: httpx.AsyncClient,
                                                     world: World) -> None:
    name = fresh_name()
    add_host(name)
    await put(api, world, name, {"status": "disabled", "disabled_reason": "keep me"})
    before = row(name)
    for body in ({}, {"disabled_reason": "why"}, {"status": "enabled", "disabled_reason": "x"},
                 {"status": "off"}, {"status": "disabled", "disabled_reason": ""},
                 {"status": "disabled", "disabled_reason": "x" * 256},
                 {"forced_down": "yes"}, {"forced_down": 1}, {"status": None},
                 {"status": "enabled", "color": "blue"}):
        assert_error(await put(api, world, name, body), 400)
    r = await api.put(f"/v1/hosts/{name}", headers={**world.admin.h,
                                                     "Content-Type": "application/json"},
                      content=b"{not json")
    assert_error(r, 400)
    after = row(name)
    assert (after.status, after.disabled_reason, after.forced_down, after.updated_at) == (
        before.status, before.disabled_reason, before.forced_down, before.updated_at)


async def test_only_admins_and_only_known_hosts(api: httpx.AsyncClient, world: World) -> None:
    name = fresh_name()
    add_host(name)
    for who in (world.alice, world.rita):
        assert_error(await api.put(f"/v1/hosts/{name}", headers=who.h,
                                   json={"status": "disabled"}), 403)
        assert_error(await api.get(f"/v1/hosts/{name}", headers=who.h), 403)
    assert row(name).status == "enabled"
    assert_error(await put(api, world, "no-such-host", {"status": "disabled"}), 404)


async def wait_state(api: httpx.AsyncClient, world: World, name: str,
                     want: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        h = (await api.get(f"/v1/hosts/{name}", headers=world.admin.h)).json()
        if h["state"] == want or time.monotonic() > deadline:
            return h
        await asyncio.sleep(0.5)


@activity.defn(name="test.host_states.noop")
async def noop() -> None:
    return None


async def test_forced_down_is_down_whatever_the_heartbeat(api: httpx.AsyncClient, world: World,
                                                          temporal: Client) -> None:
    name = fresh_name()
    add_host(name)
    async with Worker(temporal, task_queue=hv_queue(name), activities=[noop]):
        h = await wait_state(api, world, name, "up")
        assert (h["state"], h["alive"]) == ("up", True) and h["last_seen"] is not None
        r = await put(api, world, name, {"forced_down": True})
        assert (r.json()["state"], r.json()["alive"], r.json()["forced_down"]) == (
            "down", False, True)
        assert r.json()["last_seen"] is not None  # the worker still polls: the operator sees it
        r = await put(api, world, name, {"forced_down": False})
        assert (r.json()["state"], r.json()["alive"]) == ("up", True)
