"""Launch and delete workflows end to end on test:///default, and their failure paths."""

from __future__ import annotations

import subprocess
from pathlib import Path

import libvirt
import pytest
from sqlmodel import select
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from tests.workflows.conftest import HostFactory, new_delete_op, new_server, run, session
from vmflow.models import Allocation, Flavor, Image, Instance, Ledger, Operation
from vmflow.settings import Settings


def domain_exists(instance_id: str) -> bool:
    try:
        libvirt.open("test:///default").lookupByUUIDString(instance_id)
        return True
    except libvirt.libvirtError:
        return False


def leftovers(s: Settings, instance_id: str) -> dict[str, object]:
    """Everything an instance could leave behind; all empty/False when clean."""
    with session(s) as db_s:
        return {
            "allocation": db_s.get(Allocation, instance_id),
            "ledger": db_s.exec(select(Ledger).where(Ledger.instance_id == instance_id)).all(),
            "domain": domain_exists(instance_id),
            "files": [p for p in (s.home / "hosts").glob(f"*/instances/{instance_id}")],
            "partial cache files": list((s.home / "hosts").glob("*/cache/*.part")),
        }


CLEAN = {"allocation": None, "ledger": [], "domain": False, "files": [],
         "partial cache files": []}


def instance(s: Settings, instance_id: str) -> Instance:
    with session(s) as db_s:
        inst = db_s.get(Instance, instance_id)
        assert inst is not None
        return inst


def operation(s: Settings, op_id: str) -> Operation:
    with session(s) as db_s:
        op = db_s.get(Operation, op_id)
        assert op is not None
        return op


async def test_launch_then_delete(temporal: WorkflowEnvironment, hv_worker: HostFactory) -> None:
    async with hv_worker() as s:
        ref = new_server(s)
        assert await run(temporal.client, "LaunchInstance", ref) == s.host
        inst = instance(s, ref.instance_id)
        assert (inst.vm_state, inst.task_state, inst.host) == ("active", None, s.host)
        assert operation(s, ref.operation_id).status == "succeeded"
        dom = libvirt.open("test:///default").lookupByUUIDString(ref.instance_id)
        assert dom.isActive() and dom.name() == f"vmflow-{ref.instance_id}"
        disk = s.host_dir() / "instances" / ref.instance_id / "disk"
        info = subprocess.run(["qemu-img", "info", "-f", "qcow2", str(disk)], check=True,
                              capture_output=True, text=True).stdout
        assert f"backing file: {s.host_dir() / 'cache'}" in info
        with session(s) as db_s:
            kinds = {e.kind for e in db_s.exec(select(Ledger).where(
                Ledger.instance_id == ref.instance_id))}
            assert kinds == {"claim", "disk", "domain"}
            assert db_s.get(Allocation, ref.instance_id) is not None

        delete = new_delete_op(s, ref.instance_id)
        await run(temporal.client, "DeleteInstance", delete)
        assert instance(s, ref.instance_id).vm_state == "deleted"
        assert operation(s, delete.operation_id).status == "succeeded"
        assert leftovers(s, ref.instance_id) == CLEAN


async def test_delete_is_idempotent_and_works_without_a_domain(
    temporal: WorkflowEnvironment, hv_worker: HostFactory
) -> None:
    async with hv_worker() as s:
        ref = new_server(s)
        await run(temporal.client, "LaunchInstance", ref)
        libvirt.open("test:///default").lookupByUUIDString(ref.instance_id).destroy()
        libvirt.open("test:///default").lookupByUUIDString(ref.instance_id).undefine()
        await run(temporal.client, "DeleteInstance", new_delete_op(s, ref.instance_id))
        await run(temporal.client, "DeleteInstance", new_delete_op(s, ref.instance_id))
        assert instance(s, ref.instance_id).vm_state == "deleted"
        assert leftovers(s, ref.instance_id) == CLEAN


async def test_no_valid_host_gives_error_with_readable_fault(
    temporal: WorkflowEnvironment, hv_worker: HostFactory
) -> None:
    async with hv_worker() as s:
        with session(s) as db_s:
            db_s.add(Flavor(name="gpu.micro", vcpus=1, ram_mb=256, disk_gb=1,
                            extra_specs={"trait:HW_GPU_NOPE": "required"}))
            db_s.commit()
        ref = new_server(s, flavor="gpu.micro")
        with pytest.raises(WorkflowFailureError):
            await run(temporal.client, "LaunchInstance", ref)
        inst = instance(s, ref.instance_id)
        assert inst.vm_state == "error" and inst.task_state is None and inst.host is None
        assert inst.fault and inst.fault.startswith("No valid host was found")
        assert f"{s.host}: lacks trait HW_GPU_NOPE" in inst.fault
        op = operation(s, ref.operation_id)
        assert op.status == "compensated" and op.last_error == inst.fault
        assert leftovers(s, ref.instance_id) == CLEAN


