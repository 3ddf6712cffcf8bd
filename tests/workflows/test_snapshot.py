"""SnapshotInstance on test:///default where that driver can honestly stand in: the
offline route (a stopped domain's disk flattened by qemu-img convert, real files),
the upload through the real API into the real image store, rotation; and failure:
test:///default has no backup jobs, so a running domain's copy fails, and the image
must end in error with the reason (never deleted, never left queued/saving) while
the server keeps its state. The freeze and backup-job route needs a real guest:
tests/integration/test_snapshot.py."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from tests.workflows.conftest import HostFactory, new_delete_op, new_server, run, session
from tests.workflows.test_actions import act, new_op, state
from vmflow.backups import image_record
from vmflow.contracts.snapshots import SnapshotRequest
from vmflow.models import Image, Instance, Operation
from vmflow.names import CONTROL_QUEUE, instance_workflow_id
from vmflow.settings import Settings


def new_snapshot(s: Settings, instance_id: str, backup_type: str | None = None,
                 rotation: int | None = None) -> SnapshotRequest:
    """What the API does first: the queued image and the Operation row."""
    action = "backup" if backup_type else "snapshot"
    ref = new_op(s, instance_id, action)
    with session(s) as db_s:
        inst = db_s.get(Instance, instance_id)
        assert inst is not None
        image = image_record(db_s, inst, name=f"{action}-wf", user_id=inst.user_id,
                             backup_type=backup_type)
        db_s.add(image)
        db_s.commit()
        return SnapshotRequest(instance_id, ref.operation_id, image.id, backup_type, rotation)


async def snap(env: WorkflowEnvironment, req: SnapshotRequest) -> Any:
    return await env.client.execute_workflow(
        "SnapshotInstance", req, id=instance_workflow_id(req.instance_id),
        task_queue=CONTROL_QUEUE)


def image_row(s: Settings, image_id: str) -> Image:
    with session(s) as db_s:
        image = db_s.get(Image, image_id)
        assert image is not None
        return image


def snap_files(s: Settings, instance_id: str) -> list[str]:
    return [p.name for p in (s.host_dir() / "instances" / instance_id).glob("snap-*")]


async def test_stopped_server_snapshot_is_a_standalone_active_image(
        temporal: WorkflowEnvironment, hv_worker: HostFactory) -> None:
    async with hv_worker() as s:
        ref = new_server(s)
        await run(temporal.client, "LaunchInstance", ref)
        await act(temporal, s, ref.instance_id, "stop")
        req = new_snapshot(s, ref.instance_id)
        await snap(temporal, req)

        image = image_row(s, req.image_id)
        assert image.status == "active" and image.size and image.checksum and image.location
        assert (image.properties["consistency"], image.properties["snapshot_source"]) == (
            "crash-consistent", "stopped")
        info = subprocess.run(["qemu-img", "info", "-f", "qcow2", "--output=json",
                               image.location], check=True, capture_output=True, text=True)
        assert '"backing-filename"' not in info.stdout  # standalone: the chain flattened
        assert state(s, ref.instance_id) == ("stopped", None, "shutoff")
        assert snap_files(s, ref.instance_id) == []
        with session(s) as db_s:
            op = db_s.get(Operation, req.operation_id)
            assert op and op.status == "succeeded"
            assert f"image {req.image_id}: crash-consistent (stopped)" in (op.last_error or "")
        await run(temporal.client, "DeleteInstance", new_delete_op(s, ref.instance_id))


async def test_a_failed_copy_leaves_the_image_in_error_and_the_server_as_it_was(
        temporal: WorkflowEnvironment, hv_worker: HostFactory) -> None:
    async with hv_worker() as s:
        ref = new_server(s)
        await run(temporal.client, "LaunchInstance", ref)
        req = new_snapshot(s, ref.instance_id)  # running: needs a backup job, unsupported
        with pytest.raises(WorkflowFailureError):
            await snap(temporal, req)
        image = image_row(s, req.image_id)  # still there, not deleted
        assert image.status == "error"
        assert "cannot copy a running disk" in (image.fault or "")
        assert state(s, ref.instance_id) == ("active", None, "running")
        assert snap_files(s, ref.instance_id) == []
        with session(s) as db_s:
            op = db_s.get(Operation, req.operation_id)
            assert op and op.status == "compensated" and "running disk" in (op.last_error or "")
        await run(temporal.client, "DeleteInstance", new_delete_op(s, ref.instance_id))


async def test_an_image_deleted_before_the_copy_stops_the_snapshot(
        temporal: WorkflowEnvironment, hv_worker: HostFactory) -> None:
    async with hv_worker() as s:
        ref = new_server(s)
        await run(temporal.client, "LaunchInstance", ref)
        await act(temporal, s, ref.instance_id, "pause")
        req = new_snapshot(s, ref.instance_id)
        with session(s) as db_s:
            image = db_s.get(Image, req.image_id)
            assert image is not None
            image.status = "deleted"
            db_s.add(image)
            db_s.commit()
        with pytest.raises(WorkflowFailureError):
            await snap(temporal, req)
        assert image_row(s, req.image_id).status == "deleted"  # stays deleted, not error
        assert state(s, ref.instance_id) == ("paused", None, "paused")
        await run(temporal.client, "DeleteInstance", new_delete_op(s, ref.instance_id))


async def test_backup_rotation_keeps_the_newest_n_of_the_type(
        temporal: WorkflowEnvironment, hv_worker: HostFactory) -> None:
    async with hv_worker() as s:
        ref = new_server(s)
        await run(temporal.client, "LaunchInstance", ref)
        await act(temporal, s, ref.instance_id, "stop")
        other = new_snapshot(s, ref.instance_id, "weekly", 1)
        await snap(temporal, other)
        daily = []
        for _ in range(3):
            daily.append(new_snapshot(s, ref.instance_id, "daily", 2))
            await snap(temporal, daily[-1])
        statuses = [image_row(s, r.image_id).status for r in daily]
        assert statuses == ["deleted", "active", "active"]
        oldest = image_row(s, daily[0].image_id)
        assert oldest.location is None
        assert not (s.image_store / oldest.id).exists()
        assert image_row(s, other.image_id).status == "active"
        await run(temporal.client, "DeleteInstance", new_delete_op(s, ref.instance_id))
