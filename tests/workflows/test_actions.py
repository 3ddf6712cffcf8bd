"""Every instance action workflow on test:///default: the resulting domain state and
the DB agree; failures settle on the real state; the reconciler fixes drift."""

from __future__ import annotations

from typing import Any

import libvirt
import pytest
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from tests.workflows.conftest import HostFactory, new_delete_op, new_server, run, session
from vmflow.contracts.actions import InstanceIds, RebootRequest, RescueRequest, SyncResult
from vmflow.contracts.instances import OperationRef
from vmflow.models import Instance, Operation
from vmflow.names import CONTROL_QUEUE, instance_workflow_id
from vmflow.settings import Settings

TEST = "test:///default"


def new_op(s: Settings, instance_id: str, action: str) -> OperationRef:
    with session(s) as db_s:
        inst = db_s.get(Instance, instance_id)
        assert inst
        op = Operation(resource_type="instance", resource_id=inst.id, action=action,
                       workflow_id=instance_workflow_id(inst.id), project_id=inst.project_id,
                       user_id=inst.user_id)
        db_s.add(op)
        db_s.commit()
        return OperationRef(inst.id, op.id)


async def act(env: WorkflowEnvironment, s: Settings, instance_id: str, action: str) -> Any:
    ref = new_op(s, instance_id, action)
    workflow, arg = {
        "stop": ("StopInstance", ref), "start": ("StartInstance", ref),
        "pause": ("PauseInstance", ref), "unpause": ("UnpauseInstance", ref),
        "suspend": ("SuspendInstance", ref), "resume": ("ResumeInstance", ref),
        "reboot-hard": ("RebootInstance", RebootRequest(ref.instance_id, ref.operation_id, True)),
        "reboot-soft": ("RebootInstance", RebootRequest(ref.instance_id, ref.operation_id, False)),
        "rescue": ("RescueInstance", RescueRequest(ref.instance_id, ref.operation_id)),
        "unrescue": ("UnrescueInstance", ref),
    }[action]
    return await env.client.execute_workflow(workflow, arg, id=instance_workflow_id(instance_id),
                                             task_queue=CONTROL_QUEUE)


def state(s: Settings, instance_id: str) -> tuple[str, str | None, str]:
    with session(s) as db_s:
        inst = db_s.get(Instance, instance_id)
        assert inst
        dom = libvirt.open(TEST).lookupByUUIDString(instance_id)
        power = {libvirt.VIR_DOMAIN_RUNNING: "running", libvirt.VIR_DOMAIN_PAUSED: "paused",
                 libvirt.VIR_DOMAIN_SHUTOFF: "shutoff"}[dom.state()[0]]
        saved = "+saved" if dom.hasManagedSaveImage(0) else ""
        return inst.vm_state, inst.task_state, power + saved


async def test_every_action_reaches_its_state(temporal: WorkflowEnvironment,
                                              hv_worker: HostFactory) -> None:
    async with hv_worker() as s:
        ref = new_server(s)
        await run(temporal.client, "LaunchInstance", ref)
        iid = ref.instance_id
        steps = [
            ("stop", ("stopped", None, "shutoff")),
            ("start", ("active", None, "running")),
            ("pause", ("paused", None, "paused")),
            ("unpause", ("active", None, "running")),
            ("suspend", ("suspended", None, "shutoff+saved")),
            ("resume", ("active", None, "running")),
            ("reboot-soft", ("active", None, "running")),
            ("reboot-hard", ("active", None, "running")),
            ("rescue", ("rescued", None, "running")),
            ("unrescue", ("active", None, "running")),
        ]
        for action, expected in steps:
            await act(temporal, s, iid, action)
            assert state(s, iid) == expected, action
        disk_dir = s.host_dir() / "instances" / iid
        assert not (disk_dir / "rescue.disk").exists()
        await run(temporal.client, "DeleteInstance", new_delete_op(s, iid))


async def test_rescue_boots_the_rescue_disk_with_the_original_second(
    temporal: WorkflowEnvironment, hv_worker: HostFactory
) -> None:
    async with hv_worker() as s:
        ref = new_server(s)
        await run(temporal.client, "LaunchInstance", ref)
        await act(temporal, s, ref.instance_id, "rescue")
        xml = libvirt.open(TEST).lookupByUUIDString(ref.instance_id).XMLDesc(0)
        d = s.host_dir() / "instances" / ref.instance_id
        assert xml.index(str(d / "rescue.disk")) < xml.index(str(d / "disk"))
        assert "vmflow.rescue=1" in xml
        await act(temporal, s, ref.instance_id, "unrescue")
        xml = libvirt.open(TEST).lookupByUUIDString(ref.instance_id).XMLDesc(0)
        assert "rescue" not in xml
        await run(temporal.client, "DeleteInstance", new_delete_op(s, ref.instance_id))


async def test_action_from_a_wrong_state_fails_and_changes_nothing(
    temporal: WorkflowEnvironment, hv_worker: HostFactory
) -> None:
    """The API refuses this with 409; the workflow checks again in case state moved."""
    async with hv_worker() as s:
        ref = new_server(s)
        await run(temporal.client, "LaunchInstance", ref)
        with pytest.raises(WorkflowFailureError):
            await act(temporal, s, ref.instance_id, "unpause")
        assert state(s, ref.instance_id) == ("active", None, "running")
        await run(temporal.client, "DeleteInstance", new_delete_op(s, ref.instance_id))


async def test_failed_action_settles_on_the_real_domain_state(
    temporal: WorkflowEnvironment, hv_worker: HostFactory
) -> None:
    """Someone undefined the domain behind our back: stop fails, and the instance
    says ERROR with the reason rather than pretending."""
    async with hv_worker() as s:
        ref = new_server(s)
        await run(temporal.client, "LaunchInstance", ref)
        dom = libvirt.open(TEST).lookupByUUIDString(ref.instance_id)
        dom.destroy()
        dom.undefine()
        with pytest.raises(WorkflowFailureError):
            await act(temporal, s, ref.instance_id, "stop")
        with session(s) as db_s:
            inst = db_s.get(Instance, ref.instance_id)
            assert inst and inst.vm_state == "error" and inst.task_state is None
            assert "not defined on this host" in (inst.fault or "")
        await run(temporal.client, "DeleteInstance", new_delete_op(s, ref.instance_id))


async def test_power_sync_records_a_guest_that_powered_itself_off(
    temporal: WorkflowEnvironment, hv_worker: HostFactory
) -> None:
    async with hv_worker() as s:
        ref = new_server(s)
        await run(temporal.client, "LaunchInstance", ref)
        libvirt.open(TEST).lookupByUUIDString(ref.instance_id).shutdown()  # from inside
        result: SyncResult = await temporal.client.execute_workflow(
            "PowerSync", InstanceIds([ref.instance_id]), id=f"sync-{ref.instance_id}",
            task_queue=CONTROL_QUEUE, result_type=SyncResult)
        assert len(result.fixed) == 1 and "vm_state active -> stopped" in result.fixed[0]
        assert state(s, ref.instance_id) == ("stopped", None, "shutoff")
        with session(s) as db_s:
            from sqlmodel import select

            [sync] = db_s.exec(select(Operation).where(
                Operation.resource_id == ref.instance_id, Operation.action == "power-sync"))
            assert "the domain is shutoff" in (sync.last_error or "")
        await run(temporal.client, "DeleteInstance", new_delete_op(s, ref.instance_id))
