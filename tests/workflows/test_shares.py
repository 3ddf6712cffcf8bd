"""Share workflows end to end on real parts: the Temporal dev server, the control
worker on SQLite, and a storage host of the test's own (a btrfs pool and nfs-ganesha
on a temporary home, the real storage worker). Failures come from the real backend
too (a share larger than the pool, a shrink below what the share holds, a share the
pool does not have)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.storage.ganesha import GaneshaExports
from activities.storage.share_pool import GIB
from tests.workflows.conftest import session
from tests.workflows.share_rows import (
    create_available,
    delete,
    deny,
    exported_clients,
    fails,
    new_op,
    new_rule,
    new_share,
    new_snapshot,
    op_row,
    real_worker,
    rules_of,
    run,
    settled,
    share_row,
    storage_host,
    sync_access,
)
from vmflow.contracts.shares import ShareOp, ShareResizeOp, ShareSnapshotOp, StorageActs
from vmflow.models import Operation, ShareSnapshot
from vmflow.names import CONTROL_QUEUE, share_workflow_id
from vmflow.settings import Settings

pytestmark = pytest.mark.usefixtures("control_worker")


@pytest.fixture(scope="module")
def real_storage() -> Iterator[Settings]:
    with storage_host() as s:
        yield s


async def test_create_and_delete_on_btrfs_and_ganesha(
        temporal: WorkflowEnvironment, wf_settings: Settings, real_storage: Settings) -> None:
    client, wf, s = temporal.client, wf_settings, real_storage
    async with real_worker(client, s) as pool:
        share_id = new_share(wf, s.storage_name, 1)
        op_id = new_op(wf, share_id, "create")
        locations = await run(client, "CreateShare",
                              ShareOp(share_id, op_id, s.storage_name, 1), share_id)
        share = share_row(wf, share_id)
        assert share and share.status == "available" and share.fault is None
        assert share.export_locations == locations == [
            f"{s.nfs_address}:{pool.export_path(share_id)}"]
        assert op_row(wf, op_id).status == "succeeded"
        assert pool.exists(share_id) and pool.limit_bytes(share_id) == GIB
        export_id = GaneshaExports(s).export_id(share_id)
        assert export_id in await asyncio.to_thread(GaneshaExports(s).active_exports)

        await delete(client, s, wf, share_id)
        assert share_row(wf, share_id) is None
        assert not pool.exists(share_id) and exported_clients(s, share_id) is None
        assert export_id not in await asyncio.to_thread(GaneshaExports(s).active_exports)


async def test_create_larger_than_the_pool_leaves_nothing(
        temporal: WorkflowEnvironment, wf_settings: Settings, real_storage: Settings) -> None:
    client, wf, s = temporal.client, wf_settings, real_storage
    async with real_worker(client, s) as pool:
        share_id = new_share(wf, s.storage_name, 64)
        op_id = new_op(wf, share_id, "create")
        cause = await fails(client, "CreateShare",
                            ShareOp(share_id, op_id, s.storage_name, 64), share_id)
        share = share_row(wf, share_id)
        assert share and share.status == "error" and share.fault and share.fault in cause
        assert op_row(wf, op_id).status == "compensated"
        assert not pool.exists(share_id) and exported_clients(s, share_id) is None
        assert f"shares/{share_id}" not in pool.qgroups()


async def test_extend_then_shrink_below_used_is_refused(
        temporal: WorkflowEnvironment, wf_settings: Settings, real_storage: Settings) -> None:
    client, wf, s = temporal.client, wf_settings, real_storage
    async with real_worker(client, s) as pool:
        share_id = await create_available(client, s, wf, 1)
        op_id = new_op(wf, share_id, "extend")
        await run(client, "ExtendShare", ShareResizeOp(share_id, op_id, s.storage_name, 2),
                  share_id)
        share = share_row(wf, share_id)
        assert share and (share.status, share.size_gb) == ("available", 2)
        assert pool.limit_bytes(share_id) == 2 * GIB

        # preallocated extents count against the qgroup like written ones
        fd = os.open(pool.share_path(share_id) / "bulk", os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.posix_fallocate(fd, 0, GIB + 200 * (1 << 20))
        finally:
            os.close(fd)
        op_id = new_op(wf, share_id, "shrink")
        cause = await fails(client, "ShrinkShare",
                            ShareResizeOp(share_id, op_id, s.storage_name, 1), share_id)
        share = share_row(wf, share_id)
        assert share and (share.status, share.size_gb) == ("available", 2)
        assert share.fault and share.fault.startswith("shrink to 1 GiB failed: ")
        assert share.fault.split(": ", 1)[1] in cause
        assert op_row(wf, op_id).status == "failed"
        assert pool.limit_bytes(share_id) == 2 * GIB
        await delete(client, s, wf, share_id)


async def test_access_rules_allow_concurrently_refuse_and_deny(
        temporal: WorkflowEnvironment, wf_settings: Settings, real_storage: Settings) -> None:
    client, wf, s = temporal.client, wf_settings, real_storage
    host = s.storage_name
    async with real_worker(client, s) as pool:
        share_id = await create_available(client, s, wf, 1)

        async def allow(access_to: str, level: str) -> str:
            rule_id = new_rule(wf, share_id, access_to, level=level)
            await sync_access(client, share_id, host)
            return rule_id

        # two requests at once: both queue on one reconcile, neither is lost
        rw, ro = await asyncio.gather(allow("10.254.0.4", "rw"), allow("10.254.0.0/24", "ro"))
        assert await settled(client, share_id) in (1, 2)
        rules = rules_of(wf, share_id)
        assert {r.state for r in rules.values()} == {"active"}, rules
        share = share_row(wf, share_id)
        assert share and share.access_rules_status == "active"
        conf = exported_clients(s, share_id) or ""
        assert "Clients = 10.254.0.4; Access_Type = RW" in conf
        assert "Clients = 10.254.0.0/24; Access_Type = RO" in conf

        # ganesha (FSAL VFS) cannot enforce user or cert rules: error, with why
        user = new_rule(wf, share_id, "alice", access_type="user")
        cert = new_rule(wf, share_id, "client.example.com", access_type="cert")
        await sync_access(client, share_id, host)
        await settled(client, share_id)
        rules = rules_of(wf, share_id)
        for rule_id, kind in ((user, "user"), (cert, "cert")):
            assert rules[rule_id].state == "error"
            assert f"{kind} access needs" in (rules[rule_id].fault or "")
        assert rules[rw].state == rules[ro].state == "active"
        share = share_row(wf, share_id)
        assert share and share.access_rules_status == "error"

        # deny: the rows go, and so does the client from the export
        for rule_id in (rw, user, cert):
            deny(wf, share_id, rule_id)
        await sync_access(client, share_id, host)
        await settled(client, share_id)
        assert set(rules_of(wf, share_id)) == {ro}
        share = share_row(wf, share_id)
        assert share and share.access_rules_status == "active"
        conf = exported_clients(s, share_id) or ""
        assert "10.254.0.4" not in conf and "10.254.0.0/24" in conf

        # force delete of a share with an export, a rule and a snapshot: nothing left
        snap_id = new_snapshot(wf, share_id)
        op_id = new_op(wf, share_id, "snapshot_create", resource_id=snap_id)
        await run(client, "CreateShareSnapshot",
                  ShareSnapshotOp(snap_id, share_id, op_id, host), share_id)
        await delete(client, s, wf, share_id, force=True)
        assert share_row(wf, share_id) is None and rules_of(wf, share_id) == {}
        assert not pool.exists(share_id) and not pool.snapshot_path(snap_id).exists()
        assert exported_clients(s, share_id) is None


async def test_failures_of_the_backend_leave_rows_in_error_never_deleted(
        temporal: WorkflowEnvironment, wf_settings: Settings, real_storage: Settings) -> None:
    """A share the pool does not hold (its row says available): the snapshot is
    refused and undone, its row stays in error; an access round fails for good and
    its rule goes to error with the reason."""
    client, wf, s = temporal.client, wf_settings, real_storage
    host = s.storage_name
    async with real_worker(client, s) as pool:
        share_id = new_share(wf, host, status="available")
        snap_id = new_snapshot(wf, share_id)
        op_id = new_op(wf, share_id, "snapshot_create", resource_id=snap_id)
        cause = await fails(client, "CreateShareSnapshot",
                            ShareSnapshotOp(snap_id, share_id, op_id, host), share_id)
        assert "not in the pool" in cause
        with session(wf) as db_s:
            snap = db_s.get(ShareSnapshot, snap_id)
            assert snap and snap.status == "error" and snap.fault and snap.fault in cause
        assert op_row(wf, op_id).status == "compensated"
        assert not pool.snapshot_path(snap_id).exists()
        share = share_row(wf, share_id)
        assert share and (share.status, share.fault) == ("available", None)  # untouched

        rule_id = new_rule(wf, share_id, "10.254.0.4")
        await sync_access(client, share_id, host)
        assert await settled(client, share_id) == 1
        rule = rules_of(wf, share_id)[rule_id]
        assert rule.state == "error" and "not in the pool" in (rule.fault or "")
        share = share_row(wf, share_id)
        assert share and share.access_rules_status == "error"


async def test_snapshot_create_share_from_it_and_delete(
        temporal: WorkflowEnvironment, wf_settings: Settings, real_storage: Settings) -> None:
    client, wf, s = temporal.client, wf_settings, real_storage
    host = s.storage_name
    async with real_worker(client, s) as pool:
        share_id = await create_available(client, s, wf, 1)
        (pool.share_path(share_id) / "marker").write_text("before the snapshot")
        snap_id = new_snapshot(wf, share_id)
        op_id = new_op(wf, share_id, "snapshot_create", resource_id=snap_id)
        await run(client, "CreateShareSnapshot",
                  ShareSnapshotOp(snap_id, share_id, op_id, host), share_id)
        with session(wf) as db_s:
            snap = db_s.get(ShareSnapshot, snap_id)
            assert snap and snap.status == "available"
        assert op_row(wf, op_id).status == "succeeded"
        (pool.share_path(share_id) / "marker").write_text("after")
        assert (pool.snapshot_path(snap_id) / "marker").read_text() == "before the snapshot"

        clone_id = await create_available(client, s, wf, 1, snapshot_id=snap_id)
        assert (pool.share_path(clone_id) / "marker").read_text() == "before the snapshot"

        op_id = new_op(wf, share_id, "snapshot_delete", resource_id=snap_id)
        await run(client, "DeleteShareSnapshot",
                  ShareSnapshotOp(snap_id, share_id, op_id, host), share_id)
        with session(wf) as db_s:
            assert db_s.get(ShareSnapshot, snap_id) is None
        assert not pool.snapshot_path(snap_id).exists()
        for sid in (clone_id, share_id):
            await delete(client, s, wf, sid)


async def test_force_delete_of_a_share_stuck_in_creating(
        temporal: WorkflowEnvironment, wf_settings: Settings, real_storage: Settings) -> None:
    """No storage worker polls while the create waits: the admin's force_delete
    terminates it (as the API does) and deletes with the same workflow id, on a
    backend that holds nothing of the share; every row goes."""
    client, wf, s = temporal.client, wf_settings, real_storage
    host = s.storage_name
    share_id = new_share(wf, host)
    snap_id = new_snapshot(wf, share_id, status="error")
    new_rule(wf, share_id, "10.254.0.9")
    create_op = new_op(wf, share_id, "create")
    handle = await client.start_workflow(
        "CreateShare", ShareOp(share_id, create_op, host, 1), id=share_workflow_id(share_id),
        task_queue=CONTROL_QUEUE)
    for _ in range(100):  # until the create waits for the storage worker
        desc = await handle.describe()
        pending = desc.raw_description.pending_activities
        if pending and pending[0].activity_type.name == StorageActs.CREATE_SHARE:
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("the create never reached its storage step")
    await handle.terminate(reason="force_delete")
    share = share_row(wf, share_id)
    assert share and share.status == "creating"  # stuck: a terminated run settles nothing

    async with real_worker(client, s) as pool:
        await delete(client, s, wf, share_id, force=True)
        assert not pool.exists(share_id) and exported_clients(s, share_id) is None
    assert share_row(wf, share_id) is None
    assert rules_of(wf, share_id) == {}
    with session(wf) as db_s:
        assert db_s.get(ShareSnapshot, snap_id) is None
        create = db_s.get(Operation, create_op)
        assert create is not None  # Operation rows stay as history
