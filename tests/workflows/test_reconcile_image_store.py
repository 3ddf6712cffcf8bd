"""The ledger reconciler's image store check, through a whole ReconcileLedger run on
the real control worker, the real SQLite database and real files in the store: an
upload whose API died goes back to queued, a snapshot image whose operation ended
goes to error with the reason, files no image uses go, and nothing young, in use or
owned by a running operation is touched; a second run changes nothing."""

from __future__ import annotations

import os
import time
import uuid
from datetime import timedelta
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from tests.workflows.conftest import hosts_down, session
from tests.workflows.test_image_transfer import image_row
from vmflow.contracts.reconcile import ReconcileLedgerRequest, ReconcileLedgerResult
from vmflow.models import Image, now
from vmflow.names import CONTROL_QUEUE, instance_workflow_id
from vmflow.settings import Settings

HOUR = 3600.0
STORE = "image store: "


def aged(path: Path, age_s: float, data: bytes = b"x" * 4096) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (time.time() - age_s, time.time() - age_s))
    return path


def add_image(s: Settings, status: str, age_s: float = HOUR, **props: str) -> str:
    with session(s) as db_s:
        image = Image(name="store-test", status=status, disk_format="raw", properties=props,
                      updated_at=now() - timedelta(seconds=age_s))
        if status == "active":
            image.location = str(aged(s.image_store / image.id, HOUR))
        db_s.add(image)
        db_s.commit()
        return image.id


async def reconcile(env: WorkflowEnvironment, s: Settings
                    ) -> tuple[ReconcileLedgerResult, list[str]]:
    """A full run (no hosts named), which includes the image store (no host is asked);
    and its lines about the store, without their prefix."""
    with hosts_down(s):
        result: ReconcileLedgerResult = await env.client.execute_workflow(
            "ReconcileLedger", ReconcileLedgerRequest([], 600.0),
            id=f"reconcile-store-test-{uuid.uuid4().hex[:8]}", task_queue=CONTROL_QUEUE,
            result_type=ReconcileLedgerResult)
    return result, [line.removeprefix(STORE) for line in result.details
                    if line.startswith(STORE)]


async def test_the_reconciler_mends_the_image_store(
    temporal: WorkflowEnvironment, wf_settings: Settings, control_worker: None
) -> None:
    s, store = wf_settings, wf_settings.image_store
    lost_vm, busy_vm = str(uuid.uuid4()), str(uuid.uuid4())
    interrupted = add_image(s, "saving")
    interrupted_part = aged(store / f"{interrupted}.part", HOUR)
    uploading = add_image(s, "saving")
    uploading_part = aged(store / f"{uploading}.part", 1.0)  # still being written
    lost = add_image(s, "queued", image_type="snapshot", instance_uuid=lost_vm)
    lost_staged = aged(store / "staging" / lost, HOUR)
    busy = add_image(s, "queued", image_type="backup", instance_uuid=busy_vm)
    busy_staged = aged(store / "staging" / busy, HOUR)
    active = add_image(s, "active")
    deleted = add_image(s, "deleted")
    deleted_data = aged(store / deleted, HOUR)
    orphan = aged(store / str(uuid.uuid4()), HOUR)
    young_orphan = aged(store / str(uuid.uuid4()), 1.0)
    not_ours = aged(store / "README", HOUR)  # not an image's name: never touched
    # the backup's operation still holds its instance (a workflow no worker picks up)
    blocker = await temporal.client.start_workflow(
        "SnapshotInstance", "never runs", id=instance_workflow_id(busy_vm),
        task_queue="nobody-polls-this")
    try:
        first, lines = await reconcile(temporal, s)
        details = "\n".join(lines)
        assert image_row(s, interrupted).status == "queued", details
        assert not interrupted_part.exists()
        assert f"image {interrupted}: its upload was interrupted: back to queued" in details
        lost_row = image_row(s, lost)
        assert lost_row.status == "error"
        assert lost_row.fault and lost_vm in lost_row.fault and "queued" in lost_row.fault
        assert not lost_staged.exists()
        assert not deleted_data.exists() and not orphan.exists()
        # untouched: an upload still writing, an operation's image, an active image,
        # a file younger than the grace, a name that is no image's
        assert image_row(s, uploading).status == "saving" and uploading_part.exists()
        assert image_row(s, busy).status == "queued" and busy_staged.exists()
        assert image_row(s, active).status == "active" and (store / active).exists()
        assert young_orphan.exists() and not_ours.exists()
        assert any(busy in line and busy_vm in line for line in lines)
        assert first.failed == 0 and first.repaired >= 2 and first.removed >= 4

        again, lines = await reconcile(temporal, s)
        mine = (interrupted, lost, busy, uploading, active, deleted, orphan.name)
        assert not [line for line in lines
                    if any(i in line for i in mine) and not line.startswith("deferred")]
        assert image_row(s, interrupted).status == "queued" and image_row(s, lost).status == "error"
    finally:
        await blocker.terminate("test over")
