"""Share workflows on the real Temporal dev server and the real control worker (real
SQLite). Failure paths use storage workers whose activities refuse (real activity
functions that raise, so they test the workflows' reaction, not a backend) or no
storage worker at all (a dead one: schedule_to_start)."""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select
from temporalio import activity
from temporalio.client import Client, WorkflowFailureError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.ganesha import GaneshaExports
from activities.share_pool import GIB, SharePool
from tests.storage.conftest import teardown_home
from tests.workflows.conftest import session
from vmflow import stack
from vmflow.ganesha_config import NFS_PORT, exports_dir
from vmflow.models import (
    Operation,
    Project,
    Share,
    ShareAccessRule,
    ShareSnapshot,
    ShareType,
    User,
)
from vmflow.names import (
    CONTROL_QUEUE,
    share_access_workflow_id,
    share_workflow_id,
    storage_queue,
)
from vmflow.settings import Settings
from vmflow.share_contracts import (
    RULES_CHANGED_SIGNAL,
    AccessApplied,
    ApplyAccess,
    ShareAccessSync,
    ShareErrors,
    ShareExported,
    ShareOp,
    ShareResize,
    ShareResizeOp,
    ShareSnapshotOp,
    ShareSpec,
    SnapshotSpec,
    StorageActs,
)
from workers import storage as storage_worker_process

pytestmark = pytest.mark.usefixtures("control_worker")


# ---- rows as the API writes them before it starts a workflow ----------------------

def new_share(s: Settings, host: str, size_gb: int = 1, status: str = "creating") -> str:
    with session(s) as db_s:
        project = db_s.exec(select(Project)).first()
        user = db_s.exec(select(User)).first()
        assert project and user
        stype = db_s.exec(select(ShareType).where(ShareType.name == "wf-shares")).first()
        if stype is None:
            stype = ShareType(name="wf-shares", extra_specs={"snapshot_support": "True"})
            db_s.add(stype)
            db_s.commit()
        share = Share(name="wf", project_id=project.id, user_id=user.id, size_gb=size_gb,
                      share_type_id=stype.id, host=host, status=status)
        db_s.add(share)
        db_s.commit()
        return share.id


def new_op(s: Settings, share_id: str, action: str, resource_id: str | None = None) -> str:
    with session(s) as db_s:
        share = db_s.get(Share, share_id)
        assert share
        op = Operation(resource_type="share" if resource_id is None else "share_snapshot",
                       resource_id=resource_id or share_id, action=action,
                       workflow_id=share_workflow_id(share_id), project_id=share.project_id,
                       user_id=share.user_id)
        db_s.add(op)
        db_s.commit()
        return op.id


def new_snapshot(s: Settings, share_id: str, status: str = "creating") -> str:
    with session(s) as db_s:
        share = db_s.get(Share, share_id)
        assert share
        snap = ShareSnapshot(share_id=share_id, project_id=share.project_id,
                             user_id=share.user_id, name="snap", size_gb=share.size_gb,
                             status=status)
        db_s.add(snap)
        db_s.commit()
        return snap.id


def new_rule(s: Settings, share_id: str, access_to: str, access_type: str = "ip",
             level: str = "rw") -> str:
    with session(s) as db_s:
        rule = ShareAccessRule(share_id=share_id, access_type=access_type,
                               access_to=access_to, access_level=level)
        share = db_s.get(Share, share_id)
        assert share
        share.access_rules_status = "syncing"
        db_s.add(rule)
        db_s.add(share)
        db_s.commit()
        return rule.id


def share_row(s: Settings, share_id: str) -> Share | None:
    with session(s) as db_s:
        return db_s.get(Share, share_id)


def op_row(s: Settings, op_id: str) -> Operation:
    with session(s) as db_s:
        op = db_s.get(Operation, op_id)
        assert op
        return op


def rules_of(s: Settings, share_id: str) -> dict[str, ShareAccessRule]:
    with session(s) as db_s:
        return {r.id: r for r in db_s.exec(select(ShareAccessRule).where(
            ShareAccessRule.share_id == share_id)).all()}


async def run(client: Client, workflow: str, arg: Any, share_id: str) -> Any:
    return await client.execute_workflow(workflow, arg, id=share_workflow_id(share_id),
                                         task_queue=CONTROL_QUEUE)


async def fails(client: Client, workflow: str, arg: Any, share_id: str) -> str:
    with pytest.raises(WorkflowFailureError) as exc:
        await run(client, workflow, arg, share_id)
    return str(exc.value.cause)


