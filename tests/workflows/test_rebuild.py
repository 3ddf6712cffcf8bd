"""rebuild on test:///default: the disk becomes a fresh overlay of the new image, the
domain keeps its UUID, image_id follows only on success; a failure at any point
puts the old disk, the old define request and the power state back."""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import uuid
from pathlib import Path
from typing import Any

import libvirt
import pytest
from sqlmodel import select
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from activities.hypervisor import qemu_img
from activities.hypervisor.libvirt.connection import Connection
from activities.hypervisor.power import spec_path
from activities.hypervisor.rebuild import RebuildActivities
from tests.workflows.conftest import HostFactory, new_delete_op, new_server, run, session
from tests.workflows.test_actions import act, new_op, state
from vmflow.contracts.actions import RebuildDisk, RebuildRequest, RestoreOldDisk
from vmflow.models import Image, Instance, Ledger, Operation
from vmflow.names import CONTROL_QUEUE, instance_workflow_id
from vmflow.settings import Settings

TEST = "test:///default"
REBUILD_FILES = ("disk.new", "disk.old", "domain.json.old", "disk.new.part",
                 "domain.json.old.part")


def add_image(s: Settings, name: str, *, agent: bool = False, cmdline: str | None = None,
              data: bytes | None = None) -> Image:
    """A copy of tiny under another id (and name): its own cache entry on the host."""
    with session(s) as db_s:
        tiny = db_s.exec(select(Image).where(Image.name == "tiny")).one()
        props = {k: v for k, v in tiny.properties.items() if k != "hw_qemu_guest_agent"}
        if agent:
            props["hw_qemu_guest_agent"] = "yes"
        if cmdline is not None:
            props["os_command_line"] = cmdline
        location, checksum, size = tiny.location, tiny.checksum, tiny.size
        if data is not None:
            path = Path(s.image_store) / f"{name}.img"
            path.write_bytes(data)
            location, checksum = str(path), hashlib.sha256(data).hexdigest()
            size = len(data)
        image = Image(name=name, status="active", disk_format="qcow2", visibility="public",
                      size=size, checksum=checksum, location=location, properties=props)
        db_s.add(image)
        db_s.commit()
        return image


async def rebuild(env: WorkflowEnvironment, s: Settings, instance_id: str,
                  image_id: str) -> str:
    ref = new_op(s, instance_id, "rebuild")
    await env.client.execute_workflow(
        "RebuildInstance", RebuildRequest(instance_id, ref.operation_id, image_id),
        id=instance_workflow_id(instance_id), task_queue=CONTROL_QUEUE)
    return ref.operation_id


def xml_of(instance_id: str) -> str:
    """The domain's XML without the run id test:///default gives each boot."""
    return re.sub(r" id='\d+'", "", libvirt.open(TEST).lookupByUUIDString(instance_id).XMLDesc(0))


def snapshot(s: Settings, instance_id: str) -> dict[str, Any]:
    """What a failed rebuild must leave exactly as it was."""
    d = s.host_dir() / "instances" / instance_id
    with session(s) as db_s:
        inst = db_s.get(Instance, instance_id)
        assert inst
        image_id = inst.image_id
    return {
        "disk inode": (d / "disk").stat().st_ino,
        "backing": qemu_img.info(s, str(d / "disk"), "qcow2")["backing-filename"],
        "spec": json.loads(spec_path(d).read_text()),
        "xml": xml_of(instance_id),
        "image_id": image_id,
        "state": state(s, instance_id),
        "leftovers": [f for f in REBUILD_FILES if (d / f).exists()],
    }


def operation(s: Settings, op_id: str) -> Operation:
    with session(s) as db_s:
        op = db_s.get(Operation, op_id)
        assert op
        return op


