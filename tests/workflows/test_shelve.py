"""shelve, shelve-offload and unshelve on test:///default (real qemu-img disks and
files, the real API's image store, the real control worker): the shelve image and its
properties, SHELVED and SHELVED_OFFLOADED with nothing left on the host, unshelve from
both, the offload timer and its cancellation, and the failure paths: a failing copy in
shelve, a failing disk step and NoValidHost in unshelve each run their undos, leave
nothing behind and keep (or delete) the image as Nova would. The same on a real guest,
with its data checked: tests/workflows/test_shelve_guest.py."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import libvirt
from sqlmodel import select
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from activities.hypervisor import qemu_img
from tests.workflows.conftest import HostFactory, new_delete_op, new_server, run, session
from tests.workflows.test_actions import new_op
from vmflow.contracts.shelve import ShelveRequest, UnshelveRequest
from vmflow.models import Allocation, Flavor, Host, Image, Instance, Ledger, Operation
from vmflow.names import CONTROL_QUEUE, instance_workflow_id, shelve_offload_workflow_id
from vmflow.settings import Settings

TEST = "test:///default"


async def shelve(env: WorkflowEnvironment, s: Settings, iid: str, offload_after_s: int) -> str:
    ref = new_op(s, iid, "shelve")
    await env.client.execute_workflow(
        "ShelveInstance", ShelveRequest(iid, ref.operation_id, offload_after_s),
        id=instance_workflow_id(iid), task_queue=CONTROL_QUEUE)
    return ref.operation_id


async def unshelve(env: WorkflowEnvironment, s: Settings, iid: str,
                   host: str | None = None) -> str:
    ref = new_op(s, iid, "unshelve-to-host" if host else "unshelve")
    await env.client.execute_workflow(
        "UnshelveInstance", UnshelveRequest(iid, ref.operation_id, host),
        id=instance_workflow_id(iid), task_queue=CONTROL_QUEUE)
    return ref.operation_id


async def offload(env: WorkflowEnvironment, s: Settings, iid: str) -> str:
    ref = new_op(s, iid, "shelve-offload")
    await env.client.execute_workflow("ShelveOffloadInstance", ref,
                                      id=instance_workflow_id(iid), task_queue=CONTROL_QUEUE)
    return ref.operation_id


def row(s: Settings, iid: str) -> Instance:
    with session(s) as db_s:
        inst = db_s.get(Instance, iid)
        assert inst is not None
        return inst


def image(s: Settings, image_id: str) -> Image:
    with session(s) as db_s:
        img = db_s.get(Image, image_id)
        assert img is not None
        return img


def operation(s: Settings, op_id: str) -> Operation:
    with session(s) as db_s:
        op = db_s.get(Operation, op_id)
        assert op is not None
        return op


def on_host(s: Settings, iid: str, uri: str = TEST) -> dict[str, Any]:
    """What the instance has on its host and in the ledger."""
    try:
        libvirt.open(uri).lookupByUUIDString(iid)
        domain = True
    except libvirt.libvirtError:
        domain = False
    with session(s) as db_s:
        ledger = sorted(e.kind for e in db_s.exec(select(Ledger).where(
            Ledger.instance_id == iid, Ledger.kind != "cache")))
        claim = db_s.get(Allocation, iid) is not None
    return {"domain": domain, "dir": (s.host_dir() / "instances" / iid).exists(),
            "ledger": ledger, "claim": claim}


NOTHING = {"domain": False, "dir": False, "ledger": [], "claim": False}
PLACED = {"domain": True, "dir": True, "ledger": ["claim", "disk", "domain"], "claim": True}


def check_shelve_image(s: Settings, inst: Instance) -> Image:
    assert inst.shelved_image_id and inst.shelved_at
    img = image(s, inst.shelved_image_id)
    assert (img.name, img.status, img.visibility, img.owner) == (
        f"{inst.name}-shelved", "active", "private", inst.project_id)
    props = img.properties
    assert (props["image_type"], props["instance_uuid"], props["shelve_image"],
            props["base_image_ref"]) == ("snapshot", inst.id, "true", inst.image_id)
    assert img.location and img.checksum and img.size
    info = qemu_img.info(s, img.location, "qcow2")
    assert not info.get("backing-filename")  # standalone: the disk flattened
    return img


async def test_shelve_keeps_the_server_on_its_host_and_unshelve_starts_it(
        temporal: WorkflowEnvironment, hv_worker: HostFactory) -> None:
    async with hv_worker() as s:
        ref = new_server(s)
        await run(temporal.client, "LaunchInstance", ref)
        iid = ref.instance_id
        op_id = await shelve(temporal, s, iid, offload_after_s=-1)

        inst = row(s, iid)
        assert (inst.vm_state, inst.task_state, inst.host) == ("shelved", None, s.host)
        img = check_shelve_image(s, inst)
        assert on_host(s, iid) == PLACED
        assert libvirt.open(TEST).lookupByUUIDString(iid).isActive() == 0  # off on purpose
        assert operation(s, op_id).status == "succeeded"
        assert not list((s.host_dir() / "instances" / iid).glob("snap-*"))

        un_id = await unshelve(temporal, s, iid)
        inst = row(s, iid)
        assert (inst.vm_state, inst.task_state, inst.host, inst.fault) == (
            "active", None, s.host, None)
        assert (inst.shelved_image_id, inst.shelved_at) == (None, None)
        assert image(s, img.id).status == "deleted" and image(s, img.id).location is None
        assert libvirt.open(TEST).lookupByUUIDString(iid).isActive() == 1
        assert operation(s, un_id).status == "succeeded"
        await run(temporal.client, "DeleteInstance", new_delete_op(s, iid))


async def test_offload_zero_leaves_nothing_on_the_host_and_unshelve_spawns_again(
        temporal: WorkflowEnvironment, hv_worker: HostFactory) -> None:
    async with hv_worker() as s:
        ref = new_server(s)
        await run(temporal.client, "LaunchInstance", ref)
        iid = ref.instance_id
        op_id = await shelve(temporal, s, iid, offload_after_s=0)

        inst = row(s, iid)
        assert (inst.vm_state, inst.task_state, inst.host) == ("shelved_offloaded", None, None)
        img = check_shelve_image(s, inst)
        assert on_host(s, iid) == NOTHING
        op = operation(s, op_id)
        assert (op.action, op.status) == ("shelve", "succeeded")  # one operation
        assert "offloaded" in (op.last_error or "")

        await unshelve(temporal, s, iid)
        inst = row(s, iid)
        assert (inst.vm_state, inst.task_state, inst.host) == ("active", None, s.host)
        assert on_host(s, iid) == PLACED
        # spawned from the shelve image's copy in the host's cache, which outlives the
        # image record (it backs the disk)
        disk = s.host_dir() / "instances" / iid / "disk"
        cached = s.host_dir() / "cache" / img.id
        assert qemu_img.info(s, str(disk), "qcow2")["backing-filename"] == str(cached)
        assert image(s, img.id).status == "deleted" and inst.shelved_image_id is None
        assert libvirt.open(TEST).lookupByUUIDString(iid).isActive() == 1
        await run(temporal.client, "DeleteInstance", new_delete_op(s, iid))


async def test_shelve_offload_by_hand_and_delete_of_an_offloaded_server(
        temporal: WorkflowEnvironment, hv_worker: HostFactory) -> None:
    async with hv_worker() as s:
        ref = new_server(s)
        await run(temporal.client, "LaunchInstance", ref)
        iid = ref.instance_id
        await shelve(temporal, s, iid, offload_after_s=-1)
        image_id = row(s, iid).shelved_image_id
        assert image_id
        op_id = await offload(temporal, s, iid)
        assert operation(s, op_id).status == "succeeded"
        inst = row(s, iid)
        assert (inst.vm_state, inst.host, inst.shelved_image_id) == (
            "shelved_offloaded", None, image_id)
        assert on_host(s, iid) == NOTHING

        # delete: nothing on any host to remove, and the shelve image goes too (Nova)
        await run(temporal.client, "DeleteInstance", new_delete_op(s, iid))
        assert row(s, iid).vm_state == "deleted"
        assert image(s, image_id).status == "deleted"


async def wait_for(predicate: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.5)
    return False


async def test_the_offload_timer_offloads_and_unshelve_cancels_it(
        temporal: WorkflowEnvironment, hv_worker: HostFactory) -> None:
    async with hv_worker() as s:
        # a timer that runs out: offloaded a few seconds after the shelve, as its own
        # operation in the action history
        ref = new_server(s)
        await run(temporal.client, "LaunchInstance", ref)
        iid = ref.instance_id
        shelve_id = await shelve(temporal, s, iid, offload_after_s=2)
        assert row(s, iid).vm_state == "shelved"
        assert await wait_for(lambda: row(s, iid).vm_state == "shelved_offloaded", 60)
        timer = temporal.client.get_workflow_handle(shelve_offload_workflow_id(iid, shelve_id))
        assert (await timer.result()).startswith("shelve-offload started")
        with session(s) as db_s:
            offloads = db_s.exec(select(Operation).where(
                Operation.resource_id == iid, Operation.action == "shelve-offload")).all()
        assert [(o.status, o.idempotency_key) for o in offloads] == [
            ("succeeded", f"shelve-offload/{shelve_id}")]
        assert on_host(s, iid) == NOTHING
        await run(temporal.client, "DeleteInstance", new_delete_op(s, iid))

        # an unshelve before it runs out cancels it
        ref = new_server(s)
        await run(temporal.client, "LaunchInstance", ref)
        iid = ref.instance_id
        shelve_id = await shelve(temporal, s, iid, offload_after_s=4)
        await unshelve(temporal, s, iid)
        timer = temporal.client.get_workflow_handle(shelve_offload_workflow_id(iid, shelve_id))
        assert (await timer.describe()).status == WorkflowExecutionStatus.CANCELED
        await asyncio.sleep(5)  # past the time it would have fired
        assert row(s, iid).vm_state == "active" and on_host(s, iid) == PLACED
        await run(temporal.client, "DeleteInstance", new_delete_op(s, iid))


async def test_a_failing_copy_undoes_the_shelve(
        temporal: WorkflowEnvironment, hv_worker: HostFactory) -> None:
    """The disk is not a qcow2 any more: the copy fails (after its retries); the undos
    discard the copy, delete the image and power the guest on again."""
    async with hv_worker() as s:
        ref = new_server(s)
        await run(temporal.client, "LaunchInstance", ref)
        iid = ref.instance_id
        disk = s.host_dir() / "instances" / iid / "disk"
        disk.write_bytes(b"not a qcow2")
        ref2 = new_op(s, iid, "shelve")
        try:
            await temporal.client.execute_workflow(
                "ShelveInstance", ShelveRequest(iid, ref2.operation_id, 0),
                id=instance_workflow_id(iid), task_queue=CONTROL_QUEUE)
            raise AssertionError("the shelve should have failed")
        except WorkflowFailureError:
            pass
        inst = row(s, iid)
        assert (inst.vm_state, inst.task_state, inst.host) == ("active", None, s.host)
        assert inst.shelved_image_id is None and inst.fault
        op = operation(s, ref2.operation_id)
        assert op.status == "compensated", op.last_error
        with session(s) as db_s:
            images = db_s.exec(select(Image).where(Image.name == f"{inst.name}-shelved")).all()
        made = [i for i in images if i.properties.get("instance_uuid") == iid]
        assert [i.status for i in made] == ["deleted"]  # made, then deleted by its undo
        assert not list((s.host_dir() / "instances" / iid).glob("snap-*"))
        assert libvirt.open(TEST).lookupByUUIDString(iid).isActive() == 1
        assert on_host(s, iid) == PLACED
        await run(temporal.client, "DeleteInstance", new_delete_op(s, iid))


def set_flavor(s: Settings, iid: str, flavor_id: str) -> str:
    with session(s) as db_s:
        inst = db_s.get(Instance, iid)
        assert inst is not None
        before, inst.flavor_id = inst.flavor_id, flavor_id
        db_s.add(inst)
        db_s.commit()
        return before


def tiny_flavor(s: Settings) -> str:
    """A flavor whose root disk is smaller than any shelve image: the disk step fails."""
    with session(s) as db_s:
        found = db_s.exec(select(Flavor).where(Flavor.name == "wf.nodisk")).first()
        if found is None:
            found = Flavor(name="wf.nodisk", vcpus=1, ram_mb=64, disk_gb=0)
            db_s.add(found)
            db_s.commit()
        return found.id


async def test_failing_unshelve_steps_leave_it_offloaded_with_the_image(
        temporal: WorkflowEnvironment, hv_worker: HostFactory) -> None:
    async with hv_worker() as s:
        ref = new_server(s)
        await run(temporal.client, "LaunchInstance", ref)
        iid = ref.instance_id
        await shelve(temporal, s, iid, offload_after_s=0)
        image_id = row(s, iid).shelved_image_id
        assert image_id

        # a step on the host fails after the claim and the fetch: every undo runs
        flavor = set_flavor(s, iid, tiny_flavor(s))
        ref2 = new_op(s, iid, "unshelve")
        try:
            await temporal.client.execute_workflow(
                "UnshelveInstance", UnshelveRequest(iid, ref2.operation_id),
                id=instance_workflow_id(iid), task_queue=CONTROL_QUEUE)
            raise AssertionError("the unshelve should have failed")
        except WorkflowFailureError:
            pass
        set_flavor(s, iid, flavor)
        inst = row(s, iid)
        assert (inst.vm_state, inst.task_state, inst.host) == ("shelved_offloaded", None, None)
        assert "larger than the flavor's 0 GB root disk" in (inst.fault or "")
        assert operation(s, ref2.operation_id).status == "compensated"
        assert on_host(s, iid) == NOTHING
        assert image(s, image_id).status == "active" and inst.shelved_image_id == image_id

        # no host fits: NoValidHost names it, the server stays offloaded, image kept
        with session(s) as db_s:
            host = db_s.get(Host, s.host)
            assert host is not None
            host.status, host.disabled_reason = "disabled", "maintenance"
            db_s.add(host)
            db_s.commit()
        ref3 = new_op(s, iid, "unshelve")
        try:
            await temporal.client.execute_workflow(
                "UnshelveInstance", UnshelveRequest(iid, ref3.operation_id),
                id=instance_workflow_id(iid), task_queue=CONTROL_QUEUE)
            raise AssertionError("the unshelve should have failed")
        except WorkflowFailureError:
            pass
        finally:
            with session(s) as db_s:
                host = db_s.get(Host, s.host)
                assert host is not None
                host.status, host.disabled_reason = "enabled", None
                db_s.add(host)
                db_s.commit()
        inst = row(s, iid)
        assert (inst.vm_state, inst.task_state, inst.host) == ("shelved_offloaded", None, None)
        assert "No valid host was found" in (inst.fault or "")
        assert f"{s.host}: disabled: maintenance" in (inst.fault or "")
        op = operation(s, ref3.operation_id)
        assert (op.action, op.status) == ("unshelve", "compensated")
        assert "No valid host" in (op.last_error or "")
        assert on_host(s, iid) == NOTHING
        assert image(s, image_id).status == "active"

        # and it still unshelves once a host can take it
        await unshelve(temporal, s, iid, host=s.host)
        inst = row(s, iid)
        assert (inst.vm_state, inst.host, inst.fault) == ("active", s.host, None)
        assert image(s, image_id).status == "deleted"
        await run(temporal.client, "DeleteInstance", new_delete_op(s, iid))
