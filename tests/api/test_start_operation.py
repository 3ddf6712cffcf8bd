"""vmflow.operations.start_operation as the API shows it: the accepted operation is on
the resource from its 202 on, a start that fails leaves the resource as it was, and a
request right after another operation ended waits for that workflow to close instead
of answering 409 (createImage as much as any other action)."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from sqlmodel import select
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy

from api.app import create_app
from tests.api.conftest import (
    World,
    add_instance,
    instance_row,
    operations_of,
    session,
)
from tests.api.test_auth import assert_error
from tests.api.test_server_actions import BODIES
from tests.api.test_shares import add_share, ops_of, share_counts, share_row
from vmflow.models import Image, Operation, now
from vmflow.names import CONTROL_QUEUE, operation_attributes
from vmflow.operations import CLOSING_GRACE_S
from vmflow.processes import free_port


async def action(api: httpx.AsyncClient, world: World, sid: str, name: str) -> httpx.Response:
    return await api.post(f"/v1/servers/{sid}/action", headers=world.alice.h, json=BODIES[name])


async def hold(temporal: Client, workflow_id: str, project_id: str) -> None:
    """A workflow on the resource's id that no Operation row knows (started by hand,
    e.g. from the Temporal UI): the API's guards pass, Temporal refuses the start."""
    await temporal.start_workflow(
        "HeldByTest", id=workflow_id, task_queue=CONTROL_QUEUE,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        search_attributes=operation_attributes(workflow_id, project_id, "held-by-test"))


# --- shown from the 202 on ---------------------------------------------------------------

@pytest.mark.parametrize("name,task_state,status", [
    ("reboot-hard", "rebooting_hard", "HARD_REBOOT"),
    ("reboot-soft", "rebooting", "REBOOT"),
    ("rebuild", "rebuilding", "REBUILD"),
    ("stop", "powering-off", "ACTIVE"),
    ("snapshot", "image_snapshot", "ACTIVE"),
])
async def test_get_right_after_the_202_shows_the_operation(
        api: httpx.AsyncClient, world: World, temporal: Client, name: str, task_state: str,
        status: str) -> None:
    """A client polling until ACTIVE (openstackclient --wait, Tempest's waiters) must not
    return before a hard reboot has begun."""
    inst = add_instance(world, vm_state="active")
    r = await action(api, world, inst.id, name)
    assert r.status_code == 202, r.text
    shown = (await api.get(f"/v1/servers/{inst.id}", headers=world.alice.h)).json()
    assert (shown["status"], shown["task_state"]) == (status, task_state)
    await temporal.get_workflow_handle(f"instance-{inst.id}").terminate(reason="test")


async def test_delete_shows_deleting_over_any_task_state(
        api: httpx.AsyncClient, world: World, temporal: Client) -> None:
    """delete preempts: its claim does not wait for the task_state to clear."""
    inst = add_instance(world, vm_state="active", task_state="powering-off")  # left behind
    r = await api.delete(f"/v1/servers/{inst.id}", headers=world.alice.h)
    assert r.status_code == 202, r.text
    assert instance_row(inst.id).task_state == "deleting"
    await temporal.get_workflow_handle(f"instance-{inst.id}").terminate(reason="test")


# --- a start that fails changes nothing ---------------------------------------------

@pytest.mark.parametrize("name", ["reboot-hard", "snapshot"])
async def test_refused_start_leaves_the_task_state_as_it_was(
        api: httpx.AsyncClient, world: World, temporal: Client, name: str) -> None:
    inst = add_instance(world, vm_state="active")
    await hold(temporal, f"instance-{inst.id}", inst.project_id)
    with session() as s:
        images = len(s.exec(select(Image)).all())
    r = await action(api, world, inst.id, name)
    err = assert_error(r, 409, "Conflict")
    assert err["message"] == f"another operation (held-by-test) is running on instance {inst.id}"
    after = instance_row(inst.id)
    assert (after.vm_state, after.task_state) == ("active", None)
    assert operations_of(inst.id) == []
    with session() as s:
        assert len(s.exec(select(Image)).all()) == images  # the snapshot's image went too
    shown = (await api.get(f"/v1/servers/{inst.id}", headers=world.alice.h)).json()
    assert (shown["status"], shown["task_state"]) == ("ACTIVE", None)
    await temporal.get_workflow_handle(f"instance-{inst.id}").terminate(reason="test")