async def test_unwritable_instance_dir_compensates(
    temporal: WorkflowEnvironment, hv_worker: HostFactory
) -> None:
    async with hv_worker() as s:
        instances = s.host_dir() / "instances"
        instances.mkdir(parents=True, exist_ok=True)
        subprocess.run(["chattr", "+i", str(instances)], check=True)  # even root cannot write
        try:
            ref = new_server(s)
            with pytest.raises(WorkflowFailureError):
                await run(temporal.client, "LaunchInstance", ref)
        finally:
            subprocess.run(["chattr", "-i", str(instances)], check=True)
        inst = instance(s, ref.instance_id)
        assert inst.vm_state == "error" and "host storage error" in (inst.fault or "")
        assert operation(s, ref.operation_id).status == "compensated"
        assert leftovers(s, ref.instance_id) == CLEAN


async def test_corrupt_image_in_store_fails_cleanly(
    temporal: WorkflowEnvironment, hv_worker: HostFactory
) -> None:
    async with hv_worker() as s:
        with session(s) as db_s:
            tiny = db_s.exec(select(Image).where(Image.name == "tiny-noagent")).one()
            bad = Path(s.image_store / "corrupt-copy")
            data = bytearray(Path(str(tiny.location)).read_bytes())
            data[-1] ^= 0xFF
            bad.write_bytes(data)
            db_s.add(Image(name="tiny-corrupt", status="active", disk_format="qcow2",
                           visibility="public", size=len(data), checksum=tiny.checksum,
                           location=str(bad), properties=tiny.properties))
            db_s.commit()
        ref = new_server(s, image="tiny-corrupt")
        with pytest.raises(WorkflowFailureError):
            await run(temporal.client, "LaunchInstance", ref)
        inst = instance(s, ref.instance_id)
        assert inst.vm_state == "error" and "is corrupt: sha256" in (inst.fault or "")
        assert leftovers(s, ref.instance_id) == CLEAN
        cached = s.host_dir() / "cache"
        assert not [p for p in cached.iterdir() if p.name.startswith(tiny.id)]


async def test_changed_cache_entry_is_fetched_again(
    temporal: WorkflowEnvironment, hv_worker: HostFactory
) -> None:
    async with hv_worker() as s:
        await run(temporal.client, "LaunchInstance", first := new_server(s))
        with session(s) as db_s:
            tiny = db_s.exec(select(Image).where(Image.name == "tiny-noagent")).one()
        entry = s.host_dir() / "cache" / tiny.id
        with entry.open("r+b") as f:  # bit rot, or someone writing where they should not
            f.seek(4096)
            f.write(b"garbage")
        second = new_server(s)
        await run(temporal.client, "LaunchInstance", second)
        assert instance(s, second.instance_id).vm_state == "active"
        from vmflow.bootstrap import sha256_file

        assert sha256_file(entry) == tiny.checksum
        for ref in (first, second):
            await run(temporal.client, "DeleteInstance", new_delete_op(s, ref.instance_id))
            assert leftovers(s, ref.instance_id) == CLEAN


async def test_host_that_does_not_pick_up_is_skipped(
    temporal: WorkflowEnvironment, hv_worker: HostFactory, wf_settings: Settings
) -> None:
    # a host whose worker polled recently (so it looks alive) and then died; it has
    # the most free RAM, so the scheduler picks it first
    async with hv_worker():
        pass
    async with hv_worker() as dead:
        pass
    with session(dead) as db_s:
        from vmflow.models import Host

        row = db_s.get(Host, dead.host)
        assert row is not None
        row.ram_mb = 10**7
        row.status, row.disabled_reason = "enabled", None  # the fixture disabled it
        db_s.add(row)
        db_s.commit()
    async with hv_worker() as live:
        ref = new_server(live)
        assert await run(temporal.client, "LaunchInstance", ref) == live.host
        assert instance(live, ref.instance_id).host == live.host
        with session(live) as db_s:
            assert db_s.exec(select(Allocation).where(Allocation.host == dead.host)).all() == []
            assert db_s.exec(select(Ledger).where(Ledger.host == dead.host,
                                                  Ledger.kind == "claim")).all() == []
        await run(temporal.client, "DeleteInstance", new_delete_op(live, ref.instance_id))
        with session(live) as db_s:
            db_s.delete(db_s.get(Host, dead.host))
            db_s.commit()
