"""shelve, shelveOffload and unshelve on the action route, beyond the state-table
matrix (tests/api/test_server_actions.py, which covers every 409 and the workflow each
starts): bad bodies are 400 and change nothing, shelveOffload and a host on unshelve
are for admins only (403), an unknown host is 400, a host for a server that is still
on one is 409, and nobody can forge the shelve marker on a snapshot."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from temporalio.client import Client

from tests.api.conftest import World, add_instance, counts, instance_row, operations_of
from tests.api.test_auth import assert_error
from tests.api.test_server_actions import ensure_host, no_workflow

ACTION = "/v1/servers/{}/action"


def unchanged(inst_id: str, vm_state: str, before: tuple[int, int]) -> None:
    after = instance_row(inst_id)
    assert (after.vm_state, after.task_state) == (vm_state, None)
    assert counts() == before and operations_of(inst_id) == []


@pytest.mark.parametrize("body", [
    {"shelve": {"offload": True}},
    {"shelve": "now"},
    {"shelveOffload": {"host": "h1"}},
    {"unshelve": {"host": 5}},
    {"unshelve": {"host": ""}},
    {"unshelve": {"availability_zone": "nova", "host": "h1"}},
    {"unshelve": ["h1"]},
])
async def test_bad_bodies_are_400_and_change_nothing(
        api: httpx.AsyncClient, world: World, temporal: Client, body: dict[str, Any]) -> None:
    inst = add_instance(world, vm_state="shelved_offloaded")
    before = counts()
    r = await api.post(ACTION.format(inst.id), headers=world.admin.h, json=body)
    assert_error(r, 400, "ValidationError")
    unchanged(inst.id, "shelved_offloaded", before)
    assert await no_workflow(temporal, inst.id)


async def test_shelve_offload_is_for_admins(api: httpx.AsyncClient, world: World,
                                            temporal: Client) -> None:
    inst = add_instance(world, vm_state="shelved")
    before = counts()
    r = await api.post(ACTION.format(inst.id), headers=world.alice.h,
                       json={"shelveOffload": None})
    assert_error(r, 403)
    unchanged(inst.id, "shelved", before)
    assert await no_workflow(temporal, inst.id)


async def test_a_host_on_unshelve_is_for_admins(api: httpx.AsyncClient, world: World,
                                                temporal: Client) -> None:
    ensure_host("h1")
    inst = add_instance(world, vm_state="shelved_offloaded")
    before = counts()
    r = await api.post(ACTION.format(inst.id), headers=world.alice.h,
                       json={"unshelve": {"host": "h1"}})
    assert_error(r, 403)
    unchanged(inst.id, "shelved_offloaded", before)
    assert await no_workflow(temporal, inst.id)


async def test_an_unknown_host_is_400(api: httpx.AsyncClient, world: World,
                                      temporal: Client) -> None:
    inst = add_instance(world, vm_state="shelved_offloaded")
    before = counts()
    r = await api.post(ACTION.format(inst.id), headers=world.admin.h,
                       json={"unshelve": {"host": "no-such-host"}})
    err = assert_error(r, 400, "HostNotFound")
    assert "no-such-host" in err["message"]
    unchanged(inst.id, "shelved_offloaded", before)
    assert await no_workflow(temporal, inst.id)


async def test_a_host_for_a_server_still_on_one_is_409(api: httpx.AsyncClient, world: World,
                                                       temporal: Client) -> None:
    """Nova 2.91: only an offloaded server can be sent to a host."""
    ensure_host("h1")
    inst = add_instance(world, vm_state="shelved")
    before = counts()
    r = await api.post(ACTION.format(inst.id), headers=world.admin.h,
                       json={"unshelve": {"host": "h1"}})
    err = assert_error(r, 409, "ActionNotAllowed")
    assert "allowed from: shelved_offloaded" in err["message"]
    unchanged(inst.id, "shelved", before)
    assert await no_workflow(temporal, inst.id)


async def test_a_member_unshelves_without_a_host(api: httpx.AsyncClient, world: World,
                                                 temporal: Client) -> None:
    inst = add_instance(world, vm_state="shelved_offloaded")
    r = await api.post(ACTION.format(inst.id), headers=world.alice.h,
                       json={"unshelve": None})
    assert r.status_code == 202, r.text
    assert [op.action for op in operations_of(inst.id)] == ["unshelve"]
    assert instance_row(inst.id).task_state == "unshelving"
    await temporal.get_workflow_handle(f"instance-{inst.id}").terminate(reason="test")


async def test_the_shelve_marker_cannot_be_forged(api: httpx.AsyncClient,
                                                  world: World) -> None:
    inst = add_instance(world, vm_state="active")
    before = counts()
    r = await api.post(ACTION.format(inst.id), headers=world.alice.h, json={
        "createImage": {"name": "fake", "metadata": {"shelve_image": "true"}}})
    assert_error(r, 400)
    unchanged(inst.id, "active", before)
