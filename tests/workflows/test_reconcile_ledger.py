"""The ledger reconciler (ReconcileLedger) on real guests: a hypervisor worker on
qemu:///system (TCG here), the real control worker and API, a real Temporal dev
server. Four servers are launched for real; three are then made orphans the way a
lost delete or a DB edit leaves them (the instance row says deleted, nothing else
changed): one old, one younger than the grace period, one old with an operation
running on it. The reconciler must remove exactly the old idle orphan, touch neither
the live server nor the other two, and change nothing when run again."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import libvirt
from sqlmodel import select
from temporalio.client import ScheduleActionExecutionStartWorkflow, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from tests.workflows.conftest import HostFactory, new_delete_op, new_server, run, session
from vmflow.contracts.reconcile import ReconcileLedgerRequest, ReconcileLedgerResult
from vmflow.models import Allocation, Instance, Ledger, now
from vmflow.names import CONTROL_QUEUE, LEDGER_RECONCILE_SCHEDULE, instance_workflow_id
from vmflow.settings import Settings
from workers import control

QEMU = "qemu:///system"
# its own domain prefix, so nothing here can meet the guests of a stack on this machine
PREFIX = f"vmflowwf{os.getpid()}-"
HOUR = 3600.0
GRACE = 600.0


def resources(s: Settings, instance_id: str) -> dict[str, Any]:
    """What the instance has: its domain on libvirt, its disk, its ledger and claim."""
    try:
        dom = libvirt.open(QEMU).lookupByUUIDString(instance_id)
        domain: str | None = "running" if dom.isActive() else "defined"
    except libvirt.libvirtError:
        domain = None
    with session(s) as db_s:
        ledger = sorted(e.kind for e in db_s.exec(select(Ledger).where(
            Ledger.instance_id == instance_id)))
        claim = db_s.get(Allocation, instance_id) is not None
    return {"domain": domain, "disk": (s.host_dir() / "instances" / instance_id / "disk").exists(),
            "ledger": ledger, "claim": claim}


LIVE = {"domain": "running", "disk": True, "ledger": ["claim", "disk", "domain"], "claim": True}
GONE = {"domain": None, "disk": False, "ledger": [], "claim": False}


def make_gone(s: Settings, instance_id: str, age_s: float = 0.0) -> None:
    """The instance row says deleted and nothing else changes (no workflow runs); every
    sign of life of it is made `age_s` old: its ledger rows, its claim, its deletion,
    its instance dir."""
    then = now() - timedelta(seconds=age_s)
    with session(s) as db_s:
        inst = db_s.get(Instance, instance_id)
        assert inst is not None
        inst.vm_state, inst.task_state, inst.deleted_at = "deleted", None, then
        db_s.add(inst)
        for entry in db_s.exec(select(Ledger).where(Ledger.instance_id == instance_id)):
            entry.created_at = then
            db_s.add(entry)
        alloc = db_s.get(Allocation, instance_id)
        assert alloc is not None
        alloc.created_at = then
        db_s.add(alloc)
        db_s.commit()
    d = s.host_dir() / "instances" / instance_id
    os.utime(d, (time.time() - age_s, time.time() - age_s))


async def reconcile(env: WorkflowEnvironment, s: Settings,
                    grace_s: float | None = GRACE) -> ReconcileLedgerResult:
    result: ReconcileLedgerResult = await env.client.execute_workflow(
        "ReconcileLedger", ReconcileLedgerRequest([s.host], grace_s),
        id=f"reconcile-ledger-test-{uuid.uuid4().hex[:8]}", task_queue=CONTROL_QUEUE,
        result_type=ReconcileLedgerResult)
    return result


def counts(r: ReconcileLedgerResult) -> tuple[int, int, int, int, int]:
    return r.removed, r.forgotten, r.reported, r.deferred, r.failed


@contextmanager
def no_guest_left(ids: list[str]) -> Iterator[None]:
    """Whatever happens, no test guest keeps running on the machine."""
    try:
        yield
    finally:
        conn = libvirt.open(QEMU)
        for iid in ids:
            try:
                dom = conn.lookupByUUIDString(iid)
            except libvirt.libvirtError:
                continue
            if dom.isActive():
                dom.destroy()
            dom.undefine()


async def test_reconciler_removes_old_orphans_and_nothing_else(
    temporal: WorkflowEnvironment, hv_worker: HostFactory
) -> None:
    async with hv_worker(libvirt_uri=QEMU, domain_prefix=PREFIX) as s:
        refs = {name: new_server(s) for name in ("orphan", "live", "young", "busy")}
        ids = {name: ref.instance_id for name, ref in refs.items()}
        blocker: WorkflowHandle[Any, Any] | None = None
        with no_guest_left(list(ids.values())):
            for ref in refs.values():
                assert await run(temporal.client, "LaunchInstance", ref) == s.host
            for name in ids:
                assert resources(s, ids[name]) == LIVE, name
            dom = libvirt.open(QEMU).lookupByUUIDString(ids["live"])
            assert dom.name() == f"{PREFIX}{ids['live']}"

            make_gone(s, ids["orphan"], age_s=HOUR)
            make_gone(s, ids["young"])
            make_gone(s, ids["busy"], age_s=HOUR)
            # an operation holds the busy one: a delete no worker has picked up yet
            blocker = await temporal.client.start_workflow(
                "DeleteInstance", new_delete_op(s, ids["busy"]),
                id=instance_workflow_id(ids["busy"]), task_queue="nobody-polls-this")
            try:
                first = await reconcile(temporal, s)
                assert counts(first) == (3, 3, 0, 2, 0), first.details
                # the network pass listed the host's networks and floating-IP NAT
                assert not [d for d in first.details if "not listed" in d], first.details
                assert resources(s, ids["orphan"]) == GONE
                assert not (s.host_dir() / "instances" / ids["orphan"]).exists()
                for name in ("live", "young", "busy"):
                    assert resources(s, ids[name]) == LIVE, name
                assert any(ids["orphan"] in line
                           and "removing its running domain, dir, claim" in line
                           for line in first.details)
                assert any(ids["young"] in line and "grace 600s" in line
                           for line in first.details)
                assert any(ids["busy"] in line and "an operation runs" in line
                           for line in first.details)

                again = await reconcile(temporal, s)  # idempotent: nothing more to do
                assert counts(again) == (0, 0, 0, 2, 0), again.details
                for name in ("live", "young", "busy"):
                    assert resources(s, ids[name]) == LIVE, name
            finally:
                await blocker.terminate("test over")

            # the operation ended and no grace: the other two orphans go, the live stays
            last = await reconcile(temporal, s, grace_s=0)
            assert counts(last) == (6, 6, 0, 0, 0), last.details
            assert resources(s, ids["young"]) == resources(s, ids["busy"]) == GONE
            assert resources(s, ids["live"]) == LIVE
            assert counts(await reconcile(temporal, s, grace_s=0)) == (0, 0, 0, 0, 0)

            # a live server whose domain vanished is reported, never "fixed"
            dom = libvirt.open(QEMU).lookupByUUIDString(ids["live"])
            dom.destroy()
            dom.undefine()
            reported = await reconcile(temporal, s, grace_s=0)
            assert counts(reported) == (0, 0, 1, 0, 0), reported.details
            assert f"instance {ids['live']} (active) is on {s.host} by its row, but no " \
                   "domain of it is defined there" in reported.details[0]
            assert resources(s, ids["live"]) == {**LIVE, "domain": None}

            await run(temporal.client, "DeleteInstance", new_delete_op(s, ids["live"]))
            assert resources(s, ids["live"]) == GONE


async def test_the_schedule_runs_the_reconciler(
    temporal: WorkflowEnvironment, hv_worker: HostFactory, wf_settings: Settings
) -> None:
    """What the control worker sets up at start: the schedule, and a run it starts
    (triggered, as `vmflow admin reconcile-ledger` does) over every host it knows:
    the live host listed, the dead ones of earlier tests skipped."""
    async with hv_worker() as s:
        await control.ensure_ledger_reconcile_schedule(temporal.client, wf_settings)
        handle = temporal.client.get_schedule_handle(LEDGER_RECONCILE_SCHEDULE)
        try:
            await handle.trigger()
            deadline = time.monotonic() + 60
            while not (desc := await handle.describe()).info.recent_actions:
                assert time.monotonic() < deadline, "the trigger started no run"
                await asyncio.sleep(0.2)
            action = desc.info.recent_actions[-1].action
            assert isinstance(action, ScheduleActionExecutionStartWorkflow)
            result = await temporal.client.get_workflow_handle(
                action.workflow_id, result_type=ReconcileLedgerResult).result()
            assert s.host not in result.skipped_hosts
            assert result.failed == 0
        finally:
            await handle.delete()
