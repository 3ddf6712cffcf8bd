"""shelve and unshelve of a real guest (qemu:///system, TCG here, the tiny image with
its agent): what the guest wrote survives a shelve and unshelve on its host and a
shelve-offload and unshelve from the shelve image; while shelved or offloaded the
power-state reconciler and the ledger reconciler leave the server alone."""

from __future__ import annotations

import os
import uuid

import libvirt
import pytest
from temporalio.testing import WorkflowEnvironment

from tests.integration import guest
from tests.integration.guest import sh
from tests.workflows.conftest import HostFactory, new_delete_op, new_server, run
from tests.workflows.test_reconcile_ledger import no_guest_left, reconcile
from tests.workflows.test_shelve import (
    NOTHING,
    PLACED,
    check_shelve_image,
    image,
    on_host,
    row,
    shelve,
    unshelve,
)
from vmflow.contracts.actions import InstanceIds, SyncResult
from vmflow.names import CONTROL_QUEUE

QEMU = "qemu:///system"
PREFIX = f"vmflowsh{os.getpid()}-"


async def power_sync(env: WorkflowEnvironment, iid: str) -> SyncResult:
    result: SyncResult = await env.client.execute_workflow(
        "PowerSync", InstanceIds([iid]), id=f"power-sync-test-{uuid.uuid4().hex[:8]}",
        task_queue=CONTROL_QUEUE, result_type=SyncResult)
    return result


async def test_the_guests_data_survives_shelve_offload_and_unshelve(
        temporal: WorkflowEnvironment, hv_worker: HostFactory,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(guest, "HOSTS", [QEMU])  # where sh() finds the guest
    async with hv_worker(libvirt_uri=QEMU, domain_prefix=PREFIX) as s:
        ref = new_server(s, image="tiny")
        iid = ref.instance_id
        with no_guest_left([iid]):
            await run(temporal.client, "LaunchInstance", ref)
            first = uuid.uuid4().hex
            assert sh(iid, f"echo {first} > /kept.txt && sync")[0] == 0

            # shelved on its host: the domain is off on purpose
            await shelve(temporal, s, iid, offload_after_s=-1)
            inst = row(s, iid)
            assert (inst.vm_state, inst.host) == ("shelved", s.host)
            img = check_shelve_image(s, inst)
            assert img.properties["snapshot_source"] == "stopped"  # a clean stop first
            assert not libvirt.open(QEMU).lookupByUUIDString(iid).isActive()
            assert (await power_sync(temporal, iid)).fixed == []
            assert row(s, iid).vm_state == "shelved"
            swept = await reconcile(temporal, s, grace_s=0)
            assert not [d for d in swept.details if iid in d], swept.details

            await unshelve(temporal, s, iid)
            assert row(s, iid).vm_state == "active"
            assert image(s, img.id).status == "deleted"
            assert sh(iid, "cat /kept.txt")[1].strip() == first

            # offloaded at once: nothing left on the host, then spawned from the image
            second = uuid.uuid4().hex
            assert sh(iid, f"echo {second} > /later.txt && sync")[0] == 0
            await shelve(temporal, s, iid, offload_after_s=0)
            inst = row(s, iid)
            assert (inst.vm_state, inst.host) == ("shelved_offloaded", None)
            img = check_shelve_image(s, inst)
            assert on_host(s, iid, QEMU) == NOTHING
            swept = await reconcile(temporal, s, grace_s=0)
            assert not [d for d in swept.details if iid in d], swept.details

            await unshelve(temporal, s, iid)
            inst = row(s, iid)
            assert (inst.vm_state, inst.host, inst.shelved_image_id) == ("active", s.host, None)
            assert on_host(s, iid, QEMU) == PLACED
            assert image(s, img.id).status == "deleted"
            assert sh(iid, "cat /kept.txt /later.txt")[1].split() == [first, second]

            await run(temporal.client, "DeleteInstance", new_delete_op(s, iid))
            assert on_host(s, iid, QEMU) == NOTHING
