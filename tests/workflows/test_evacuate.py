"""EvacuateInstance and the clean-up on the old host, on libvirt's test driver: the
paths one libvirtd tells honestly (a real success moves a domain between two
libvirtds: tests/multihost/test_evacuate.py).

- refused while the source is up (its worker heartbeats): nothing changes;
- the destination fails (its image does not verify there): the destination's claim
  goes, the source is claimed again, the server stays where and as it was with the
  fault, the Migration row is failed;
- the old host registers again: the copies of servers evacuated away from it are
  removed (files, ledger entries), their rows completed; a server that lives there
  again keeps its files.
"""

from __future__ import annotations

import uuid

import pytest
from sqlmodel import select
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from tests.workflows.conftest import HostFactory, new_delete_op, new_server, run, session
from tests.workflows.test_launch_delete import instance, operation
from vmflow.contracts.evacuate import EvacuateRequest
from vmflow.models import Allocation, Flavor, Host, Image, Instance, Ledger, Migration, Operation
from vmflow.names import CONTROL_QUEUE, instance_workflow_id
from vmflow.settings import Settings
from workers import hypervisor


def evacuate_op(s: Settings, instance_id: str, host: str | None = None) -> EvacuateRequest:
    """What the API does before starting an evacuation: the row and the task_state."""
    with session(s) as db_s:
        inst = db_s.get(Instance, instance_id)
        assert inst is not None
        op = Operation(resource_type="instance", resource_id=inst.id, action="evacuate",
                       workflow_id=instance_workflow_id(inst.id), project_id=inst.project_id,
                       user_id=inst.user_id)
        inst.task_state = "rebuilding"
        db_s.add_all([op, inst])
        db_s.commit()
        return EvacuateRequest(inst.id, op.id, host)


async def evacuate(temporal: WorkflowEnvironment, req: EvacuateRequest) -> str:
    result: str = await temporal.client.execute_workflow(
        "EvacuateInstance", req, id=instance_workflow_id(req.instance_id),
        task_queue=CONTROL_QUEUE)
    return result


def migrations(s: Settings, instance_id: str) -> list[Migration]:
    with session(s) as db_s:
        return list(db_s.exec(select(Migration).where(Migration.instance_id == instance_id)))


def ledger(s: Settings, instance_id: str, host: str) -> set[str]:
    with session(s) as db_s:
        return {e.kind for e in db_s.exec(select(Ledger).where(
            Ledger.instance_id == instance_id, Ledger.host == host))}


def set_row(s: Settings, model: type, key: object, **fields: object) -> None:
    with session(s) as db_s:
        row = db_s.get(model, key)
        assert row is not None
        for k, v in fields.items():
            setattr(row, k, v)
        db_s.add(row)
        db_s.commit()


def own_image_and_flavor(s: Settings, trait: str) -> tuple[str, str]:
    """An image of this test (its checksum is spoiled later) and a flavor only hosts
    with `trait` take (hosts of earlier tests never do)."""
    with session(s) as db_s:
        tiny = db_s.exec(select(Image).where(Image.name == "tiny-noagent")).one()
        img = Image(name=f"ev-{trait}", status="active", disk_format="qcow2",
                    visibility="public", size=tiny.size, checksum=tiny.checksum,
                    location=tiny.location, properties=dict(tiny.properties))
        db_s.add(img)
        db_s.add(Flavor(name=f"ev.{trait}", vcpus=1, ram_mb=256, disk_gb=1,
                        extra_specs={f"trait:{trait}": "required"}))
        db_s.commit()
        return img.id, img.name


async def test_refusal_compensation_and_clean_up(
        temporal: WorkflowEnvironment, hv_worker: HostFactory, image_api: str) -> None:
    trait = f"CUSTOM_EV_{uuid.uuid4().hex[:8].upper()}"
    async with hv_worker(host_traits=trait) as a:
        image_id, image_name = own_image_and_flavor(a, trait)
        ref = new_server(a, image=image_name, flavor=f"ev.{trait}")
        assert await run(temporal.client, "LaunchInstance", ref) == a.host
        keep = new_server(a, image=image_name, flavor=f"ev.{trait}")
        assert await run(temporal.client, "LaunchInstance", keep) == a.host
        sid = ref.instance_id
        a_dir = a.home / "hosts" / a.host / "instances"
        assert (a_dir / sid).is_dir()

        # 1. the source's worker heartbeats: refused, the task given back
        req = evacuate_op(a, sid)
        with pytest.raises(WorkflowFailureError):
            await evacuate(temporal, req)
        op = operation(a, req.operation_id)
        assert (op.status, op.last_error) == (
            "failed", f"Compute service of {a.host} is still in use.")
        inst = instance(a, sid)
        assert (inst.vm_state, inst.task_state, inst.host, inst.fault) == (
            "active", None, a.host, None)
        assert migrations(a, sid) == []

        # 2. fenced (forced down); the destination cannot verify the image: compensated
        set_row(a, Host, a.host, forced_down=True)
        set_row(a, Image, image_id, checksum="0" * 64)
        try:
            async with hv_worker(host_traits=trait) as b:
                req = evacuate_op(a, sid)
                with pytest.raises(WorkflowFailureError):
                    await evacuate(temporal, req)
                op = operation(a, req.operation_id)
                assert op.status == "compensated" and "corrupt" in (op.last_error or "")
                inst = instance(a, sid)
                assert (inst.vm_state, inst.task_state, inst.host) == ("active", None, a.host)
                assert inst.fault == op.last_error
                with session(a) as db_s:
                    alloc = db_s.get(Allocation, sid)
                assert alloc is not None and alloc.host == a.host  # the source claimed again
                (mig,) = migrations(a, sid)
                assert (mig.migration_type, mig.status, mig.source_host) == (
                    "evacuation", "failed", a.host)
                assert ledger(a, sid, b.host) <= {"cache"} and ledger(a, sid, a.host) == {
                    "claim", "disk", "domain"}
                assert not (a.home / "hosts" / b.host / "instances" / sid).exists()
        finally:
            set_row(a, Image, image_id, checksum=instance_image_checksum(a))

        # 3. as if it had been evacuated to b: when a registers again its copy goes;
        # a server that lives on a again keeps its own
        set_row(a, Instance, sid, host=b.host)
        with session(a) as db_s:
            for iid in (sid, keep.instance_id):
                inst = db_s.get(Instance, iid)
                assert inst is not None
                db_s.add(Migration(instance_id=iid, project_id=inst.project_id,
                                   user_id=inst.user_id, migration_type="evacuation",
                                   status="done", source_host=a.host, dest_host=b.host))
            db_s.commit()
        await (await hypervisor.register(temporal.client, a)).result()
        assert not (a_dir / sid).exists() and (a_dir / keep.instance_id).is_dir()
        assert [m.status for m in migrations(a, sid)] == ["failed", "completed"]
        assert [m.status for m in migrations(a, keep.instance_id)] == ["completed"]
        assert ledger(a, sid, a.host) == set()
        assert ledger(a, keep.instance_id, a.host) >= {"disk", "domain"}
        set_row(a, Host, a.host, forced_down=False)
        set_row(a, Instance, sid, host=a.host)  # delete both where they are, for the next tests
        for iid in (sid, keep.instance_id):
            await run(temporal.client, "DeleteInstance", new_delete_op(a, iid))


def instance_image_checksum(s: Settings) -> str:
    with session(s) as db_s:
        tiny = db_s.exec(select(Image).where(Image.name == "tiny-noagent")).one()
        assert tiny.checksum is not None
        return tiny.checksum
