"""Shares in the ledger and in the ledger reconciler, on real parts: the Temporal dev
server, the control worker on SQLite, a storage host of the test's own (a btrfs pool
and nfs-ganesha on a temporary home, the real storage worker).

Every share and snapshot is ledgered before it is made and forgotten once it is gone.
Shares are then made orphans the way a lost DB row leaves them (the share row and its
rules deleted, nothing else changed): the reconciler must remove exactly the old
orphans' exports and subvolumes, leave the live share exported and the young orphan
for later, and change nothing when run again."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlmodel import col, delete, select
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.storage.ganesha import GaneshaExports
from activities.storage.share_pool import SharePool
from tests.workflows import share_rows
from tests.workflows.conftest import session
from tests.workflows.share_rows import (
    create_available,
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
from vmflow.contracts.reconcile import ReconcileLedgerRequest, ReconcileLedgerResult
from vmflow.contracts.shares import ShareAccessSync, ShareOp, ShareSnapshotOp
from vmflow.ganesha_config import exports_dir
from vmflow.models import Ledger, Share, ShareAccessRule, ShareSnapshot, now
from vmflow.names import CONTROL_QUEUE, share_access_workflow_id
from vmflow.settings import Settings

pytestmark = pytest.mark.usefixtures("control_worker")

HOUR = 3600.0
GRACE = 600.0


@pytest.fixture(scope="module")
def real_storage() -> Iterator[Settings]:
    with storage_host() as s:
        yield s


def ledger(wf: Settings, host: str) -> set[tuple[str, str]]:
    """The host's share and snapshot entries: (kind, id)."""
    with session(wf) as db_s:
        return {(e.kind, e.key) for e in db_s.exec(select(Ledger).where(
            Ledger.host == host, col(Ledger.kind).in_(("share", "share_snapshot"))))}


async def snapshot(client: Client, wf: Settings, host: str, share_id: str,
                   workflow: str = "CreateShareSnapshot", snap_id: str | None = None) -> str:
    """Take a snapshot (or, given DeleteShareSnapshot and its id, delete it) as the
    API would."""
    snap_id = snap_id or new_snapshot(wf, share_id)
    action = "snapshot_create" if workflow == "CreateShareSnapshot" else "snapshot_delete"
    op_id = new_op(wf, share_id, action, resource_id=snap_id)
    await run(client, workflow, ShareSnapshotOp(snap_id, share_id, op_id, host), share_id)
    assert op_row(wf, op_id).status == "succeeded"
    return snap_id


def lose_rows(wf: Settings, share_id: str | None = None, snap_id: str | None = None) -> None:
    """What a lost DB row leaves: the backend and the ledger as they were."""
    with session(wf) as db_s:
        if snap_id:
            db_s.exec(delete(ShareSnapshot).where(col(ShareSnapshot.id) == snap_id))
        if share_id:
            db_s.exec(delete(ShareAccessRule).where(col(ShareAccessRule.share_id) == share_id))
            db_s.exec(delete(Share).where(col(Share.id) == share_id))
        db_s.commit()


def make_old(wf: Settings, s: Settings, key: str, age_s: float = HOUR) -> None:
    """Every sign of life of a share (or snapshot) `age_s` old: its ledger entry, its
    subvolume's root, its export file."""
    with session(wf) as db_s:
        for e in db_s.exec(select(Ledger).where(Ledger.key == key)):
            e.created_at = now() - timedelta(seconds=age_s)
            db_s.add(e)
        db_s.commit()
    then = time.time() - age_s
    pool = SharePool(s)
    for path in (pool.shares / key, exports_dir(s) / f"{key}.conf"):
        if path.exists():
            os.utime(path, (then, then))