async def test_temporal_gone_leaves_the_task_state_as_it_was(
        api: httpx.AsyncClient, world: World) -> None:
    inst = add_instance(world, vm_state="active")
    app = create_app()
    async with app.router.lifespan_context(app):
        app.state.temporal = await Client.connect(f"127.0.0.1:{free_port()}", lazy=True)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gone") as c:
            r = await c.post(f"/v1/servers/{inst.id}/action", headers=world.alice.h,
                             json={"reboot": {"type": "HARD"}})
            assert_error(r, 503, "TemporalUnavailable")
    assert instance_row(inst.id).task_state is None
    assert operations_of(inst.id) == []


async def test_refused_share_start_gives_the_status_back(
        api: httpx.AsyncClient, world: World, temporal: Client) -> None:
    share = add_share(world.alice, size=2)
    await hold(temporal, f"share-{share.id}", share.project_id)
    before = share_counts()
    r = await api.post(f"/v1/shares/{share.id}/action", headers=world.alice.h,
                       json={"extend": {"new_size": 3}})
    assert_error(r, 409, "Conflict")
    assert (share_row(share.id) or share).status == "available"
    assert share_counts() == before and ops_of(share.id) == []
    await temporal.get_workflow_handle(f"share-{share.id}").terminate(reason="test")


# --- the previous workflow only closing ------------------------------------------------

def finish_like_end_action(instance_id: str, op_id: str) -> None:
    """What the workflow's last activity commits before the workflow itself closes."""
    with session() as s:
        op, inst = s.get(Operation, op_id), instance_row(instance_id)
        assert op is not None
        op.status, op.finished_at = "succeeded", now()
        inst.task_state = None
        s.add_all([op, inst])
        s.commit()


@pytest.mark.parametrize("name", ["snapshot", "backup", "reboot-hard"])
async def test_right_after_an_action_ends_the_next_waits_instead_of_409(
        api: httpx.AsyncClient, world: World, temporal: Client, name: str) -> None:
    """createImage/createBackup used to answer 409 here, while every other action
    waited for the previous workflow to close."""
    inst = add_instance(world, vm_state="active")
    first = await action(api, world, inst.id, "reboot-soft")
    assert first.status_code == 202, first.text
    finish_like_end_action(inst.id, first.json()["operation"]["id"])
    previous = temporal.get_workflow_handle(f"instance-{inst.id}")

    async def close_soon() -> None:
        await asyncio.sleep(0.5)
        await previous.terminate(reason="closing")

    closing = asyncio.create_task(close_soon())
    started = time.monotonic()
    r = await action(api, world, inst.id, name)
    await closing
    assert r.status_code == 202, r.text
    assert 0.4 < time.monotonic() - started < CLOSING_GRACE_S  # it waited for the close
    desc = await temporal.get_workflow_handle(f"instance-{inst.id}").describe()
    ops = operations_of(inst.id)
    assert [(o.action, o.status) for o in ops] == [("reboot-soft", "succeeded"), (name, "running")]
    assert (ops[1].id, ops[1].run_id) == (r.json()["operation"]["id"], desc.run_id)
    await temporal.get_workflow_handle(f"instance-{inst.id}").terminate(reason="test")


async def test_a_previous_operation_still_running_is_409_at_once(
        api: httpx.AsyncClient, world: World, temporal: Client) -> None:
    """The retry is only for a workflow whose operation has finished."""
    inst = add_instance(world, vm_state="active")
    assert (await action(api, world, inst.id, "reboot-soft")).status_code == 202
    with session() as s:  # a task_state cleared by hand: only Temporal refuses now
        row = instance_row(inst.id)
        row.task_state = None
        s.add(row)
        s.commit()
    started = time.monotonic()
    err = assert_error(await action(api, world, inst.id, "snapshot"), 409, "Conflict")
    assert time.monotonic() - started < 1.0
    assert "(reboot-soft)" in err["message"]
    await temporal.get_workflow_handle(f"instance-{inst.id}").terminate(reason="test")
