"""No Operation row is left `running` after its workflow closed, however it closed:
cancelled before its first step, during a host step or during compensation (the
workflow finishes its own row), or terminated and timed out (it runs no more code:
the ledger reconciler settles the row from Temporal's final status). Real Temporal,
the real control worker, hosts on test:///default; shares on a storage host nobody
serves."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import timedelta

import libvirt
import pytest
from sqlmodel import select
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.workflows.conftest import (
    HostFactory,
    hosts_down,
    new_delete_op,
    new_server,
    run,
    session,
)
from tests.workflows.share_rows import new_op as new_share_op
from tests.workflows.share_rows import new_share, op_row, share_row
from tests.workflows.test_actions import new_op, state
from vmflow.contracts.actions import RebootRequest
from vmflow.contracts.instances import OperationRef
from vmflow.contracts.reconcile import ReconcileLedgerRequest, ReconcileLedgerResult
from vmflow.contracts.shares import ShareOp
from vmflow.models import Instance, Operation
from vmflow.names import CONTROL_QUEUE, instance_workflow_id, share_workflow_id
from vmflow.settings import Settings
from workflows.registry import ALL as WORKFLOWS

CANCELLED = "the operation was cancelled"


@pytest.fixture
def test_driver() -> Iterator[None]:
    """test:///default keeps its domains while a connection is open: this one keeps
    them while a test stops and restarts its host's worker."""
    conn = libvirt.open("test:///default")
    yield
    conn.close()


def reboot(ref: OperationRef) -> RebootRequest:
    return RebootRequest(ref.instance_id, ref.operation_id, True)


def row(s: Settings, op_id: str) -> Operation:
    with session(s) as db_s:
        op = db_s.get(Operation, op_id)
        assert op is not None
        return op


def set_task_state(s: Settings, instance_id: str, task_state: str) -> None:
    """What the API does with the 202 of an action: the task_state shows at once."""
    with session(s) as db_s:
        inst = db_s.get(Instance, instance_id)
        assert inst is not None
        inst.task_state = task_state
        db_s.add(inst)
        db_s.commit()


def started(s: Settings, op_id: str, handle: WorkflowHandle[object, object]) -> None:
    """What the API records once the workflow started: its run id."""
    with session(s) as db_s:
        op = db_s.get(Operation, op_id)
        assert op is not None
        op.run_id = handle.result_run_id
        db_s.add(op)
        db_s.commit()


async def pending_step(handle: WorkflowHandle[object, object], activity: str) -> None:
    """Until the workflow waits for `activity` (a host step nobody picks up)."""
    for _ in range(300):
        desc = await handle.describe()
        if any(p.activity_type.name == activity
               for p in desc.raw_description.pending_activities):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the workflow never reached {activity}")


async def ends_failed(handle: WorkflowHandle[object, object]) -> str:
    with pytest.raises(WorkflowFailureError) as exc:
        await handle.result()
    return str(getattr(exc.value.cause, "message", exc.value.cause))


async def reconcile(client: Client, wf_settings: Settings) -> ReconcileLedgerResult:
    """A full run (rows are checked only then), with no grace; no host is asked (the
    rows are judged from Temporal alone)."""
    with hosts_down(wf_settings):
        result: ReconcileLedgerResult = await client.execute_workflow(
            "ReconcileLedger", ReconcileLedgerRequest([], 0),
            id=f"reconcile-rows-{uuid.uuid4().hex[:8]}", task_queue=CONTROL_QUEUE,
            result_type=ReconcileLedgerResult)
    return result


async def test_cancelled_before_its_first_step(temporal: WorkflowEnvironment,
                                              hv_worker: HostFactory) -> None:
    """The reported defect: DELETE cancelled a reboot that had not reached its first
    step. Here the cancel is in Temporal before any worker saw the workflow: its queue
    is polled only after the cancel, so the cancel lands on the very first await."""
    client = temporal.client
    async with hv_worker() as s:
        ref = new_server(s)
        await run(client, "LaunchInstance", ref)
        iid = ref.instance_id
        op = new_op(s, iid, "reboot-hard")
        set_task_state(s, iid, "rebooting_hard")
        queue = f"oprows-{uuid.uuid4().hex[:8]}"  # activities still go to `control`
        handle = await client.start_workflow("RebootInstance", reboot(op),
                                             id=instance_workflow_id(iid), task_queue=queue)
        await handle.cancel()
        async with Worker(client, task_queue=queue, workflows=WORKFLOWS):
            assert await ends_failed(handle) == CANCELLED
        done = row(s, op.operation_id)
        assert (done.status, done.last_error) == ("compensated", CANCELLED)
        assert done.finished_at is not None
        assert state(s, iid) == ("active", None, "running")  # nothing was done to it
        # the action can be asked again: nothing holds the instance
        again = new_op(s, iid, "reboot-hard")
        await client.execute_workflow("RebootInstance", reboot(again),
                                      id=instance_workflow_id(iid), task_queue=CONTROL_QUEUE)
        assert row(s, again.operation_id).status == "succeeded"


