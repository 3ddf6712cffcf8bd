"""shelve: a clean stop, a snapshot of the root disk to the image `<name>-shelved`
(image_type=snapshot, instance_uuid, the shelve_image marker) through createImage's own
steps (snapshot_disk, upload_snapshot: the image service inspects it like any upload),
the instance recording that image: SHELVED. Then, by VMFLOW_SHELVED_OFFLOAD_TIME as the
API read it: 0 offloads in this same operation (SHELVED_OFFLOADED), N > 0 arms a timer
that offloads after N seconds, -1 never.

Undo, newest first: the copy discarded, the image deleted (as Nova does when a shelve
fails), the guest powered on again if it ran. Once the offload begins, the image
holds the only copy of the disk: from there nothing deletes it."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from vmflow.contracts.actions import ActionStart, InstanceFacts, Shutdown
    from vmflow.contracts.control_stub import ControlStub
    from vmflow.contracts.host_stub import HostStub
    from vmflow.contracts.instances import InstanceRef, InstanceUpdate
    from vmflow.contracts.shelve import OffloadTimerRequest, ShelveImage, ShelveRequest
    from vmflow.contracts.snapshots import SnapshotDisk, SnapshotDone, SnapshotFile, SnapshotRequest
    from vmflow.names import shelve_offload_workflow_id
    from vmflow.states import TRANSITIONS, TaskState, VmState

from workflows._base.action import InstanceAction
from workflows._base.saga import Compensations
from workflows._base.steps import control, on_host
from workflows.background.shelve_offload_timer import ShelveOffloadTimer
from workflows.instance.shelve_offload import offload, still_shelved
from workflows.instance.snapshot import COPY_TIMEOUT_S, UPLOAD_TIMEOUT_S


@workflow.defn(name="ShelveInstance")
class ShelveInstance(InstanceAction):
    offloading = False

    @workflow.run
    async def run(self, req: ShelveRequest) -> None:
        image_id = str(workflow.uuid4())  # the same on replay: a retried step finds it
        offload_now = req.offload_after_s == 0

        async def task(state: str) -> None:
            await control(ControlStub.update_instance, InstanceUpdate(req.instance_id,
                                                                      task_state=state))

        async def body(facts: InstanceFacts, undo: Compensations) -> str | None:
            ref = InstanceRef(facts.instance_id)
            if facts.vm_state in (VmState.ACTIVE, VmState.PAUSED):
                undo.push("stop", lambda: on_host(facts.host, HostStub.power_on, ref,
                                                  attempts=0))
                await self._stop(facts)
            shelve = ShelveImage(facts.instance_id, image_id)
            undo.push("image", lambda: control(ControlStub.shelve_discard_image, shelve))
            await control(ControlStub.shelve_image, shelve)
            plan = await control(ControlStub.snapshot_begin,
                                 SnapshotRequest(facts.instance_id, req.operation_id, image_id))
            file = SnapshotFile(facts.instance_id, image_id)
            undo.push("snapshot", lambda: on_host(facts.host, HostStub.discard_snapshot, file,
                                                  attempts=0))
            self.at("copying the disk", 20)
            await task(TaskState.SHELVING_IMAGE_PENDING_UPLOAD)
            taken = await on_host(
                facts.host, HostStub.snapshot_disk,
                SnapshotDisk(facts.instance_id, image_id, plan.quiesce, False,
                             plan.thaw_deadline_s),
                timeout_s=COPY_TIMEOUT_S, give_up_after_s=COPY_TIMEOUT_S * 3)
            self.at("uploading the image", 50)
            await task(TaskState.SHELVING_IMAGE_UPLOADING)
            await on_host(facts.host, HostStub.upload_snapshot, file,
                          timeout_s=UPLOAD_TIMEOUT_S, give_up_after_s=UPLOAD_TIMEOUT_S * 3)
            await control(ControlStub.snapshot_done,
                          SnapshotDone(image_id, taken.consistency, taken.source))
            await control(ControlStub.shelve_done, shelve)
            note = f"shelve image {image_id} ({taken.source})"
            if offload_now:
                undo.clear()  # the image is the disk from here on: nothing deletes it
                self.offloading = True
                await task(TaskState.SHELVING_OFFLOADING)
                await offload(self, facts.host, facts.instance_id)
                note += "; offloaded"
            return note

        start = ActionStart(req.instance_id, req.operation_id, "shelve")
        target = (TRANSITIONS["shelve-offload"].target if offload_now
                  else TRANSITIONS[start.action].target)
        await self.run_action(start, target, body)
        if req.offload_after_s > 0:
            await workflow.start_child_workflow(
                ShelveOffloadTimer.run,
                OffloadTimerRequest(req.instance_id, req.operation_id, req.offload_after_s),
                id=shelve_offload_workflow_id(req.instance_id, req.operation_id),
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                static_summary=f"shelve-offload instance {req.instance_id} in "
                               f"{req.offload_after_s}s")

    async def _stop(self, facts: InstanceFacts) -> None:
        """Active: a clean shutdown (destroyed after the stop timeout); paused: a
        paused guest cannot answer one, so it is powered off (Nova falls back the same)."""
        self.at("shutting down")
        if facts.vm_state == VmState.PAUSED:
            await on_host(facts.host, HostStub.power_off, InstanceRef(facts.instance_id))
            return
        await on_host(facts.host, HostStub.shutdown,
                      Shutdown(facts.instance_id, facts.stop_timeout_s),
                      heartbeat_s=15, timeout_s=facts.stop_timeout_s + 60)

    async def real_state(self, facts: InstanceFacts) -> str:
        real = await super().real_state(facts)
        return still_shelved(real) if self.offloading else real
