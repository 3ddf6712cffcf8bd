"""Share workflows on the real Temporal dev server and the real control worker (real
SQLite). Failure paths use storage workers whose activities refuse (real activity
functions that raise, so they test the workflows' reaction, not a backend) or no
storage worker at all (a dead one: schedule_to_start)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlmodel import select
from temporalio import activity
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.workflows.conftest import session
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


async def test_force_delete_of_a_share_stuck_in_creating(
        temporal: WorkflowEnvironment, wf_settings: Settings, host: str) -> None:
    """No storage worker polls while the create waits: the admin's force_delete
    terminates it (as the API does) and deletes with the same workflow id; the
    snapshot and the share are removed on the backend first, then every row."""
    client, s = temporal.client, wf_settings
    share_id = new_share(s, host)
    snap_id = new_snapshot(s, share_id, status="error")
    new_rule(s, share_id, "10.254.0.9")
    create_op = new_op(s, share_id, "create")
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
    share = share_row(s, share_id)
    assert share and share.status == "creating"  # stuck: a terminated run settles nothing

    delete_op = new_op(s, share_id, "force_delete")
    acts = Refusing({})
    async with storage_worker(client, host, acts):
        await run(client, "DeleteShare", ShareOp(share_id, delete_op, host, force=True),
                  share_id)
    assert acts.names() == [StorageActs.DELETE_SNAPSHOT, StorageActs.DELETE_SHARE]
    assert acts.calls[0][1] == SnapshotSpec(share_id, snap_id)
    assert share_row(s, share_id) is None
    assert rules_of(s, share_id) == {}
    with session(s) as db_s:
        assert db_s.get(ShareSnapshot, snap_id) is None
    assert op_row(s, delete_op).status == "succeeded"  # the Operation rows stay as history
