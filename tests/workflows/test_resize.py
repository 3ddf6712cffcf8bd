"""Resize on one host (VMFLOW_ALLOW_RESIZE_TO_SAME_HOST): this tier has one libvirtd,
where hosts are only names, so a move to the same host is the honest one here (the
two-host moves are in tests/multihost/test_resize.py). Real guests on qemu:///system
(TCG): the domain gets the new vCPUs and RAM, data written in the guest survives the
copy (source set aside, served over NBD on loopback, pulled, rebased, grown), confirm
and revert leave exactly one copy, a failing step leaves nothing behind. The timer
and delete of a resized server run on test:///default (no guest needed)."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import libvirt
import pytest
from sqlmodel import col, select
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.hypervisor import qemu_img
from activities.hypervisor.libvirt.connection import Connection
from activities.hypervisor.resize import ResizeActivities
from tests.integration import guest
from tests.integration.guest import sh
from tests.workflows.conftest import HostFactory, new_delete_op, new_server, run, session
from tests.workflows.test_actions import new_op
from vmflow.contracts.resize import ResizeRequest, SourceCopy
from vmflow.models import Allocation, Flavor, Instance, Ledger, Migration, Operation
from vmflow.names import CONTROL_QUEUE, auto_confirm_workflow_id, instance_workflow_id
from vmflow.settings import Settings

QEMU = "qemu:///system"
PREFIX = f"vmflowrs{os.getpid()}-"
BIG = "t1.resized"  # 2 vCPUs, 384 MiB, 2 GB: bigger in everything than t1.micro


@pytest.fixture(autouse=True)
def same_host(wf_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The control worker reads these from its settings (the tier's own object)."""
    monkeypatch.setattr(wf_settings, "allow_resize_to_same_host", True)
    monkeypatch.setattr(wf_settings, "resize_confirm_window", 0.0)
    monkeypatch.setattr(guest, "HOSTS", [QEMU])  # where sh() finds the guests
    with session(wf_settings) as db_s:
        if db_s.exec(select(Flavor).where(Flavor.name == BIG)).first() is None:
            db_s.add(Flavor(name=BIG, vcpus=2, ram_mb=384, disk_gb=2))
            db_s.commit()
    yield


def flavor(s: Settings, name: str) -> str:
    with session(s) as db_s:
        return db_s.exec(select(Flavor).where(Flavor.name == name)).one().id


async def resize(env: WorkflowEnvironment, s: Settings, iid: str, to: str = BIG) -> str:
    ref = new_op(s, iid, "resize")
    await env.client.execute_workflow(
        "ResizeInstance", ResizeRequest(iid, ref.operation_id, flavor(s, to)),
        id=instance_workflow_id(iid), task_queue=CONTROL_QUEUE)
    return ref.operation_id


async def finish(env: WorkflowEnvironment, s: Settings, iid: str, action: str) -> str:
    ref = new_op(s, iid, action)
    workflow = {"confirm-resize": "ConfirmResize", "revert-resize": "RevertResize"}[action]
    await env.client.execute_workflow(workflow, ref, id=instance_workflow_id(iid),
                                      task_queue=CONTROL_QUEUE)
    return ref.operation_id