@pytest.fixture
def host() -> str:
    return f"st{uuid.uuid4().hex[:8]}"


# ---- storage workers that refuse --------------------------------------------------

class Refusing:
    """Storage activities that record their calls and refuse the forward steps named
    in `refuse` with a typed, non-retryable error (what a real backend says when it
    cannot), and succeed at the removals (gone is success)."""

    def __init__(self, refuse: dict[str, tuple[str, str]]):
        self.refuse = refuse
        self.calls: list[tuple[str, Any]] = []

    def _called(self, name: str, arg: Any) -> None:
        self.calls.append((name, arg))
        if name in self.refuse:
            message, kind = self.refuse[name]
            raise ApplicationError(message, type=kind, non_retryable=True)

    def names(self) -> list[str]:
        return [n for n, _ in self.calls]

    @activity.defn(name=StorageActs.CREATE_SHARE)
    async def create_share(self, spec: ShareSpec) -> ShareExported:
        self._called(StorageActs.CREATE_SHARE, spec)
        raise ApplicationError("only refusals here", non_retryable=True)

    @activity.defn(name=StorageActs.DELETE_SHARE)
    async def delete_share(self, spec: ShareSpec) -> None:
        self._called(StorageActs.DELETE_SHARE, spec)

    @activity.defn(name=StorageActs.RESIZE_SHARE)
    async def resize_share(self, r: ShareResize) -> None:
        self._called(StorageActs.RESIZE_SHARE, r)

    @activity.defn(name=StorageActs.APPLY_ACCESS)
    async def apply_access(self, a: ApplyAccess) -> AccessApplied:
        self._called(StorageActs.APPLY_ACCESS, a)
        raise ApplicationError("only refusals here", non_retryable=True)

    @activity.defn(name=StorageActs.CREATE_SNAPSHOT)
    async def create_snapshot(self, spec: SnapshotSpec) -> None:
        self._called(StorageActs.CREATE_SNAPSHOT, spec)

    @activity.defn(name=StorageActs.DELETE_SNAPSHOT)
    async def delete_snapshot(self, spec: SnapshotSpec) -> None:
        self._called(StorageActs.DELETE_SNAPSHOT, spec)

    def all(self) -> list[Callable[..., Any]]:
        return [self.create_share, self.delete_share, self.resize_share, self.apply_access,
                self.create_snapshot, self.delete_snapshot]


@asynccontextmanager
async def storage_worker(client: Client, host: str, acts: Refusing) -> AsyncIterator[Refusing]:
    async with Worker(client, task_queue=storage_queue(host), activities=acts.all()):
        yield acts


# ---- failure paths ----------------------------------------------------------------

async def test_create_refused_by_the_backend_is_compensated(
        temporal: WorkflowEnvironment, wf_settings: Settings, host: str) -> None:
    client, s = temporal.client, wf_settings
    share_id = new_share(s, host, size_gb=3)
    op_id = new_op(s, share_id, "create")
    acts = Refusing({StorageActs.CREATE_SHARE: ("pool has 1 GiB free", ShareErrors.POOL_FULL)})
    async with storage_worker(client, host, acts):
        cause = await fails(client, "CreateShare", ShareOp(share_id, op_id, host, 3), share_id)
    assert "pool has 1 GiB free" in cause
    # the undo ran after the refused step, for the same share
    assert acts.names() == [StorageActs.CREATE_SHARE, StorageActs.DELETE_SHARE]
    assert acts.calls[1][1] == ShareSpec(share_id, 3, None, None)
    share = share_row(s, share_id)
    assert share and share.status == "error" and share.fault == "pool has 1 GiB free"
    assert share.export_locations == []
    op = op_row(s, op_id)
    assert (op.status, op.last_error) == ("compensated", "pool has 1 GiB free")
    assert op.finished_at is not None


async def test_create_with_a_dead_storage_worker_fails_in_seconds(
        temporal: WorkflowEnvironment, wf_settings: Settings, host: str) -> None:
    """No worker polls storage.<host>: the step is not picked up (schedule_to_start),
    nor is its undo, so the share is error and the operation failed, saying why."""
    client, s = temporal.client, wf_settings
    share_id = new_share(s, host)
    op_id = new_op(s, share_id, "create")
    started = asyncio.get_running_loop().time()
    cause = await fails(client, "CreateShare", ShareOp(share_id, op_id, host, 1), share_id)
    assert asyncio.get_running_loop().time() - started < 30
    assert f"storage host {host} did not pick up" in cause
    share = share_row(s, share_id)
    assert share and share.status == "error" and share.fault
    assert "deleting the share retries it" in share.fault
    assert op_row(s, op_id).status == "failed"