@pytest.mark.parametrize("start", ["active", "stopped"])
async def test_rebuild_boots_a_fresh_overlay_of_the_new_image(
    temporal: WorkflowEnvironment, hv_worker: HostFactory, start: str
) -> None:
    async with hv_worker() as s:
        ref = new_server(s)
        await run(temporal.client, "LaunchInstance", ref)
        iid = ref.instance_id
        if start == "stopped":
            await act(temporal, s, iid, "stop")
        before = snapshot(s, iid)
        new = add_image(s, f"rebuilt-{uuid.uuid4().hex[:6]}", cmdline="console=ttyS0 rebuilt=1")
        op_id = await rebuild(temporal, s, iid, new.id)

        after = snapshot(s, iid)
        d = s.host_dir() / "instances" / iid
        cached = s.host_dir() / "cache" / new.id
        assert after["backing"] == str(cached)  # an overlay of the new image
        assert after["disk inode"] != before["disk inode"]  # a new file, not the old one
        assert after["image_id"] == new.id and before["image_id"] != new.id
        assert after["leftovers"] == []
        # a rebuild of a stopped server boots the new disk once, then leaves it off
        expected = ("stopped", None, "shutoff") if start == "stopped" else (
            "active", None, "running")
        assert after["state"] == expected
        dom = libvirt.open(TEST).lookupByUUIDString(iid)
        assert dom.UUIDString() == iid and "rebuilt=1" in dom.XMLDesc(0)
        assert after["spec"] == {**before["spec"], "cmdline": "console=ttyS0 rebuilt=1"}
        assert qemu_img.info(s, str(d / "disk"), "qcow2")["virtual-size"] == 1 * 2**30
        op = operation(s, op_id)
        assert (op.status, op.last_error) == ("succeeded", f"rebuilt from image {new.id}")
        with session(s) as db_s:  # the new cache entry is ledgered; the disk entry stays
            keys = {(e.kind, e.key) for e in db_s.exec(select(Ledger).where(
                Ledger.host == s.host))}
        assert {("cache", new.id), ("disk", iid), ("domain", iid)} <= keys
        await run(temporal.client, "DeleteInstance", new_delete_op(s, iid))


