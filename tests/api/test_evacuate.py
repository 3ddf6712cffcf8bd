"""evacuate through the API (Nova's checks): refused with 400 while the server's host
is up (its worker heartbeats and it is not forced down), for an unknown destination,
the source itself, or a destination that cannot take it; 403 for members; 409 from
a wrong state. A refusal changes nothing: no operation, no task_state, no Migration
row, no workflow."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlmodel import select
from temporalio.client import Client
from temporalio.worker import Worker

from tests.api.conftest import World, add_instance, counts, instance_row, operations_of, session
from tests.api.test_auth import assert_error
from tests.api.test_host_states import add_host, noop, wait_state
from tests.api.test_server_actions import no_workflow, started_input
from vmflow.models import Host, Instance, Migration
from vmflow.names import hv_queue


def fresh_host() -> str:
    name = f"ev-{uuid.uuid4().hex[:8]}"
    add_host(name)
    return name


def set_host(name: str, **fields: object) -> None:
    with session() as s:
        host = s.get(Host, name)
        assert host is not None
        for k, v in fields.items():
            setattr(host, k, v)
        s.add(host)
        s.commit()


@contextlib.asynccontextmanager
async def heartbeating(api: httpx.AsyncClient, world: World, temporal: Client,
                       name: str) -> AsyncIterator[None]:
    """A worker polls the host's queue: the host is up (a real heartbeat)."""
    async with Worker(temporal, task_queue=hv_queue(name), activities=[noop]):
        assert (await wait_state(api, world, name, "up"))["state"] == "up"
        yield


def on_host(world: World, host: str | None, vm_state: str = "active") -> Instance:
    inst = add_instance(world, vm_state=vm_state)
    with session() as s:
        row = s.get(Instance, inst.id)
        assert row is not None
        row.host = host
        s.add(row)
        s.commit()
        return row


def migrations_of(instance_id: str) -> list[Migration]:
    with session() as s:
        return list(s.exec(select(Migration).where(Migration.instance_id == instance_id)))


async def evacuate(api: httpx.AsyncClient, headers: dict[str, str], sid: str,
                   body: dict[str, object] | None = None) -> httpx.Response:
    return await api.post(f"/v1/servers/{sid}/action", headers=headers,
                          json={"evacuate": body or {}})


async def assert_refused(api: httpx.AsyncClient, world: World, temporal: Client, sid: str,
                         body: dict[str, object] | None, status: int, err_type: str,
                         message: str) -> None:
    before = counts()
    was = instance_row(sid)
    err = assert_error(await evacuate(api, world.admin.h, sid, body), status, err_type)
    assert err["message"] == message
    after = instance_row(sid)
    assert (after.vm_state, after.task_state, after.host) == (was.vm_state, None, was.host)
    assert counts() == before and operations_of(sid) == [] and migrations_of(sid) == []
    assert await no_workflow(temporal, sid)


async def test_refused_while_the_source_is_up(api: httpx.AsyncClient, world: World,
                                              temporal: Client) -> None:
    source = fresh_host()
    inst = on_host(world, source)
    async with heartbeating(api, world, temporal, source):
        await assert_refused(api, world, temporal, inst.id, None, 400, "ComputeServiceInUse",
                             f"Compute service of {source} is still in use.")
        # forced down (Nova's fencing): evacuable at once, whatever the heartbeat says
        set_host(source, forced_down=True)
        r = await evacuate(api, world.admin.h, inst.id)
        assert r.status_code == 202, r.text
    wf = f"instance-{inst.id}"
    assert await started_input(temporal, wf) == {
        "instance_id": inst.id, "operation_id": r.json()["operation"]["id"], "host": None}
    assert instance_row(inst.id).task_state == "rebuilding"
    await temporal.get_workflow_handle(wf).terminate(reason="test")


async def test_a_host_without_heartbeat_may_be_evacuated(api: httpx.AsyncClient,
                                                         world: World,
                                                         temporal: Client) -> None:
    inst = on_host(world, fresh_host(), vm_state="stopped")  # never polled: down
    r = await evacuate(api, world.admin.h, inst.id)
    assert r.status_code == 202, r.text
    await temporal.get_workflow_handle(f"instance-{inst.id}").terminate(reason="test")


async def test_bad_destination_is_400(api: httpx.AsyncClient, world: World,
                                      temporal: Client) -> None:
    source, target = fresh_host(), fresh_host()
    inst = on_host(world, source, "error")
    await assert_refused(api, world, temporal, inst.id, {"host": "no-such-host"}, 400,
                         "HostNotFound", "Compute host no-such-host not found.")
    await assert_refused(api, world, temporal, inst.id, {"host": source}, 400, "SameHost",
                         "The target host can't be the same one.")
    await assert_refused(api, world, temporal, inst.id, {"host": target}, 400,
                         "HostUnavailable", f"host {target} cannot take the server: it is "
                         "down (no heartbeat from its worker)")
    async with heartbeating(api, world, temporal, target):
        set_host(target, status="disabled", disabled_reason="new DIMMs")
        await assert_refused(api, world, temporal, inst.id, {"host": target}, 400,
                             "HostUnavailable", f"host {target} cannot take the server: it "
                             "is disabled: new DIMMs")
        set_host(target, status="enabled", disabled_reason=None, forced_down=True)
        await assert_refused(api, world, temporal, inst.id, {"host": target}, 400,
                             "HostUnavailable", f"host {target} cannot take the server: it "
                             "is forced down")
        set_host(target, forced_down=False)
        r = await evacuate(api, world.admin.h, inst.id, {"host": target})
        assert r.status_code == 202, r.text
    wf = f"instance-{inst.id}"
    assert (await started_input(temporal, wf))["host"] == target
    await temporal.get_workflow_handle(wf).terminate(reason="test")


@pytest.mark.parametrize("body", [{"host": ""}, {"host": 3}, {"onSharedStorage": True},
                                  {"host": "x" * 300}, "h2"])
async def test_bad_bodies_are_400(api: httpx.AsyncClient, world: World, temporal: Client,
                                  body: object) -> None:
    inst = on_host(world, fresh_host())
    before = counts()
    r = await api.post(f"/v1/servers/{inst.id}/action", headers=world.admin.h,
                       json={"evacuate": body})
    assert_error(r, 400)
    assert counts() == before and instance_row(inst.id).task_state is None
    assert migrations_of(inst.id) == [] and await no_workflow(temporal, inst.id)


async def test_members_get_403_and_nothing_changes(api: httpx.AsyncClient, world: World,
                                                   temporal: Client) -> None:
    inst = on_host(world, fresh_host())
    before = counts()
    for who in (world.alice, world.rita):
        assert_error(await evacuate(api, who.h, inst.id), 403)
    assert counts() == before and instance_row(inst.id).task_state is None
    assert migrations_of(inst.id) == [] and await no_workflow(temporal, inst.id)


async def test_wrong_state_is_409(api: httpx.AsyncClient, world: World,
                                  temporal: Client) -> None:
    for state in ("paused", "suspended", "rescued", "building"):
        inst = on_host(world, fresh_host(), vm_state=state)
        assert_error(await evacuate(api, world.admin.h, inst.id), 409, "ActionNotAllowed")
        assert migrations_of(inst.id) == [] and await no_workflow(temporal, inst.id)
    inst = on_host(world, None, "error")  # a launch that never placed it
    assert_error(await evacuate(api, world.admin.h, inst.id), 409, "ActionNotAllowed")
    assert operations_of(inst.id) == [] and await no_workflow(temporal, inst.id)