async def test_shrink_below_used_is_refused_and_keeps_the_old_size(
        temporal: WorkflowEnvironment, wf_settings: Settings, host: str) -> None:
    client, s = temporal.client, wf_settings
    share_id = new_share(s, host, size_gb=4, status="available")
    op_id = new_op(s, share_id, "shrink")
    acts = Refusing({StorageActs.RESIZE_SHARE: ("the share holds 3.2 GiB",
                                                ShareErrors.SHRINK_BELOW_USED)})
    async with storage_worker(client, host, acts):
        cause = await fails(client, "ShrinkShare", ShareResizeOp(share_id, op_id, host, 2),
                            share_id)
    assert "the share holds 3.2 GiB" in cause
    assert acts.names() == [StorageActs.RESIZE_SHARE]  # a refusal changed nothing to undo
    share = share_row(s, share_id)
    assert share and (share.status, share.size_gb) == ("available", 4)
    assert share.fault == "shrink to 2 GiB failed: the share holds 3.2 GiB"
    op = op_row(s, op_id)
    assert (op.status, op.last_error) == ("failed", share.fault)


async def test_extend_with_a_dead_storage_worker_stays_available(
        temporal: WorkflowEnvironment, wf_settings: Settings, host: str) -> None:
    client, s = temporal.client, wf_settings
    share_id = new_share(s, host, size_gb=1, status="available")
    op_id = new_op(s, share_id, "extend")
    await fails(client, "ExtendShare", ShareResizeOp(share_id, op_id, host, 2), share_id)
    share = share_row(s, share_id)
    assert share and (share.status, share.size_gb) == ("available", 1)
    assert share.fault and "did not pick up" in share.fault
    assert op_row(s, op_id).status == "failed"


async def test_snapshot_failing_is_error_never_deleted(
        temporal: WorkflowEnvironment, wf_settings: Settings, host: str) -> None:
    client, s = temporal.client, wf_settings
    share_id = new_share(s, host, status="available")
    snap_id = new_snapshot(s, share_id)
    op_id = new_op(s, share_id, "snapshot_create", resource_id=snap_id)
    acts = Refusing({StorageActs.CREATE_SNAPSHOT: ("read-only pool", "HostStorageError")})
    async with storage_worker(client, host, acts):
        await fails(client, "CreateShareSnapshot",
                    ShareSnapshotOp(snap_id, share_id, op_id, host), share_id)
    assert acts.names() == [StorageActs.CREATE_SNAPSHOT, StorageActs.DELETE_SNAPSHOT]
    with session(s) as db_s:
        snap = db_s.get(ShareSnapshot, snap_id)
        assert snap and (snap.status, snap.fault) == ("error", "read-only pool")
    assert op_row(s, op_id).status == "compensated"
    share = share_row(s, share_id)
    assert share and share.status == "available"  # the share itself is untouched


async def test_access_round_failing_for_good_puts_its_rules_in_error(
        temporal: WorkflowEnvironment, wf_settings: Settings, host: str) -> None:
    client, s = temporal.client, wf_settings
    share_id = new_share(s, host, status="available")
    rule_id = new_rule(s, share_id, "10.254.0.4")
    acts = Refusing({StorageActs.APPLY_ACCESS: ("ganesha is not answering on D-Bus",
                                                "HostStorageError")})
    async with storage_worker(client, host, acts):
        rounds = await client.execute_workflow(
            "SyncShareAccess", ShareAccessSync(share_id, host),
            id=share_access_workflow_id(share_id), task_queue=CONTROL_QUEUE,
            start_signal=RULES_CHANGED_SIGNAL)
    assert rounds == 1
    rule = rules_of(s, share_id)[rule_id]
    assert (rule.state, rule.fault) == ("error", "ganesha is not answering on D-Bus")
    share = share_row(s, share_id)
    assert share and share.access_rules_status == "error"
    assert acts.calls[0][1].rules[0].access_to == "10.254.0.4"


async def test_delete_with_snapshots_is_refused_unless_forced(
        temporal: WorkflowEnvironment, wf_settings: Settings, host: str) -> None:
    client, s = temporal.client, wf_settings
    share_id = new_share(s, host, status="available")
    new_snapshot(s, share_id, status="available")
    op_id = new_op(s, share_id, "delete")
    cause = await fails(client, "DeleteShare", ShareOp(share_id, op_id, host), share_id)
    assert "has 1 snapshot(s)" in cause
    share = share_row(s, share_id)
    assert share and share.status == "available"  # nothing changed
    assert op_row(s, op_id).status == "failed"