async def test_an_action_that_ended_before_it_began_never_begins(
        temporal: WorkflowEnvironment, hv_worker: HostFactory) -> None:
    """begin_action running late (after the cancel already finished the row) must not
    set a task_state nobody would clear."""
    async with hv_worker() as s:
        ref = new_server(s)
        await run(temporal.client, "LaunchInstance", ref)
        op = new_op(s, ref.instance_id, "reboot-hard")
        with session(s) as db_s:
            done = db_s.get(Operation, op.operation_id)
            assert done is not None
            done.status, done.last_error = "compensated", CANCELLED
            db_s.add(done)
            db_s.commit()
        with pytest.raises(WorkflowFailureError) as exc:
            await temporal.client.execute_workflow(
                "RebootInstance", reboot(op), id=instance_workflow_id(ref.instance_id),
                task_queue=CONTROL_QUEUE)
        assert "already ended" in str(exc.value.cause)
        assert state(s, ref.instance_id) == ("active", None, "running")
        assert row(s, op.operation_id).status == "compensated"  # left as it was


async def test_cancelled_during_a_host_step(temporal: WorkflowEnvironment,
                                           hv_worker: HostFactory, test_driver: None) -> None:
    """The host's worker is down: the power-off waits in its queue when the cancel
    comes; compensation asks the host for the real state, which it gives once its
    worker is back, and the row ends compensated on the state the instance had."""
    client = temporal.client
    async with hv_worker() as s:
        ref = new_server(s)
        await run(client, "LaunchInstance", ref)
    iid, host = ref.instance_id, s.host
    op = new_op(s, iid, "reboot-hard")
    handle = await client.start_workflow("RebootInstance", reboot(op),
                                         id=instance_workflow_id(iid), task_queue=CONTROL_QUEUE)
    await pending_step(handle, "host.power_off")
    await handle.cancel()
    await pending_step(handle, "host.observe")  # compensating: the real state is asked
    assert row(s, op.operation_id).status == "running"  # the workflow still owns it
    async with hv_worker(host):
        assert await ends_failed(handle) == CANCELLED
        assert state(s, iid) == ("active", None, "running")
    done = row(s, op.operation_id)
    assert (done.status, done.last_error) == ("compensated", CANCELLED)


async def test_cancelled_during_compensation(temporal: WorkflowEnvironment,
                                             wf_settings: Settings,
                                             control_worker: None) -> None:
    """A create whose storage host never answers fails, and while its undo waits to
    be picked up, the cancel comes: the undo still runs to its end (here: not picked
    up either) and the row ends with what the compensation found."""
    client, s = temporal.client, wf_settings
    host = f"dead{uuid.uuid4().hex[:8]}"
    share_id = new_share(s, host)
    op_id = new_share_op(s, share_id, "create")
    handle = await client.start_workflow("CreateShare", ShareOp(share_id, op_id, host, 1),
                                         id=share_workflow_id(share_id),
                                         task_queue=CONTROL_QUEUE)
    for _ in range(300):
        if (await handle.query("status")).get("step") == "compensating":
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the create never compensated")
    await handle.cancel()
    cause = await ends_failed(handle)
    assert f"storage host {host} did not pick up" in cause
    done = op_row(s, op_id)
    assert done.status == "failed" and done.last_error == cause
    assert "deleting the share retries it" in cause  # the undo ran, and said so
    share = share_row(s, share_id)
    assert share and (share.status, share.fault) == ("error", cause)


async def test_a_cancelled_delete_says_a_retry_is_needed(
        temporal: WorkflowEnvironment, hv_worker: HostFactory) -> None:
    """DeleteInstance has nothing to undo: cancelled mid-way it ends as a failed
    delete does (ERROR, the row failed with the reason), never running."""
    client = temporal.client
    async with hv_worker() as s:
        ref = new_server(s)
        await run(client, "LaunchInstance", ref)
    delete = new_delete_op(s, ref.instance_id)
    handle = await client.start_workflow("DeleteInstance", delete,
                                         id=instance_workflow_id(ref.instance_id),
                                         task_queue=CONTROL_QUEUE)
    await pending_step(handle, "host.destroy_domain")
    await handle.cancel()
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    done = row(s, delete.operation_id)
    assert (done.status, done.last_error) == ("failed", f"delete failed: {CANCELLED}")
    with session(s) as db_s:
        inst = db_s.get(Instance, ref.instance_id)
        assert inst is not None and (inst.vm_state, inst.task_state) == ("error", None)