async def reconcile(env: WorkflowEnvironment, host: str,
                    grace_s: float = GRACE) -> ReconcileLedgerResult:
    result: ReconcileLedgerResult = await env.client.execute_workflow(
        "ReconcileLedger", ReconcileLedgerRequest([host], grace_s),
        id=f"reconcile-ledger-test-{uuid.uuid4().hex[:8]}", task_queue=CONTROL_QUEUE,
        result_type=ReconcileLedgerResult)
    assert f"storage.{host}" not in result.skipped_hosts, result.details
    return result


def counts(r: ReconcileLedgerResult) -> tuple[int, int, int, int, int]:
    return r.removed, r.forgotten, r.reported, r.deferred, r.failed


async def active_exports(s: Settings) -> set[int]:
    return set(await asyncio.to_thread(GaneshaExports(s).active_exports))


async def test_shares_and_snapshots_are_ledgered_until_gone(
        temporal: WorkflowEnvironment, wf_settings: Settings, real_storage: Settings) -> None:
    client, wf, s = temporal.client, wf_settings, real_storage
    host = s.storage_name
    async with real_worker(client, s) as pool:
        share_id = await create_available(client, s, wf)
        assert ledger(wf, host) == {("share", share_id)}
        snap_id = await snapshot(client, wf, host, share_id)
        kept = await snapshot(client, wf, host, share_id)
        assert ledger(wf, host) == {("share", share_id), ("share_snapshot", snap_id),
                                    ("share_snapshot", kept)}

        await snapshot(client, wf, host, share_id, "DeleteShareSnapshot", snap_id)
        assert ledger(wf, host) == {("share", share_id), ("share_snapshot", kept)}
        await share_rows.delete(client, s, wf, share_id, force=True)  # with its snapshot
        assert ledger(wf, host) == set()
        assert not pool.exists(share_id) and not pool.snapshot_path(kept).exists()

        # a create the pool refuses is undone, and its entry forgotten with it
        big = new_share(wf, host, 64)
        op_id = new_op(wf, big, "create")
        await fails(client, "CreateShare", ShareOp(big, op_id, host, 64), big)
        assert op_row(wf, op_id).status == "compensated"
        assert ledger(wf, host) == set()
        await share_rows.delete(client, s, wf, big)


async def test_reconciler_removes_old_share_orphans_and_nothing_else(
        temporal: WorkflowEnvironment, wf_settings: Settings, real_storage: Settings) -> None:
    client, wf, s = temporal.client, wf_settings, real_storage
    host = s.storage_name
    async with real_worker(client, s) as pool:
        # three 1 GiB shares fill the test's pool (thick provisioning)
        ids = {name: await create_available(client, s, wf)
               for name in ("orphan", "live", "young")}
        # the orphan had a client: its export lets one in, as before its row was lost
        new_rule(wf, ids["orphan"], "10.254.0.4")
        await sync_access(client, ids["orphan"], host)
        assert await settled(client, ids["orphan"]) == 1
        assert "10.254.0.4" in (exported_clients(s, ids["orphan"]) or "")
        # a snapshot's root is a copy of its share's: an old share root makes it old
        then = time.time() - HOUR
        os.utime(pool.share_path(ids["live"]), (then, then))
        snap_orphan = await snapshot(client, wf, host, ids["live"])
        snap_live = await snapshot(client, wf, host, ids["live"])
        export_ids = {name: GaneshaExports(s).export_id(i) for name, i in ids.items()}
        assert set(export_ids.values()) <= await active_exports(s)

        lose_rows(wf, ids["orphan"])
        make_old(wf, s, ids["orphan"])
        lose_rows(wf, ids["young"])
        lose_rows(wf, snap_id=snap_orphan)
        make_old(wf, s, snap_orphan)

        first = await reconcile(temporal, host)
        # the orphan's subvolume and export, the snapshot's subvolume; their entries
        assert counts(first) == (3, 2, 0, 1, 0), first.details
        assert not pool.exists(ids["orphan"]) and not pool.export_path(ids["orphan"]).exists()
        assert exported_clients(s, ids["orphan"]) is None
        assert not pool.snapshot_path(snap_orphan).exists()
        assert export_ids["orphan"] not in await active_exports(s)
        for name in ("live", "young"):
            assert pool.exists(ids[name]) and exported_clients(s, ids[name]) is not None, name
            assert export_ids[name] in await active_exports(s), name
        assert pool.snapshot_path(snap_live).exists()
        live = share_row(wf, ids["live"])
        assert live and live.status == "available"
        assert ledger(wf, host) == {("share", ids["live"]), ("share", ids["young"]),
                                    ("share_snapshot", snap_live)}
        lines = "\n".join(first.details)
        assert f"share {ids['orphan']} is unknown to the database" in lines
        assert "removing its subvolume and export" in lines
        assert f"share snapshot {snap_orphan} is unknown to the database" in lines
        assert f"share {ids['young']} is unknown to the database; its last sign of life" in lines

        again = await reconcile(temporal, host)  # idempotent: nothing more to do
        assert counts(again) == (0, 0, 0, 1, 0), again.details
        assert pool.exists(ids["young"]) and pool.exists(ids["live"])

        # no grace: the young orphan goes too, the live shares stay
        last = await reconcile(temporal, host, grace_s=0)
        assert counts(last) == (2, 1, 0, 0, 0), last.details
        assert not pool.exists(ids["young"]) and exported_clients(s, ids["young"]) is None
        assert pool.exists(ids["live"]) and export_ids["live"] in await active_exports(s)
        assert counts(await reconcile(temporal, host, grace_s=0)) == (0, 0, 0, 0, 0)

        await share_rows.delete(client, s, wf, ids["live"], force=True)  # and its snapshot
        assert ledger(wf, host) == set()