async def test_delete_with_a_dead_storage_worker_is_error_deleting(
        temporal: WorkflowEnvironment, wf_settings: Settings, host: str) -> None:
    client, s = temporal.client, wf_settings
    share_id = new_share(s, host, status="available")
    op_id = new_op(s, share_id, "delete")
    await fails(client, "DeleteShare", ShareOp(share_id, op_id, host), share_id)
    share = share_row(s, share_id)
    assert share and share.status == "error_deleting"
    assert share.fault and share.fault.startswith("delete failed: the storage host")
    assert op_row(s, op_id).status == "failed"


# ---- the real storage side: btrfs pool, nfs-ganesha, the storage worker ---------------

NFS_PORT_WAIT_S = 300  # one NFS server per machine: another test run's may be finishing


@pytest.fixture(scope="module")
def real_storage() -> Iterator[Settings]:
    """A storage host of its own (temporary home: pool, ganesha on its own bus)."""
    deadline = time.monotonic() + NFS_PORT_WAIT_S
    while stack.port_listeners(NFS_PORT):
        if time.monotonic() > deadline:
            pytest.fail(f"NFS port {NFS_PORT} stayed busy for {NFS_PORT_WAIT_S} s "
                        "(another ganesha runs on this machine)")
        time.sleep(1)
    # short: the bus socket's path must fit a unix socket address
    home = Path(tempfile.mkdtemp(prefix="vmflow-ws-", dir="/var/tmp"))
    s = Settings(home=home, host="unused", storage_host=f"ws{uuid.uuid4().hex[:6]}",
                 share_pool_gb=4)
    try:
        stack.ensure_component(s, "ganesha-dbus")
        stack.ensure_component(s, "ganesha")
        SharePool(s).ensure()
        yield s
    finally:  # rpcbind stays: machine-wide, as `make down` leaves it
        stack.stop_component(s, "ganesha")
        stack.stop_component(s, "ganesha-dbus")
        teardown_home(home)


@asynccontextmanager
async def real_worker(client: Client, s: Settings) -> AsyncIterator[SharePool]:
    with ThreadPoolExecutor(storage_worker_process.MAX_ACTIVITIES) as ex:
        async with storage_worker_process.build(client, s, ex):
            yield SharePool(s)


def exported_clients(s: Settings, share_id: str) -> str | None:
    """The share's export file as ganesha loads it (None: not exported)."""
    conf = exports_dir(s) / f"{share_id}.conf"
    return conf.read_text() if conf.exists() else None


async def create_available(client: Client, s: Settings, wf: Settings, size_gb: int = 1,
                           snapshot_id: str | None = None) -> str:
    share_id = new_share(wf, s.storage_name, size_gb)
    op_id = new_op(wf, share_id, "create")
    await run(client, "CreateShare",
              ShareOp(share_id, op_id, s.storage_name, size_gb, snapshot_id), share_id)
    return share_id


async def delete(client: Client, s: Settings, wf: Settings, share_id: str,
                 force: bool = False) -> None:
    op_id = new_op(wf, share_id, "force_delete" if force else "delete")
    await run(client, "DeleteShare", ShareOp(share_id, op_id, s.storage_name, force=force),
              share_id)
    assert op_row(wf, op_id).status == "succeeded"


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


async def sync_access(client: Client, share_id: str, host: str) -> None:
    """What the API does after recording a rule change: signal-with-start."""
    await client.start_workflow(
        "SyncShareAccess", ShareAccessSync(share_id, host),
        id=share_access_workflow_id(share_id), task_queue=CONTROL_QUEUE,
        start_signal=RULES_CHANGED_SIGNAL,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE)


async def settled(client: Client, share_id: str) -> None:
    """Until the reconcile's last run has ended."""
    await client.get_workflow_handle(share_access_workflow_id(share_id)).result()


def deny(wf: Settings, share_id: str, rule_id: str) -> None:
    with session(wf) as db_s:
        rule = db_s.get(ShareAccessRule, rule_id)
        share = db_s.get(Share, share_id)
        assert rule and share
        rule.state, share.access_rules_status = "queued_to_deny", "syncing"
        db_s.add(rule)
        db_s.add(share)
        db_s.commit()


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
        await settled(client, share_id)
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
