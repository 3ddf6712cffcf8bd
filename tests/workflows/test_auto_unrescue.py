"""A rescue's timer (AutoUnrescue) on test:///default with the real control worker:
it unrescues the server on behalf of the rescuer when it runs out; it does nothing
once the server was unrescued or rescued again, leaves a locked server rescued (and
says so in the action history), and waits for an operation that holds the server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import libvirt
from sqlmodel import select
from temporalio.testing import WorkflowEnvironment

from tests.workflows.conftest import HostFactory, new_delete_op, new_server, run, session
from tests.workflows.test_actions import TEST, act, new_op
from vmflow.contracts.actions import AutoUnrescueRequest, RescueRequest
from vmflow.models import Instance, Operation
from vmflow.names import CONTROL_QUEUE, auto_unrescue_workflow_id, instance_workflow_id
from vmflow.settings import Settings


def instance(s: Settings, instance_id: str) -> Instance:
    with session(s) as db_s:
        inst = db_s.get(Instance, instance_id)
        assert inst
        return inst


def auto_ops(s: Settings, rescue_op: str) -> list[Operation]:
    with session(s) as db_s:
        return list(db_s.exec(select(Operation).where(
            Operation.idempotency_key == f"auto-unrescue/{rescue_op}")))


async def rescue(env: WorkflowEnvironment, s: Settings, instance_id: str,
                 after_s: int | None) -> str:
    ref = new_op(s, instance_id, "rescue")
    await env.client.execute_workflow(
        "RescueInstance", RescueRequest(instance_id, ref.operation_id, None, after_s),
        id=instance_workflow_id(instance_id), task_queue=CONTROL_QUEUE)
    return ref.operation_id


@asynccontextmanager
async def launched(env: WorkflowEnvironment, hv_worker: HostFactory
                   ) -> AsyncIterator[tuple[Settings, str]]:
    """A server on a fresh host, deleted afterwards."""
    async with hv_worker() as s:
        ref = new_server(s)
        await run(env.client, "LaunchInstance", ref)
        yield s, ref.instance_id
        await run(env.client, "DeleteInstance", new_delete_op(s, ref.instance_id))


async def timer_result(env: WorkflowEnvironment, instance_id: str, rescue_op: str) -> str:
    handle = env.client.get_workflow_handle(auto_unrescue_workflow_id(instance_id, rescue_op))
    result: str = await asyncio.wait_for(handle.result(), 60)
    return result


async def test_the_timer_unrescues_on_behalf_of_the_rescuer(
    temporal: WorkflowEnvironment, hv_worker: HostFactory
) -> None:
    async with launched(temporal, hv_worker) as (s, iid):
        rescue_op = await rescue(temporal, s, iid, after_s=2)
        assert instance(s, iid).vm_state == "rescued"
        result = await timer_result(temporal, iid, rescue_op)
        [op] = auto_ops(s, rescue_op)
        assert result == f"unrescue started: operation {op.id}"
        await temporal.client.get_workflow_handle(instance_workflow_id(iid)).result()
        inst = instance(s, iid)
        assert (inst.vm_state, inst.task_state) == ("active", None)
        assert "rescue" not in libvirt.open(TEST).lookupByUUIDString(iid).XMLDesc(0)
        with session(s) as db_s:
            done = db_s.get(Operation, op.id)
            rescuer = db_s.get(Operation, rescue_op)
        assert done and rescuer
        assert (done.action, done.status, done.user_id) == ("unrescue", "succeeded",
                                                             rescuer.user_id)


async def test_the_timer_of_an_earlier_rescue_or_of_a_locked_server_does_nothing(
    temporal: WorkflowEnvironment, hv_worker: HostFactory
) -> None:
    async with launched(temporal, hv_worker) as (s, iid):
        # unrescued by hand before the timer ran out
        first = await rescue(temporal, s, iid, after_s=3)
        await act(temporal, s, iid, "unrescue")
        assert await timer_result(temporal, iid, first) == (
            "nothing to do: the server is active, no longer rescued")
        # unrescued and rescued again (no timer): the old timer is not this rescue's
        second = await rescue(temporal, s, iid, after_s=3)
        await act(temporal, s, iid, "unrescue")
        third = await rescue(temporal, s, iid, after_s=None)
        assert await timer_result(temporal, iid, second) == (
            "nothing to do: the server was rescued again since; that rescue's timer decides")
        assert instance(s, iid).vm_state == "rescued"
        assert auto_ops(s, first) == auto_ops(s, second) == []
        # locked: left rescued, and the action history says why
        with session(s) as db_s:
            inst = db_s.get(Instance, iid)
            assert inst
            inst.locked = True
            db_s.add(inst)
            db_s.commit()
        await temporal.client.execute_workflow(
            "AutoUnrescue", AutoUnrescueRequest(iid, third, 1),
            id=auto_unrescue_workflow_id(iid, third), task_queue=CONTROL_QUEUE)
        assert instance(s, iid).vm_state == "rescued"
        [skipped] = auto_ops(s, third)
        assert (skipped.action, skipped.status) == ("unrescue", "skipped")
        assert skipped.last_error == "skipped: the server is locked: left rescued"


async def test_the_timer_waits_for_an_operation_that_holds_the_server(
    temporal: WorkflowEnvironment, hv_worker: HostFactory
) -> None:
    async with launched(temporal, hv_worker) as (s, iid):
        rescue_op = await rescue(temporal, s, iid, after_s=None)
        # an operation holds instance-<id> (a workflow no worker picks up)
        blocker = await temporal.client.start_workflow(
            "StopInstance", new_op(s, iid, "stop"), id=instance_workflow_id(iid),
            task_queue="nobody-polls-this")
        timer = await temporal.client.start_workflow(
            "AutoUnrescue", AutoUnrescueRequest(iid, rescue_op, 1, busy_retry_s=1),
            id=auto_unrescue_workflow_id(iid, rescue_op), task_queue=CONTROL_QUEUE)
        await asyncio.sleep(4)  # the timer ran out and found the server busy, more than once
        assert auto_ops(s, rescue_op) == [] and instance(s, iid).vm_state == "rescued"
        await blocker.terminate("test over")
        result = await asyncio.wait_for(timer.result(), 60)
        [op] = auto_ops(s, rescue_op)
        assert result == f"unrescue started: operation {op.id}"
        await temporal.client.get_workflow_handle(instance_workflow_id(iid)).result()
        assert instance(s, iid).vm_state == "active"