async def test_a_guest_that_never_answers_gets_its_old_disk_back(
    temporal: WorkflowEnvironment, hv_worker: HostFactory, wf_settings: Settings,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """The new image wants the guest agent, which test:///default never answers:
    after the swap the boot deadline passes, and the undo restores everything. The
    control worker's agent timeout is 2 s here: nothing would answer in 20 either."""
    monkeypatch.setattr(wf_settings, "agent_timeout", 2.0)
    async with hv_worker() as s:
        ref = new_server(s)
        await run(temporal.client, "LaunchInstance", ref)
        iid = ref.instance_id
        before = snapshot(s, iid)
        deaf = add_image(s, f"deaf-{uuid.uuid4().hex[:6]}", agent=True)
        op_id = new_op(s, iid, "rebuild").operation_id
        with pytest.raises(WorkflowFailureError):
            await temporal.client.execute_workflow(
                "RebuildInstance", RebuildRequest(iid, op_id, deaf.id),
                id=instance_workflow_id(iid), task_queue=CONTROL_QUEUE)
        assert snapshot(s, iid) == before
        op = operation(s, op_id)
        assert op.status == "compensated"
        assert "guest agent did not answer" in (op.last_error or "")
        await act(temporal, s, iid, "reboot-hard")  # still an ordinary server
        await run(temporal.client, "DeleteInstance", new_delete_op(s, iid))


async def test_a_new_image_that_is_not_qcow2_fails_before_touching_the_guest(
    temporal: WorkflowEnvironment, hv_worker: HostFactory
) -> None:
    async with hv_worker() as s:
        ref = new_server(s)
        await run(temporal.client, "LaunchInstance", ref)
        iid = ref.instance_id
        before = snapshot(s, iid)
        domain_id = libvirt.open(TEST).lookupByUUIDString(iid).ID()
        junk = add_image(s, f"junk-{uuid.uuid4().hex[:6]}", data=b"not a disk image" * 4096)
        op_id = new_op(s, iid, "rebuild").operation_id
        with pytest.raises(WorkflowFailureError):
            await temporal.client.execute_workflow(
                "RebuildInstance", RebuildRequest(iid, op_id, junk.id),
                id=instance_workflow_id(iid), task_queue=CONTROL_QUEUE)
        assert snapshot(s, iid) == before
        assert libvirt.open(TEST).lookupByUUIDString(iid).ID() == domain_id  # not restarted
        op = operation(s, op_id)
        assert op.status == "compensated" and "cannot be read" in (op.last_error or "")
        await run(temporal.client, "DeleteInstance", new_delete_op(s, iid))


async def test_an_unknown_image_changes_nothing(
    temporal: WorkflowEnvironment, hv_worker: HostFactory
) -> None:
    """The API refuses it with 400; the workflow checks again (the image may be gone)."""
    async with hv_worker() as s:
        ref = new_server(s)
        await run(temporal.client, "LaunchInstance", ref)
        before = snapshot(s, ref.instance_id)
        with pytest.raises(WorkflowFailureError):
            await rebuild(temporal, s, ref.instance_id, str(uuid.uuid4()))
        assert snapshot(s, ref.instance_id) == before
        await run(temporal.client, "DeleteInstance", new_delete_op(s, ref.instance_id))


# ---- the host steps after a worker crash at every point ---------------------------
class Crash(Exception):
    pass


class CrashAt:
    """Raise before the n-th side effect (rename, power change, define, spec write)."""

    def __init__(self, n: int | None):
        self.n, self.seen = n, 0

    def wrap(self, fn: Any) -> Any:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if self.n is not None and self.seen == self.n:
                self.seen += 1
                raise Crash()
            self.seen += 1
            return fn(*args, **kwargs)
        return wrapped


def crashing(monkeypatch: pytest.MonkeyPatch, acts: RebuildActivities, n: int | None) -> CrashAt:
    import activities.hypervisor.rebuild as mod

    c = CrashAt(n)
    monkeypatch.setattr(Path, "rename", c.wrap(Path.rename))
    monkeypatch.setattr(Path, "replace", c.wrap(Path.replace))
    monkeypatch.setattr(Path, "unlink", c.wrap(Path.unlink))
    monkeypatch.setattr(mod, "save_spec", c.wrap(mod.save_spec))
    for name in ("_power_off", "_power_on", "_define"):
        monkeypatch.setattr(acts, name, c.wrap(getattr(acts, name)))
    return c


def host_state(s: Settings, iid: str) -> dict[str, Any]:
    d = s.host_dir() / "instances" / iid
    dom = libvirt.open(TEST).lookupByUUIDString(iid)
    return {"disk inode": (d / "disk").stat().st_ino, "spec": spec_path(d).read_text(),
            "xml": xml_of(iid), "running": bool(dom.isActive()),
            "files": sorted(p.name for p in d.iterdir())}


@pytest.mark.parametrize("was_running", [True, False])
async def test_swap_and_restore_converge_after_a_crash_anywhere(
    temporal: WorkflowEnvironment, hv_worker: HostFactory, monkeypatch: pytest.MonkeyPatch,
    was_running: bool
) -> None:
    async with hv_worker() as s:
        ref = new_server(s)
        await run(temporal.client, "LaunchInstance", ref)
        iid = ref.instance_id
        if not was_running:
            await act(temporal, s, iid, "stop")
        with session(s) as db_s:
            tiny = db_s.exec(select(Image).where(Image.name == "tiny-noagent")).one()
        d = s.host_dir() / "instances" / iid
        acts = RebuildActivities(s, Connection(TEST), lambda i: d.parent / i)
        spec = json.loads(spec_path(d).read_text())
        req = RebuildDisk(iid, str(s.host_dir() / "cache" / tiny.id), "qcow2", 1,
                          spec["kernel_path"], spec["initrd_path"], "rebuilt=1", False)
        original = host_state(s, iid)
        n = 0
        while True:  # crash before the n-th side effect of swap_in, for every n
            acts._prepare(req)
            c = crashing(monkeypatch, acts, n)
            try:
                acts._swap_in(req)
                finished = True
            except Crash:
                finished = False
            monkeypatch.undo()
            if n % 2:  # a retry finishes the swap, then the undo runs
                acts._swap_in(req)
                swapped = host_state(s, iid)
                assert swapped["running"] and "rebuilt=1" in swapped["xml"]
                assert swapped["files"] == sorted([*original["files"], "disk.old",
                                                   "domain.json.old"])
                assert swapped["disk inode"] != original["disk inode"]
            # the undo, itself crashing once at the same point and retried
            c = crashing(monkeypatch, acts, n)
            with contextlib.suppress(Crash):
                acts._restore(RestoreOldDisk(iid, was_running))
            monkeypatch.undo()
            acts._restore(RestoreOldDisk(iid, was_running))
            assert host_state(s, iid) == original, (n, c.seen)
            if finished:
                break
            n += 1
        assert n > 6  # every step was interrupted once
        await run(temporal.client, "DeleteInstance", new_delete_op(s, iid))
