"""Servers: create, show, list, delete, action history, the one-operation-at-a-time rule
(Temporal's workflow id is the mutex) and Idempotency-Key."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import httpx
import pytest
from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus

from api.app import create_app
from api.services import preempt
from tests.api.conftest import (
    World,
    add_image,
    counts,
    create_server,
    ensure_keypair,
    session,
)
from tests.api.test_auth import assert_error
from vmflow import settings
from vmflow.models import Flavor, Instance, Operation
from vmflow.names import CONTROL_QUEUE, SA_OPERATION, SA_PROJECT, SA_RESOURCE
from vmflow.processes import free_port

OK = {"name": "vm", "image": "cirros", "flavor": "m1.tiny"}


@pytest.fixture(scope="module")
async def odd_catalog(world: World) -> None:
    """Images and a flavor that must not be bootable by a member."""
    add_image("twin")
    add_image("twin")
    add_image("half-uploaded", status="queued")
    with session() as s:
        s.add(Flavor(name="secret.flavor", vcpus=1, ram_mb=128, disk_gb=1, is_public=False))
        s.commit()


async def terminate(temporal: Client, workflow_id: str) -> None:
    await temporal.get_workflow_handle(workflow_id).terminate(reason="test")


@pytest.mark.parametrize("body,type_", [
    ({**OK, "image": "no-such-image"}, "ImageNotFound"),
    ({**OK, "image": "p2-secret"}, "ImageNotFound"),  # private to another project
    ({**OK, "image": "half-uploaded"}, "ImageNotActive"),
    ({**OK, "image": "twin"}, "AmbiguousName"),
    ({**OK, "flavor": "m9.huge"}, "FlavorNotFound"),
    ({**OK, "flavor": "secret.flavor"}, "FlavorNotFound"),  # private flavor
    ({**OK, "name": ""}, "ValidationError"),
    ({**OK, "name": "   "}, "ValidationError"),
    ({**OK, "name": "x" * 300}, "ValidationError"),
    ({**OK, "name": 5}, "ValidationError"),
    ({**OK, "flavor": 1}, "ValidationError"),
    ({**OK, "metadata": {"k": 1}}, "ValidationError"),
    ({**OK, "metadata": ["k"]}, "ValidationError"),
    ({**OK, "user_data": "x" * 70000}, "ValidationError"),
    ({**OK, "user_data": "#!/bin/sh not base64"}, "ValidationError"),
    ({"name": "vm", "flavor": "m1.tiny"}, "ValidationError"),
    ({"name": "vm", "image": "cirros"}, "ValidationError"),
    ({**OK, "colour": "red"}, "ValidationError"),
    (["vm"], "ValidationError"),
    (None, "ValidationError"),
])
async def test_bad_create_is_400_and_creates_nothing(api: httpx.AsyncClient, world: World,
                                                     odd_catalog: None, body: Any,
                                                     type_: str) -> None:
    before = counts()
    r = await api.post("/v1/servers", headers=world.alice.h, json=body)
    assert_error(r, 400, type_)
    assert counts() == before


async def test_malformed_json_is_400(api: httpx.AsyncClient, world: World) -> None:
    before = counts()
    r = await api.post("/v1/servers", content=b'{"name": "vm",',
                       headers={**world.alice.h, "Content-Type": "application/json"})
    assert_error(r, 400, "InvalidJSON")
    assert counts() == before


async def test_create_starts_the_launch_workflow(api: httpx.AsyncClient, world: World,
                                                 temporal: Client) -> None:
    await ensure_keypair(api, world.alice, "k1")
    r = await api.post("/v1/servers", headers=world.alice.h,
                       json={"name": "web-1", "image": world.image.id, "flavor": "m1.small",
                             "key_name": "k1", "metadata": {"role": "web"},
                             "user_data": "IyEvYmluL3NoCg=="})
    assert r.status_code == 202, r.text
    body = r.json()
    server, op = body["server"], body["operation"]
    sid = server["id"]
    small = (await api.get("/v1/flavors/m1.small", headers=world.alice.h)).json()
    assert server["name"] == "web-1"  # surrounding whitespace: 400 (test_hostile_names.py)
    assert (server["status"], server["vm_state"], server["task_state"]) == (
        "BUILD", "building", "scheduling")
    assert (server["image_id"], server["flavor_id"]) == (world.image.id, small["id"])
    assert server["addresses"] == {} and server["locked"] is False and server["host"] is None
    assert server["project_id"] == world.alice.project_id
    assert server["metadata"] == {"role": "web"}
    assert op["workflow_id"] == f"instance-{sid}" and op["status"] == "running"

    with session() as s:
        inst = s.get(Instance, sid)
        row = s.get(Operation, op["id"])
    assert inst is not None and inst.user_id == world.alice.user_id
    assert (inst.key_name, inst.user_data) == ("k1", "IyEvYmluL3NoCg==")
    assert row is not None and (row.action, row.resource_id, row.project_id) == (
        "create", sid, world.alice.project_id)

    # visible in Temporal by its search attribute, as the Web UI would find it
    found: list[WorkflowExecution] = []
    deadline = time.monotonic() + 15
    while not found and time.monotonic() < deadline:
        found = [w async for w in temporal.list_workflows(f'VmflowResource="instance-{sid}"')]
        await asyncio.sleep(0.2)
    assert len(found) == 1
    wf = found[0]
    assert (wf.id, wf.workflow_type, wf.task_queue) == (
        f"instance-{sid}", "LaunchInstance", CONTROL_QUEUE)
    assert wf.status == WorkflowExecutionStatus.RUNNING
    assert wf.run_id == row.run_id
    sa = wf.typed_search_attributes
    assert sa.get(SA_RESOURCE) == f"instance-{sid}"
    assert sa.get(SA_PROJECT) == world.alice.project_id
    assert sa.get(SA_OPERATION) == "create"


async def test_show_and_list(api: httpx.AsyncClient, world: World) -> None:
    sid = (await create_server(api, world.alice, name="shown"))["server"]["id"]
    r = await api.get(f"/v1/servers/{sid}", headers=world.alice.h)
    assert r.status_code == 200
    shown = r.json()
    assert set(shown) >= {"id", "name", "status", "vm_state", "task_state", "host", "image_id",
                          "flavor_id", "addresses", "locked", "fault", "created_at",
                          "updated_at", "project_id"}
    assert shown["created_at"].endswith(("Z", "+00:00"))
    listed = (await api.get("/v1/servers", headers=world.alice.h)).json()["servers"]
    assert shown in listed
    assert_error(await api.get("/v1/servers/no-such-id", headers=world.alice.h), 404)


async def test_status_comes_from_the_state_table(api: httpx.AsyncClient, world: World) -> None:
    sid = (await create_server(api, world.alice, name="st"))["server"]["id"]
    with session() as s:
        inst = s.get(Instance, sid)
        assert inst is not None
        inst.vm_state, inst.task_state = "stopped", None
        s.add(inst)
        s.commit()
    r = await api.get(f"/v1/servers/{sid}", headers=world.alice.h)
    assert (r.json()["status"], r.json()["vm_state"]) == ("SHUTOFF", "stopped")


async def test_deleted_servers_are_gone(api: httpx.AsyncClient, world: World) -> None:
    sid = (await create_server(api, world.alice, name="gone"))["server"]["id"]
    with session() as s:
        inst = s.get(Instance, sid)
        assert inst is not None
        inst.vm_state = "deleted"
        s.add(inst)
        s.commit()
    for who in (world.alice, world.admin):
        assert_error(await api.get(f"/v1/servers/{sid}", headers=who.h), 404)
        listed = (await api.get("/v1/servers", headers=who.h)).json()["servers"]
        assert sid not in {s["id"] for s in listed}
    before = counts()
    assert_error(await api.delete(f"/v1/servers/{sid}", headers=world.alice.h), 404)
    assert counts() == before


async def test_operation_show_without_a_worker(api: httpx.AsyncClient, world: World) -> None:
    created = await create_server(api, world.alice, name="op")
    op_id = created["operation"]["id"]
    started = time.monotonic()
    r = await api.get(f"/v1/operations/{op_id}", headers=world.alice.h)
    # the failing status query must not hang it: one describe (5 s at most) and one
    # query (2 s) bound it, whatever the load of the machine
    assert time.monotonic() - started < 10
    assert r.status_code == 200, r.text
    op = r.json()
    assert (op["id"], op["resource_type"], op["resource_id"], op["action"], op["status"]) == (
        op_id, "instance", created["server"]["id"], "create", "running")
    assert op["step"] is None and op["progress"] is None and op["attempt"] is None
    assert op["last_error"] is None and op["finished_at"] is None
    assert op["workflow_id"] == created["operation"]["workflow_id"]
    assert_error(await api.get("/v1/operations/nope", headers=world.alice.h), 404)


async def test_second_operation_is_409_until_the_first_ends(
        api: httpx.AsyncClient, world: World, temporal: Client,
        monkeypatch: pytest.MonkeyPatch) -> None:
    created = await create_server(api, world.alice, name="busy")
    sid = created["server"]["id"]
    before = counts()
    # delete cancels the launch and waits for it; with no worker it never closes
    monkeypatch.setattr(preempt, "CANCEL_WAIT_S", 0.5)
    r = await api.delete(f"/v1/servers/{sid}", headers=world.alice.h)
    err = assert_error(r, 409, "StillCompensating")
    assert err["message"] == (f"operation {created['operation']['id']} (create) is still "
                              "compensating; retry")
    assert counts() == before  # the refused delete left no Operation row

    # the launch ends (here: terminated, as if its worker never came); the row still
    # says running, the API reports what Temporal knows
    await terminate(temporal, f"instance-{sid}")
    launch = (await api.get(f"/v1/operations/{created['operation']['id']}",
                            headers=world.alice.h)).json()
    assert launch["status"] == "failed" and launch["last_error"] == "workflow terminated"
    assert launch["finished_at"] is not None

    r = await api.delete(f"/v1/servers/{sid}", headers=world.alice.h)
    assert r.status_code == 202, r.text
    delete_op = r.json()["operation"]
    assert delete_op["workflow_id"] == f"instance-{sid}" and delete_op["status"] == "running"
    desc = await temporal.get_workflow_handle(f"instance-{sid}").describe()
    assert desc.workflow_type == "DeleteInstance"
    assert desc.typed_search_attributes.get(SA_OPERATION) == "delete"

    # a delete is not cancelled by another delete
    err = assert_error(await api.delete(f"/v1/servers/{sid}", headers=world.alice.h), 409)
    assert err["message"] == f"another operation (delete) is running on instance {sid}"

    actions = (await api.get(f"/v1/servers/{sid}/actions", headers=world.alice.h)).json()
    assert [(a["action"], a["result"]) for a in actions["actions"]] == [
        ("create", "running"), ("delete", "running")]
    first = actions["actions"][0]
    assert first["user_id"] == world.alice.user_id and first["user"] == "alice"
    assert first["operation_id"] == created["operation"]["id"]
    assert first["workflow_id"] == f"instance-{sid}" and first["request_id"]
    await terminate(temporal, f"instance-{sid}")


async def test_locked_server_refuses_member_delete(api: httpx.AsyncClient, world: World,
                                                   temporal: Client) -> None:
    sid = (await create_server(api, world.alice, name="locked"))["server"]["id"]
    await terminate(temporal, f"instance-{sid}")
    with session() as s:
        inst = s.get(Instance, sid)
        assert inst is not None
        inst.locked, inst.vm_state, inst.task_state = True, "active", None
        s.add(inst)
        s.commit()
    before = counts()
    assert_error(await api.delete(f"/v1/servers/{sid}", headers=world.alice.h), 409,
                 "InstanceLocked")
    assert counts() == before
    r = await api.delete(f"/v1/servers/{sid}", headers=world.admin.h)  # admin overrides
    assert r.status_code == 202, r.text
    await terminate(temporal, f"instance-{sid}")


async def test_idempotent_create(api: httpx.AsyncClient, world: World) -> None:
    key = {"Idempotency-Key": "create-once"}
    first = await create_server(api, world.alice, name="idem", headers=key)
    before = counts()
    again = await create_server(api, world.alice, name="idem", headers=key)
    assert again["operation"] == first["operation"]
    assert again["server"]["id"] == first["server"]["id"]
    assert counts() == before
    # concurrent repeats (a client retrying before the first answer) start nothing more
    many = await asyncio.gather(*(create_server(api, world.alice, name="idem2",
                                                headers={"Idempotency-Key": "race"})
                                  for _ in range(5)))
    assert len({m["operation"]["id"] for m in many}) == 1
    assert counts() == (before[0] + 1, before[1] + 1)
    # keys belong to a project: bob's "create-once" is his own
    bobs = await create_server(api, world.bob, name="idem", headers=key)
    assert bobs["operation"]["id"] != first["operation"]["id"]


async def test_idempotent_delete(api: httpx.AsyncClient, world: World,
                                 temporal: Client) -> None:
    sid = (await create_server(api, world.alice, name="del-idem"))["server"]["id"]
    await terminate(temporal, f"instance-{sid}")
    key = {**world.alice.h, "Idempotency-Key": "delete-once"}
    r1 = await api.delete(f"/v1/servers/{sid}", headers=key)
    assert r1.status_code == 202, r1.text
    before = counts()
    r2 = await api.delete(f"/v1/servers/{sid}", headers=key)
    assert (r2.status_code, r2.json()) == (202, r1.json())
    assert counts() == before
    # the same key for another request is refused, not replayed
    other = (await create_server(api, world.alice, name="other"))["server"]["id"]
    assert_error(await api.delete(f"/v1/servers/{other}", headers=key), 409,
                 "IdempotencyKeyReused")
    r = await api.post("/v1/servers", headers=key, json=OK)
    assert_error(r, 409, "IdempotencyKeyReused")
    await terminate(temporal, f"instance-{sid}")


async def test_temporal_down_is_503_and_creates_nothing(
        api: httpx.AsyncClient, world: World, vmflow_home: settings.Settings) -> None:
    os.environ["VMFLOW_TEMPORAL_ADDRESS"] = f"127.0.0.1:{free_port()}"  # nothing listens
    settings.get_settings.cache_clear()
    try:
        app = create_app()
        async with app.router.lifespan_context(app):
            assert app.state.temporal is None
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://down") as c:
                r = await c.get("/healthz")
                assert (r.status_code, r.json()) == (
                    200, {"status": "ok", "db": True, "temporal": False})
                before = counts()
                r = await c.post("/v1/servers", headers=world.alice.h, json=OK)
                assert_error(r, 503, "TemporalUnavailable")
                assert counts() == before
                assert (await c.get("/v1/servers", headers=world.alice.h)).status_code == 200
    finally:
        os.environ["VMFLOW_TEMPORAL_ADDRESS"] = vmflow_home.temporal_address
        settings.get_settings.cache_clear()


async def test_failed_start_leaves_no_rows(api: httpx.AsyncClient, world: World) -> None:
    """Temporal goes away after startup: the start itself fails; the rows committed
    before it are removed again."""
    app = create_app()
    async with app.router.lifespan_context(app):
        app.state.temporal = await Client.connect(f"127.0.0.1:{free_port()}", lazy=True)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gone") as c:
            before = counts()
            r = await c.post("/v1/servers", headers=world.alice.h, json=OK)
            assert_error(r, 503, "TemporalUnavailable")
            assert counts() == before
