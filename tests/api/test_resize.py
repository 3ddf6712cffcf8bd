"""resize and migrate on the action route: what is refused with 400 (and changes
nothing: no operation, no Migration row, no workflow, the server as it was), who may
migrate (admins: 403 for members), and the destination an admin names."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlmodel import func, select
from temporalio.client import Client

from tests.api.conftest import World, add_instance, counts, flavor_id, instance_row, session
from tests.api.test_auth import assert_error
from tests.api.test_server_actions import no_workflow, started_input
from vmflow.models import Flavor, Host, Migration


def migrations() -> int:
    with session() as s:
        return s.exec(select(func.count()).select_from(Migration)).one()


def add_host(name: str) -> None:
    with session() as s:
        if s.get(Host, name) is None:
            s.add(Host(name=name, vcpus=8, ram_mb=16384, disk_gb=200))
            s.commit()


def private_flavor() -> str:
    """A private flavor no project was given access to."""
    with session() as s:
        f = s.exec(select(Flavor).where(Flavor.name == "p.hidden")).first()
        if f is None:
            f = Flavor(name="p.hidden", vcpus=2, ram_mb=1024, disk_gb=40, is_public=False)
            s.add(f)
            s.commit()
        return f.name


async def refused(api: httpx.AsyncClient, temporal: Client, headers: dict[str, str],
                  server: str, body: dict[str, Any], status: int, type_: str) -> str:
    before, moves, row = counts(), migrations(), instance_row(server)
    r = await api.post(f"/v1/servers/{server}/action", headers=headers, json=body)
    err = assert_error(r, status, type_)
    after = instance_row(server)
    assert (after.vm_state, after.task_state, after.flavor_id, after.host) == (
        row.vm_state, row.task_state, row.flavor_id, row.host)
    assert (counts(), migrations()) == (before, moves)
    assert await no_workflow(temporal, server)
    return str(err["message"])


@pytest.mark.parametrize("ref,type_", [
    ("m1.tiny", "SameFlavor"),  # the server's own
    ("no-such-flavor", "FlavorNotFound"),
    ("p.hidden", "FlavorNotFound"),  # private, no access: as if it did not exist
])
async def test_resize_to_the_same_or_an_unusable_flavor_is_400(
        api: httpx.AsyncClient, world: World, temporal: Client, ref: str, type_: str) -> None:
    private_flavor()
    inst = add_instance(world, vm_state="active")
    await refused(api, temporal, world.alice.h, inst.id, {"resize": {"flavorRef": ref}}, 400,
                  type_)


async def test_resize_to_a_smaller_root_disk_is_400(api: httpx.AsyncClient, world: World,
                                                    temporal: Client) -> None:
    inst = add_instance(world, vm_state="stopped")
    with session() as s:
        row = instance_row(inst.id)
        row.flavor_id = flavor_id("m1.small")  # 20 GB root disk
        s.add(row)
        s.commit()
    msg = await refused(api, temporal, world.alice.h, inst.id,
                        {"resize": {"flavorRef": "m1.tiny"}}, 400,
                        "FlavorDiskSmallerThanCurrent")
    assert "smaller" in msg and "20 GB" in msg


async def test_migrate_is_for_admins(api: httpx.AsyncClient, world: World,
                                     temporal: Client) -> None:
    inst = add_instance(world, vm_state="active")
    for body in ({"migrate": None}, {"migrate": {"host": "h1"}}):
        await refused(api, temporal, world.alice.h, inst.id, body, 403, "Forbidden")


async def test_migrate_to_an_unknown_or_its_own_host_is_400(
        api: httpx.AsyncClient, world: World, temporal: Client) -> None:
    add_host("h1")
    inst = add_instance(world, vm_state="active")
    msg = await refused(api, temporal, world.admin.h, inst.id, {"migrate": {"host": "nope"}},
                        400, "HostNotFound")
    assert "nope" in msg
    await refused(api, temporal, world.admin.h, inst.id, {"migrate": {"host": "h1"}}, 400,
                  "SameHost")


async def test_migrate_to_a_named_host_passes_it_to_the_workflow(
        api: httpx.AsyncClient, world: World, temporal: Client) -> None:
    add_host("h2")
    inst = add_instance(world, vm_state="stopped")
    r = await api.post(f"/v1/servers/{inst.id}/action", headers=world.admin.h,
                       json={"migrate": {"host": "h2"}})
    assert r.status_code == 202, r.text
    wf_id = f"instance-{inst.id}"
    assert await started_input(temporal, wf_id) == {
        "instance_id": inst.id, "operation_id": r.json()["operation"]["id"],
        "flavor_id": None, "host": "h2"}
    await temporal.get_workflow_handle(wf_id).terminate(reason="test")
