"""Share workflows when no storage worker polls `storage.<host>` (a dead one): each
storage step is not picked up within schedule_to_start (2 s here), so the operation
ends in seconds with a fault that says so, and the share in the state DESIGN 6
asks for. Also: a plain delete of a share with snapshots is refused up front."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.workflows.share_rows import fails, new_op, new_share, new_snapshot, op_row, share_row
from vmflow.contracts.shares import ShareOp, ShareResizeOp
from vmflow.settings import Settings

pytestmark = pytest.mark.usefixtures("control_worker")


@pytest.fixture
def host() -> str:
    return f"dead{uuid.uuid4().hex[:8]}"  # no worker ever polls its queue


async def test_create_fails_in_seconds_and_says_why(
        temporal: WorkflowEnvironment, wf_settings: Settings, host: str) -> None:
    """Neither the step nor its undo is picked up: the share is error and the
    operation failed (not compensated: what the backend holds is unknown)."""
    client, s = temporal.client, wf_settings
    share_id = new_share(s, host)
    op_id = new_op(s, share_id, "create")
    started = asyncio.get_running_loop().time()
    cause = await fails(client, "CreateShare", ShareOp(share_id, op_id, host, 1), share_id)
    assert asyncio.get_running_loop().time() - started < 30
    assert f"storage host {host} did not pick up" in cause
    share = share_row(s, share_id)
    assert share and share.status == "error" and share.fault
    assert share.fault.startswith(f"the storage host {host} did not pick up")
    assert "deleting the share retries it" in share.fault
    op = op_row(s, op_id)
    assert (op.status, op.last_error) == ("failed", share.fault)


async def test_extend_stays_available_at_the_old_size(
        temporal: WorkflowEnvironment, wf_settings: Settings, host: str) -> None:
    client, s = temporal.client, wf_settings
    share_id = new_share(s, host, size_gb=1, status="available")
    op_id = new_op(s, share_id, "extend")
    await fails(client, "ExtendShare", ShareResizeOp(share_id, op_id, host, 2), share_id)
    share = share_row(s, share_id)
    assert share and (share.status, share.size_gb) == ("available", 1)
    assert share.fault and share.fault.startswith("extend to 2 GiB failed: the storage host")
    assert op_row(s, op_id).status == "compensated"  # nothing changed, nothing left


async def test_delete_is_error_deleting_and_keeps_the_row(
        temporal: WorkflowEnvironment, wf_settings: Settings, host: str) -> None:
    client, s = temporal.client, wf_settings
    share_id = new_share(s, host, status="available")
    op_id = new_op(s, share_id, "delete")
    await fails(client, "DeleteShare", ShareOp(share_id, op_id, host), share_id)
    share = share_row(s, share_id)
    assert share and share.status == "error_deleting"
    assert share.fault and share.fault.startswith("delete failed: the storage host")
    assert op_row(s, op_id).status == "failed"


async def test_delete_with_snapshots_is_refused_unless_forced(
        temporal: WorkflowEnvironment, wf_settings: Settings, host: str) -> None:
    client, s = temporal.client, wf_settings
    share_id = new_share(s, host, status="available")
    new_snapshot(s, share_id, status="available")
    op_id = new_op(s, share_id, "delete")
    cause = await fails(client, "DeleteShare", ShareOp(share_id, op_id, host), share_id)
    assert "has 1 snapshot(s)" in cause
    share = share_row(s, share_id)
    assert share and (share.status, share.fault) == ("available", None)  # nothing changed
    assert op_row(s, op_id).status == "failed"