def facts(s: Settings, iid: str, uri: str = QEMU) -> dict[str, Any]:
    """Everything a move may leave behind or change."""
    d = s.host_dir() / "instances" / iid
    with session(s) as db_s:
        inst = db_s.get(Instance, iid)
        assert inst is not None
        flv = db_s.get(Flavor, inst.flavor_id)
        assert flv is not None
        claims = sorted((a.instance_id == iid, a.host, a.vcpus, a.ram_mb, a.disk_gb)
                        for a in db_s.exec(select(Allocation).where(
                            col(Allocation.host) == s.host)))
        ledger = sorted((e.kind, e.key == iid) for e in db_s.exec(select(Ledger).where(
            Ledger.instance_id == iid)))
        moves = [m.status for m in db_s.exec(select(Migration).where(
            Migration.instance_id == iid).order_by(col(Migration.id)))]
        row = (inst.vm_state, inst.task_state, flv.name, inst.host)
    dom = libvirt.open(uri).lookupByUUIDString(iid)
    state, _max_kib, mem_kib, vcpus, _cpu = dom.info()
    return {
        "row": row, "claims": claims, "ledger": ledger, "moves": moves,
        "domain": (state == libvirt.VIR_DOMAIN_RUNNING, vcpus, mem_kib // 1024),
        "disk GB": json.loads(qemu_img.run(s, "info", "-U", "-f", "qcow2", "--output=json",
                                           str(d / "disk")))["virtual-size"] // 2**30,
        "set aside": (d.parent / f"{iid}_resize").exists(),
        "leftovers": sorted(p.name for p in d.iterdir() if p.name.endswith(".part")
                            or p.name.startswith("nbd-")),
    }


def migration(s: Settings, iid: str) -> Migration:
    with session(s) as db_s:
        return db_s.exec(select(Migration).where(Migration.instance_id == iid)
                         .order_by(col(Migration.id).desc())).one()


async def launched(env: WorkflowEnvironment, s: Settings) -> str:
    ref = new_server(s, image="tiny")
    await run(env.client, "LaunchInstance", ref)
    return ref.instance_id


def write(iid: str, name: str) -> str:
    token = uuid.uuid4().hex
    assert sh(iid, f"echo {token} > /{name} && sync")[0] == 0
    return token


def again(s: Settings, step: str, copy: SourceCopy) -> None:
    """A host step of confirm or revert run once more, as a retry after a lost worker."""
    acts = ResizeActivities(s, Connection(s.libvirt_uri), lambda i: s.host_dir() / "instances" / i)
    ActivityEnvironment().run(getattr(acts, step), copy)


MICRO = (True, 1, 256)  # the domain of t1.micro, running


async def test_resize_keeps_the_data_and_confirm_drops_the_source_copy(
    temporal: WorkflowEnvironment, hv_worker: HostFactory
) -> None:
    async with hv_worker(libvirt_uri=QEMU, domain_prefix=PREFIX) as s:
        iid = await launched(temporal, s)
        token = write(iid, "before.txt")
        before = facts(s, iid)
        await resize(temporal, s, iid)

        got = facts(s, iid)
        assert got["row"] == ("resized", None, BIG, s.host)
        assert got["domain"] == (True, 2, 384) and got["disk GB"] == 2
        # the destination's rows are keyed by the move while both copies exist
        assert got["ledger"] == sorted(before["ledger"] + [(k, False) for k in (
            "claim", "disk", "domain")])
        assert got["set aside"] and got["leftovers"] == [] and got["moves"] == ["finished"]
        assert got["claims"] == sorted([(True, s.host, 2, 384, 2), (False, s.host, 1, 256, 1)])
        mig = migration(s, iid)
        assert mig.disk_total and mig.disk_processed == mig.disk_total
        assert (mig.migration_type, mig.source_host, mig.dest_host) == ("resize", s.host, s.host)
        assert sh(iid, "cat /before.txt")[1].strip() == token

        await finish(temporal, s, iid, "confirm-resize")
        got = facts(s, iid)
        assert got["row"] == ("active", None, BIG, s.host)
        assert got["domain"] == (True, 2, 384) and not got["set aside"]
        assert got["claims"] == [(True, s.host, 2, 384, 2)] and got["moves"] == ["confirmed"]
        assert got["ledger"] == before["ledger"]  # one copy's rows, keyed as a launch's
        assert sh(iid, "cat /before.txt")[1].strip() == token
        # confirm's host step once more (a retry): nothing changes, the guest runs on
        again(s, "drop_source", SourceCopy(iid, mig.uuid, same_host=True))
        assert facts(s, iid) == got
        await run(temporal.client, "DeleteInstance", new_delete_op(s, iid))


async def test_revert_brings_the_old_flavor_back_running(
    temporal: WorkflowEnvironment, hv_worker: HostFactory
) -> None:
    async with hv_worker(libvirt_uri=QEMU, domain_prefix=PREFIX) as s:
        iid = await launched(temporal, s)
        token = write(iid, "before.txt")
        before = facts(s, iid)
        await resize(temporal, s, iid)
        write(iid, "after.txt")  # on the destination's copy: gone with it
        await finish(temporal, s, iid, "revert-resize")

        got = facts(s, iid)
        assert got["row"] == ("active", None, "t1.micro", s.host)
        assert got["domain"] == MICRO and got["disk GB"] == 1
        assert got["claims"] == before["claims"] and got["ledger"] == before["ledger"]
        assert not got["set aside"] and got["moves"] == ["reverted"]
        assert sh(iid, "cat /before.txt")[1].strip() == token
        assert sh(iid, "test -e /after.txt")[0] != 0
        mig = migration(s, iid)
        for step in ("discard_incoming", "restore_source"):  # retried: no change
            again(s, step, SourceCopy(iid, mig.uuid, same_host=True))
        assert facts(s, iid) == got
        await run(temporal.client, "DeleteInstance", new_delete_op(s, iid))


async def test_a_failing_step_undoes_everything(
    temporal: WorkflowEnvironment, hv_worker: HostFactory, wf_settings: Settings,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guest agent on the destination must answer within the agent timeout; with
    half a second it cannot (the guest still boots): the last step fails and every
    step is undone, the source's guest running again with its data."""
    async with hv_worker(libvirt_uri=QEMU, domain_prefix=PREFIX) as s:
        iid = await launched(temporal, s)
        token = write(iid, "before.txt")
        before = facts(s, iid)
        monkeypatch.setattr(wf_settings, "agent_timeout", 0.5)
        with pytest.raises(WorkflowFailureError):
            await resize(temporal, s, iid)
        monkeypatch.setattr(wf_settings, "agent_timeout", 20.0)
        got = facts(s, iid)
        assert {k: v for k, v in got.items() if k != "moves"} == {
            k: v for k, v in before.items() if k != "moves"}
        assert got["moves"] == ["error"]
        with session(s) as db_s:
            op = db_s.exec(select(Operation).where(Operation.resource_id == iid,
                                                   Operation.action == "resize")).one()
        assert op.status == "compensated", op.last_error
        assert "agent" in (op.last_error or "")
        d = s.host_dir() / "instances" / iid
        assert not (d / "migration.json").exists()
        deadline = time.monotonic() + 60  # the source's guest boots again
        while True:
            try:
                assert sh(iid, "cat /before.txt")[1].strip() == token
                break
            except libvirt.libvirtError:
                assert time.monotonic() < deadline
                await asyncio.sleep(1)
        await run(temporal.client, "DeleteInstance", new_delete_op(s, iid))


# ---- the confirm window's timer, and delete of a resized server (test:///default) ----
TEST = "test:///default"


async def resized_on_test_driver(env: WorkflowEnvironment, s: Settings) -> tuple[str, str]:
    ref = new_server(s)
    await run(env.client, "LaunchInstance", ref)
    await resize(env, s, ref.instance_id)
    return ref.instance_id, migration(s, ref.instance_id).uuid


async def timer_status(env: WorkflowEnvironment, iid: str) -> WorkflowExecutionStatus | None:
    desc = await env.client.get_workflow_handle(auto_confirm_workflow_id(iid)).describe()
    return desc.status


async def test_the_confirm_window_confirms_by_itself(
    temporal: WorkflowEnvironment, hv_worker: HostFactory, wf_settings: Settings,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wf_settings, "resize_confirm_window", 2.0)
    async with hv_worker() as s:
        iid, mig = await resized_on_test_driver(temporal, s)
        assert facts(s, iid, TEST)["row"][0] == "resized"
        result = await env_result(temporal, auto_confirm_workflow_id(iid))
        assert result.startswith("confirm started: operation ")
        op_id = result.rsplit(" ", 1)[1]
        await temporal.client.get_workflow_handle(instance_workflow_id(iid)).result()
        with session(s) as db_s:
            op = db_s.get(Operation, op_id)
            assert op is not None
            assert (op.action, op.status, op.idempotency_key) == (
                "confirm-resize", "succeeded", f"auto-confirm/{mig}")
        got = facts(s, iid, TEST)
        assert got["row"] == ("active", None, BIG, s.host) and got["moves"] == ["confirmed"]
        assert not got["set aside"] and [c[0] for c in got["claims"]] == [True]
        await run(temporal.client, "DeleteInstance", new_delete_op(s, iid))


async def env_result(env: WorkflowEnvironment, workflow_id: str) -> str:
    return str(await env.client.get_workflow_handle(workflow_id).result())


@pytest.mark.parametrize("end", ["revert-resize", "delete"])
async def test_revert_and_delete_cancel_the_timer_and_leave_one_copy_or_none(
    temporal: WorkflowEnvironment, hv_worker: HostFactory, wf_settings: Settings,
    monkeypatch: pytest.MonkeyPatch, end: str
) -> None:
    monkeypatch.setattr(wf_settings, "resize_confirm_window", 3600.0)
    async with hv_worker() as s:
        iid, mig = await resized_on_test_driver(temporal, s)
        assert await timer_status(temporal, iid) == WorkflowExecutionStatus.RUNNING
        d = s.host_dir() / "instances" / iid
        if end == "revert-resize":
            await finish(temporal, s, iid, end)
            got = facts(s, iid, TEST)
            assert got["row"] == ("active", None, "t1.micro", s.host)
            assert got["moves"] == ["reverted"] and not got["set aside"]
        await run(temporal.client, "DeleteInstance", new_delete_op(s, iid))
        assert await timer_status(temporal, iid) == WorkflowExecutionStatus.CANCELED
        with session(s) as db_s:
            assert db_s.get(Allocation, iid) is None and db_s.get(Allocation, mig) is None
            assert db_s.exec(select(Ledger).where(Ledger.instance_id == iid)).all() == []
            status = db_s.exec(select(Migration).where(Migration.uuid == mig)).one().status
        assert status == ("reverted" if end == "revert-resize" else "confirmed")
        assert not d.exists() and not d.with_name(f"{iid}_resize").exists()
        with pytest.raises(libvirt.libvirtError):
            libvirt.open(TEST).lookupByUUIDString(iid)