async def test_a_cancel_the_workflow_did_not_handle_still_finishes_the_row(
        temporal: WorkflowEnvironment, wf_settings: Settings, control_worker: None) -> None:
    """DeleteShare handles failures of its first step, not a cancel landing on it
    before any worker ran it: the safety net (@owns_operation) finishes the row."""
    client, s = temporal.client, wf_settings
    host = f"dead{uuid.uuid4().hex[:8]}"
    share_id = new_share(s, host, status="available")
    op_id = new_share_op(s, share_id, "delete")
    queue = f"oprows-{uuid.uuid4().hex[:8]}"
    handle = await client.start_workflow("DeleteShare", ShareOp(share_id, op_id, host, 1),
                                         id=share_workflow_id(share_id), task_queue=queue)
    await handle.cancel()
    async with Worker(client, task_queue=queue, workflows=WORKFLOWS):
        with pytest.raises(WorkflowFailureError):
            await handle.result()
    done = op_row(s, op_id)
    assert (done.status, done.last_error) == ("failed", CANCELLED)
    share = share_row(s, share_id)
    assert share and share.status == "available"  # it never began
    steps = [e.activity_task_scheduled_event_attributes.activity_type.name
             for e in (await handle.fetch_history()).events
             if e.HasField("activity_task_scheduled_event_attributes")]
    assert steps == ["control.settle_operation"]  # the net, not the workflow's own code


async def test_terminated_and_timed_out_rows_are_settled_by_the_reconciler(
        temporal: WorkflowEnvironment, hv_worker: HostFactory, test_driver: None,
        wf_settings: Settings) -> None:
    """Neither runs any code after it closed: the ledger reconciler gives each row the
    final status Temporal reports, clears the task_state, and counts what it settled;
    a row whose workflow still runs is left alone."""
    client = temporal.client
    async with hv_worker() as s:
        ref = new_server(s)
        await run(client, "LaunchInstance", ref)
    iid, wid = ref.instance_id, instance_workflow_id(ref.instance_id)

    terminated = new_op(s, iid, "reboot-hard")
    handle = await client.start_workflow("RebootInstance", reboot(terminated), id=wid,
                                         task_queue=CONTROL_QUEUE)
    started(s, terminated.operation_id, handle)
    await pending_step(handle, "host.power_off")
    await handle.terminate(reason="an operator, by hand")
    assert row(s, terminated.operation_id).status == "running"  # nobody finished it
    assert state(s, iid)[1] == "rebooting_hard"

    result = await reconcile(client, wf_settings)
    done = row(s, terminated.operation_id)
    assert (done.status, done.last_error) == (
        "failed", "the workflow was terminated: an operator, by hand")
    assert result.settled >= 1
    assert any(terminated.operation_id in line for line in result.details)
    assert state(s, iid) == ("active", None, "running")

    timed_out = new_op(s, iid, "reboot-hard")
    handle = await client.start_workflow("RebootInstance", reboot(timed_out), id=wid,
                                         task_queue=CONTROL_QUEUE,
                                         run_timeout=timedelta(seconds=3))
    started(s, timed_out.operation_id, handle)
    await pending_step(handle, "host.power_off")
    running = new_op(s, iid, "reboot-hard")  # a row whose workflow is running meanwhile
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    other = await client.start_workflow("RebootInstance", reboot(running), id=wid,
                                        task_queue=CONTROL_QUEUE)
    started(s, running.operation_id, other)
    await pending_step(other, "host.power_off")

    await reconcile(client, wf_settings)
    done = row(s, timed_out.operation_id)
    assert (done.status, done.last_error) == ("failed", "the workflow timed out")
    assert row(s, running.operation_id).status == "running"  # its workflow runs
    assert state(s, iid)[1] == "rebooting_hard"  # the running reboot's, kept
    await other.terminate(reason="end of test")
    await reconcile(client, wf_settings)
    assert row(s, running.operation_id).status == "failed"
    with session(s) as db_s:
        left = db_s.exec(select(Operation).where(Operation.resource_id == iid,
                                                 Operation.status == "running")).all()
        assert left == []
