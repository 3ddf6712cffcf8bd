"""createImage / createBackup: a point-in-time copy of the server's root disk,
uploaded as the image the API already recorded (queued).

On the action frame: the server keeps its state (target None: the state its domain
is really in). The image stays queued while the disk is copied, its upload takes it
to saving and active (the image service inspects it like any upload), then its
consistency (quiesced or crash-consistent) is recorded; or it goes to error with the
reason on any failure, cancellation included: never deleted silently, never left in
saving. The host step freezes the guest only
around the start of the copy and arms a thaw guard first (activities/hypervisor/snapshot.py),
so no outcome here, a dead worker included, leaves a guest frozen.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from vmflow.contracts.actions import ActionStart, InstanceFacts
    from vmflow.contracts.control_stub import ControlStub
    from vmflow.contracts.host_stub import HostStub
    from vmflow.contracts.instances import InstanceUpdate
    from vmflow.contracts.snapshots import (
        RotateBackups,
        SnapshotDisk,
        SnapshotDone,
        SnapshotFailed,
        SnapshotFile,
        SnapshotRequest,
    )
    from vmflow.states import TRANSITIONS

from workflows._base.action import InstanceAction
from workflows._base.saga import Compensations
from workflows._base.steps import control, describe, on_host

COPY_TIMEOUT_S = 3600  # one attempt of the copy (big disks under TCG are slow)
UPLOAD_TIMEOUT_S = 3600


@workflow.defn(name="SnapshotInstance")
class SnapshotInstance(InstanceAction):
    @workflow.run
    async def run(self, req: SnapshotRequest) -> None:
        backup = req.backup_type is not None

        async def body(facts: InstanceFacts, undo: Compensations) -> str | None:
            plan = await control(ControlStub.snapshot_begin, req)
            file = SnapshotFile(req.instance_id, req.image_id, thaw=plan.quiesce)

            async def discard() -> None:  # no job, no frozen guest, no local file
                await on_host(facts.host, HostStub.discard_snapshot, file, attempts=0)

            undo.push("snapshot", discard)
            self.at("copying the disk")
            taken = await on_host(
                facts.host, HostStub.snapshot_disk,
                SnapshotDisk(req.instance_id, req.image_id, plan.quiesce, plan.require_quiesce,
                             plan.thaw_deadline_s),
                timeout_s=COPY_TIMEOUT_S, give_up_after_s=COPY_TIMEOUT_S * 3)

            self.at("uploading the image", 50)
            await control(ControlStub.update_instance,
                          InstanceUpdate(req.instance_id, task_state="image_uploading"))
            await on_host(facts.host, HostStub.upload_snapshot, file,
                          timeout_s=UPLOAD_TIMEOUT_S, give_up_after_s=UPLOAD_TIMEOUT_S * 3)
            await control(ControlStub.snapshot_done,
                          SnapshotDone(req.image_id, taken.consistency, taken.source))
            note = f"image {req.image_id}: {taken.consistency} ({taken.source})"
            if taken.frozen_s is not None:
                note += f", guest frozen {taken.frozen_s:.2f} s"
            if backup:
                assert req.backup_type is not None and req.rotation is not None
                self.at("rotating backups", 90)
                rotated = await control(ControlStub.rotate_backups, RotateBackups(
                    req.instance_id, req.backup_type, req.rotation))
                if rotated.deleted:
                    note += f"; rotation deleted {', '.join(rotated.deleted)}"
            return note

        recorded = False

        async def image_in_error(fault: str) -> None:
            nonlocal recorded
            await control(ControlStub.snapshot_failed, SnapshotFailed(req.image_id, fault))
            recorded = True

        workflow.deprecate_patch("snapshot-image-error-first")
        start = ActionStart(req.instance_id, req.operation_id, "backup" if backup else "snapshot")
        try:
            # the image in error before the operation ends
            await self.run_action(start, TRANSITIONS[start.action].target, body,
                                  on_failure=image_in_error)
        except (Exception, asyncio.CancelledError) as err:
            if not recorded:  # the frame could not even begin
                await control(ControlStub.snapshot_failed,
                              SnapshotFailed(req.image_id, describe(err)))
            raise
