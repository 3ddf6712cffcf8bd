"""Backup schedules on the real control worker: a Temporal Schedule's tick runs
ScheduledBackup, which skips (and records) what cannot be backed up now; deleting a
server removes its schedules. The backup itself (SnapshotInstance on a real guest)
is in tests/integration/test_backup_schedules.py."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlmodel import select
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from tests.workflows.conftest import new_delete_op, new_server, run, session
from vmflow import backup_schedules
from vmflow.contracts.snapshots import ScheduledBackupResult
from vmflow.models import BackupSchedule, Instance, Operation
from vmflow.names import CONTROL_QUEUE, instance_workflow_id
from vmflow.settings import Settings


def add_schedule(s: Settings, instance_id: str, every: str = "1d") -> BackupSchedule:
    with session(s) as db_s:
        inst = db_s.get(Instance, instance_id)
        assert inst is not None
        row = BackupSchedule(instance_id=inst.id, project_id=inst.project_id,
                             user_id=inst.user_id, every=every, backup_type="daily",
                             rotation=2)
        db_s.add(row)
        db_s.commit()
        return row


def set_instance(s: Settings, instance_id: str, **fields: object) -> None:
    with session(s) as db_s:
        inst = db_s.get(Instance, instance_id)
        assert inst is not None
        for k, v in fields.items():
            setattr(inst, k, v)
        db_s.add(inst)
        db_s.commit()


async def schedule_exists(client: Client, row: BackupSchedule) -> bool:
    try:
        await client.get_schedule_handle(backup_schedules.schedule_id(row)).describe()
    except RPCError as e:
        assert e.status == RPCStatusCode.NOT_FOUND
        return False
    return True


async def last_tick(client: Client, row: BackupSchedule) -> ScheduledBackupResult:
    """Trigger the schedule and return the result of the run it starts."""
    handle = client.get_schedule_handle(backup_schedules.schedule_id(row))
    await handle.trigger()
    for _ in range(200):
        desc = await handle.describe()
        if desc.info.recent_actions:
            run_id = desc.info.recent_actions[-1].action.workflow_id
            result: ScheduledBackupResult = await client.get_workflow_handle(
                run_id, result_type=ScheduledBackupResult).result()
            return result
        await asyncio.sleep(0.05)
    raise AssertionError("the trigger started nothing")


async def test_a_tick_on_a_server_in_error_is_skipped_and_recorded(
        temporal: WorkflowEnvironment, wf_settings: Settings, control_worker: None) -> None:
    ref = new_server(wf_settings)
    set_instance(wf_settings, ref.instance_id, vm_state="error", task_state=None)
    row = add_schedule(wf_settings, ref.instance_id)
    await backup_schedules.create(temporal.client, row)
    result = await last_tick(temporal.client, row)
    assert result.status == "skipped" and result.reason is not None
    assert result.reason.startswith("skipped: the server is ERROR")
    with session(wf_settings) as db_s:
        ops = db_s.exec(select(Operation).where(Operation.resource_id == ref.instance_id,
                                                Operation.action == "backup")).all()
    assert [(o.status, o.last_error) for o in ops] == [("skipped", result.reason)]
    await backup_schedules.remove(temporal.client, ref.instance_id, row.id)


async def test_a_tick_while_another_operation_runs_is_skipped(
        temporal: WorkflowEnvironment, wf_settings: Settings, control_worker: None) -> None:
    ref = new_server(wf_settings)
    set_instance(wf_settings, ref.instance_id, vm_state="active", task_state=None)
    row = add_schedule(wf_settings, ref.instance_id)
    await backup_schedules.create(temporal.client, row)
    # something holds instance-<id> (a workflow nobody runs: it stays Running)
    holder = await temporal.client.start_workflow(
        "SomethingLong", id=instance_workflow_id(ref.instance_id),
        task_queue=f"{CONTROL_QUEUE}-nobody", execution_timeout=timedelta(minutes=5))
    result = await last_tick(temporal.client, row)
    assert (result.status, result.reason) == (
        "skipped", "skipped: another operation (SomethingLong) is running")
    assert (await holder.describe()).status == WorkflowExecutionStatus.RUNNING
    await holder.terminate("test done")
    await backup_schedules.remove(temporal.client, ref.instance_id, row.id)


async def test_delete_removes_the_servers_schedules(
        temporal: WorkflowEnvironment, wf_settings: Settings, control_worker: None) -> None:
    ref = new_server(wf_settings)
    set_instance(wf_settings, ref.instance_id, vm_state="active", task_state=None, host=None)
    rows = [add_schedule(wf_settings, ref.instance_id, every) for every in ("1h", "1d")]
    for row in rows:
        await backup_schedules.create(temporal.client, row)
    await run(temporal.client, "DeleteInstance", new_delete_op(wf_settings, ref.instance_id))
    for row in rows:
        assert not await schedule_exists(temporal.client, row)
    with session(wf_settings) as db_s:
        left = db_s.exec(select(BackupSchedule)
                         .where(BackupSchedule.instance_id == ref.instance_id)).all()
        inst = db_s.get(Instance, ref.instance_id)
    assert left == [] and inst is not None and inst.vm_state == "deleted"