def age_rules(wf: Settings, share_id: str, age_s: float = HOUR) -> None:
    with session(wf) as db_s:
        for rule in db_s.exec(select(ShareAccessRule).where(
                ShareAccessRule.share_id == share_id)):
            rule.updated_at = now() - timedelta(seconds=age_s)
            db_s.add(rule)
        db_s.commit()


async def test_reconciler_signals_a_lost_access_sync_again(
        temporal: WorkflowEnvironment, wf_settings: Settings, real_storage: Settings) -> None:
    """A rule committed by an API that died before it signalled stays queued: nothing
    runs to move it. Once it is older than the grace, the reconciler signals the
    access sync, the rule becomes active and ganesha lets the client in."""
    client, wf, s = temporal.client, wf_settings, real_storage
    host = s.storage_name
    async with real_worker(client, s):
        share_id = await create_available(client, s, wf)
        rule_id = new_rule(wf, share_id, "10.254.0.4")  # committed; the signal never sent

        young = await reconcile(temporal, host)
        assert young.repaired == 0, young.details
        assert rules_of(wf, share_id)[rule_id].state == "queued_to_apply"

        age_rules(wf, share_id)
        # an access sync that runs (none polls its queue here) will pick the rule up
        blocker = await client.start_workflow(
            "SyncShareAccess", ShareAccessSync(share_id, host),
            id=share_access_workflow_id(share_id), task_queue="nobody-polls-this")
        try:
            busy = await reconcile(temporal, host)
            assert busy.repaired == 0, busy.details
            assert rules_of(wf, share_id)[rule_id].state == "queued_to_apply"
        finally:
            await blocker.terminate("test over")

        lost = await reconcile(temporal, host)
        assert (lost.repaired, lost.failed) == (1, 0), lost.details
        assert any(f"share {share_id}: its access rules have been in flight" in line
                   for line in lost.details)
        assert await settled(client, share_id) >= 1
        assert rules_of(wf, share_id)[rule_id].state == "active"
        assert "10.254.0.4" in (exported_clients(s, share_id) or "")
        row = share_row(wf, share_id)
        assert row and row.access_rules_status == "active"

        again = await reconcile(temporal, host)
        assert again.repaired == 0, again.details
        await share_rows.delete(client, s, wf, share_id)
