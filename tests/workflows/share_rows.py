"""What the share workflow tests share: the rows the API writes before it starts a
workflow, running share workflows as the API does, and the real storage side (a
btrfs pool and nfs-ganesha on a temporary home, the real storage worker)."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select
from temporalio.client import Client, WorkflowFailureError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from activities.storage.share_pool import SharePool
from tests.home_cleanup import teardown_home
from tests.workflows.conftest import session
from vmflow import stack
from vmflow.contracts.shares import RULES_CHANGED_SIGNAL, ShareAccessSync, ShareOp
from vmflow.ganesha_config import exports_dir
from vmflow.models import Operation, Project, Share, ShareAccessRule, ShareSnapshot, ShareType, User
from vmflow.names import CONTROL_QUEUE, share_access_workflow_id, share_workflow_id
from vmflow.settings import Settings
from workers import storage as storage_worker_process

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



# ---- the real storage side ---------------------------------------------------------

@contextmanager
def storage_host() -> Iterator[Settings]:
    """A storage host of its own (temporary home: pool, ganesha on its own bus and in
    its own network namespace, started with the stack's own functions)."""
    # short: the bus socket's path must fit a unix socket address
    home = Path(tempfile.mkdtemp(prefix="vmflow-ws-", dir="/var/tmp"))
    s = Settings(home=home, host="unused", storage_host=f"ws{uuid.uuid4().hex[:6]}",
                 share_pool_gb=4)
    try:
        stack.ensure_component(s, "ganesha-dbus")
        stack.ensure_component(s, "ganesha")
        SharePool(s).ensure()
        yield s
    finally:
        stack.stop_storage(s)  # its rpcbind and network namespace too
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


async def sync_access(client: Client, share_id: str, host: str) -> None:
    """What the API does after recording a rule change: signal-with-start."""
    await client.start_workflow(
        "SyncShareAccess", ShareAccessSync(share_id, host),
        id=share_access_workflow_id(share_id), task_queue=CONTROL_QUEUE,
        start_signal=RULES_CHANGED_SIGNAL,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE)


async def settled(client: Client, share_id: str) -> int:
    """Until the reconcile's last run has ended; the rounds that run made."""
    rounds: int = await client.get_workflow_handle(share_access_workflow_id(share_id)).result()
    return rounds


def deny(wf: Settings, share_id: str, rule_id: str) -> None:
    with session(wf) as db_s:
        rule = db_s.get(ShareAccessRule, rule_id)
        share = db_s.get(Share, share_id)
        assert rule and share
        rule.state, share.access_rules_status = "queued_to_deny", "syncing"
        db_s.add(rule)
        db_s.add(share)
        db_s.commit()
