"""Control activities of shelve, shelve-offload and unshelve: the shelve image's record
(made queued by the workflow, filled by the snapshot steps of createImage), the
instance's pointer to it, the offload timer's step and its cancellation, and the
beginning and end of an unshelve (which deletes the image only once the guest runs).

Nova deletes a shelve image when its server is unshelved or deleted; so does vmflow
(shelve_forget, called by the delete workflow)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlmodel import Session, col, select
from temporalio import activity
from temporalio.service import RPCError, RPCStatusCode

from activities.control.base import ClientActivities
from activities.control.images import delete_image
from activities.control.instances import agent_enabled, launch_plan
from activities.errors import permanent
from vmflow.backups import image_record
from vmflow.contracts.actions import TimerStep
from vmflow.contracts.activity_names import ControlActs
from vmflow.contracts.errors import Errors
from vmflow.contracts.instances import InstanceRef, OperationRef
from vmflow.contracts.shelve import (
    SHELVE_MARKER,
    OffloadTimerRequest,
    ShelveImage,
    UnshelveEnd,
    UnshelvePlan,
    UnshelveRequest,
)
from vmflow.models import Image, Instance, Operation, now
from vmflow.names import shelve_offload_workflow_id
from vmflow.operations import (
    RPC_TIMEOUT,
    Claim,
    ResourceBusy,
    instance_spec,
    release,
    start_operation,
)
from vmflow.states import TRANSITIONS, TaskState, VmState


def shelve_image_name(inst: Instance) -> str:
    return f"{inst.name}-shelved"  # Nova's name


def latest_shelve(s: Session, instance_id: str) -> Operation | None:
    return s.exec(select(Operation).where(
        Operation.resource_id == instance_id, Operation.action == "shelve",
        Operation.status == "succeeded").order_by(col(Operation.finished_at).desc())).first()


class ShelveActivities(ClientActivities):
    # ---- shelve ---------------------------------------------------------------------
    @activity.defn(name=ControlActs.SHELVE_IMAGE)
    def shelve_image(self, req: ShelveImage) -> None:
        """The queued image `<name>-shelved` (a snapshot of the instance, marked as its
        shelve image); a retry finds the one it made."""
        with self.session() as s:
            if s.get(Image, req.image_id) is not None:
                return
            inst = s.get(Instance, req.instance_id)
            if inst is None:
                raise permanent(f"instance {req.instance_id} does not exist", Errors.NOT_FOUND)
            image = image_record(s, inst, name=shelve_image_name(inst), user_id=inst.user_id,
                                 metadata={SHELVE_MARKER: "true"})
            image.id = req.image_id
            s.add(image)
            s.commit()

    @activity.defn(name=ControlActs.SHELVE_DONE)
    def shelve_done(self, req: ShelveImage) -> None:
        with self.session() as s:
            inst = s.get(Instance, req.instance_id)
            if inst is None:
                raise permanent(f"instance {req.instance_id} does not exist", Errors.NOT_FOUND)
            if inst.shelved_image_id != req.image_id:
                inst.shelved_image_id, inst.shelved_at = req.image_id, now()
                s.add(inst)
                s.commit()

    @activity.defn(name=ControlActs.SHELVE_DISCARD)
    def shelve_discard_image(self, req: ShelveImage) -> None:
        """Undo of a shelve: its image deleted (Nova deletes it too), the instance no
        longer names it."""
        with self.session() as s:
            self._drop(s, req.instance_id, req.image_id)
            s.commit()

    @activity.defn(name=ControlActs.SHELVE_FORGET)
    def shelve_forget(self, ref: InstanceRef) -> None:
        """Delete of a shelved server: its shelve image goes with it."""
        with self.session() as s:
            inst = s.get(Instance, ref.instance_id)
            if inst is not None and inst.shelved_image_id:
                self._drop(s, inst.id, inst.shelved_image_id)
                s.commit()

    def _drop(self, s: Session, instance_id: str, image_id: str) -> None:
        image = s.get(Image, image_id)
        if image is not None and image.status != "deleted":
            delete_image(self.settings, s, image)
        inst = s.get(Instance, instance_id)
        if inst is not None and inst.shelved_image_id == image_id:
            inst.shelved_image_id, inst.shelved_at, inst.updated_at = None, None, now()
            s.add(inst)

    # ---- the offload timer ------------------------------------------------------------
    @activity.defn(name=ControlActs.START_SHELVE_OFFLOAD)
    async def start_shelve_offload(self, req: OffloadTimerRequest) -> TimerStep:
        """Start the shelve-offload the timer stands for, as the API would, unless the
        server is gone, no longer shelved or shelved again since (that shelve's timer
        decides). Its Idempotency-Key `shelve-offload/<shelve op>` lets a retry find
        what the first attempt did. A lock does not stop it: Nova's offload is the
        system's, not the user's."""
        key = f"shelve-offload/{req.shelve_operation_id}"
        with self.session() as s:
            earlier = s.exec(select(Operation).where(Operation.idempotency_key == key)).first()
            if earlier is not None:
                if earlier.status != "running" or await self.started(earlier):
                    return TimerStep(operation_id=earlier.id)
                # the first attempt died before its workflow started: its row and claim go
                inst = s.get(Instance, earlier.resource_id)
                if inst is not None:
                    release(s, Claim(inst, "task_state", TaskState.SHELVING_OFFLOADING))
                s.delete(earlier)
                s.commit()
            inst = s.get(Instance, req.instance_id)
            if inst is None or inst.vm_state == VmState.DELETED:
                return TimerStep(reason="the server is gone")
            shelve = latest_shelve(s, inst.id)
            if shelve is None or shelve.id != req.shelve_operation_id:
                return TimerStep(reason="the server was shelved again since; that "
                                               "shelve's timer decides")
            if inst.vm_state != VmState.SHELVED:
                return TimerStep(reason=f"the server is {inst.vm_state}, no longer "
                                               "shelved")
            if inst.task_state:
                return TimerStep(busy=True, reason=f"another operation "
                                                          f"({inst.task_state}) is in progress")
            spec = instance_spec(
                inst, "shelve-offload", shelve.user_id, lambda op_id: OperationRef(inst.id, op_id),
                idempotency_key=key, memo={"auto": True},
                summary=f"shelve-offload instance {inst.id} (its shelve's timer)")
            try:
                op = await start_operation(self.client, s, spec)
            except ResourceBusy as e:
                return TimerStep(busy=True, reason=str(e))
            activity.logger.info("timed shelve-offload of %s: operation %s", inst.id, op.id)
            return TimerStep(operation_id=op.id)

    @activity.defn(name=ControlActs.CANCEL_SHELVE_OFFLOAD)
    async def cancel_shelve_offload(self, ref: InstanceRef) -> None:
        """Cancel the offload timer of the server's latest shelve; one that already
        ended (or was never armed) is fine."""
        with self.session() as s:
            shelve = latest_shelve(s, ref.instance_id)
        if shelve is None:
            return
        handle = self.client.get_workflow_handle(
            shelve_offload_workflow_id(ref.instance_id, shelve.id))
        try:
            await handle.cancel(rpc_timeout=RPC_TIMEOUT)
        except RPCError as e:
            if e.status != RPCStatusCode.NOT_FOUND:
                raise
            return
        activity.logger.info("offload timer of %s (shelve %s) cancelled", ref.instance_id,
                             shelve.id)

    # ---- unshelve -------------------------------------------------------------------
    @activity.defn(name=ControlActs.UNSHELVE_BEGIN)
    def unshelve_begin(self, req: UnshelveRequest) -> UnshelvePlan:
        """Check the table once more and take the task_state (the API set it with the
        Operation row: it is this operation's own; a refusal gives it back)."""
        action = "unshelve-to-host" if req.host else "unshelve"
        with self.session() as s:
            op = s.exec(select(Operation).where(Operation.id == req.operation_id)
                        .with_for_update()).first()
            if op is not None and op.status != "running":
                raise permanent(f"operation {op.id} already ended ({op.status})",
                                Errors.INVALID_STATE)
            inst = s.get(Instance, req.instance_id)
            if inst is None or inst.vm_state == VmState.DELETED:
                raise permanent(f"instance {req.instance_id} does not exist", Errors.NOT_FOUND)
            found = inst

            def refuse(message: str, error: str = Errors.INVALID_STATE) -> Exception:
                if found.task_state == TaskState.UNSHELVING:
                    found.task_state, found.updated_at = None, now()
                    s.add(found)
                    s.commit()
                return permanent(message, error)

            if VmState(inst.vm_state) not in TRANSITIONS[action].allowed_from:
                raise refuse(f"Cannot '{action}' an instance while it is in vm_state "
                             f"{inst.vm_state}")
            image = s.get(Image, inst.shelved_image_id) if inst.shelved_image_id else None
            offloaded = inst.vm_state == VmState.SHELVED_OFFLOADED
            if offloaded and (image is None or image.status != "active"):
                raise refuse(f"the shelve image {inst.shelved_image_id} of instance {inst.id} "
                             "is not there; the server cannot be spawned again",
                             Errors.IMAGE_INVALID)
            if not offloaded and not inst.host:
                raise refuse("the shelved instance has no host")
            plan = launch_plan(self.settings, s, inst, image) if offloaded else None
            inst.task_state, inst.updated_at = TaskState.UNSHELVING, now()
            s.add(inst)
            s.commit()
            return UnshelvePlan(
                instance_id=inst.id, vm_state=inst.vm_state, host=inst.host,
                image_id=inst.shelved_image_id or "",
                agent=plan.agent if plan else agent_enabled(s.get(Image, inst.image_id)),
                agent_timeout_s=self.settings.agent_timeout, launch=plan)

    @activity.defn(name=ControlActs.UNSHELVE_DONE)
    def unshelve_done(self, req: UnshelveEnd) -> None:
        """The guest runs: ACTIVE on its host, and only now the shelve image goes."""
        with self.session() as s:
            inst = s.get(Instance, req.instance_id)
            if inst is None:
                raise permanent(f"instance {req.instance_id} does not exist", Errors.NOT_FOUND)
            if inst.shelved_image_id:
                self._drop(s, inst.id, inst.shelved_image_id)
            inst.vm_state, inst.task_state, inst.host = VmState.ACTIVE, None, req.host
            inst.fault, inst.updated_at = None, now()
            s.add(inst)
            op = s.get(Operation, req.operation_id)
            if op is not None:
                op.status, op.last_error, op.finished_at = "succeeded", None, now()
                s.add(op)
            s.commit()

    def all(self) -> list[Callable[..., Any]]:
        return [self.shelve_image, self.shelve_done, self.shelve_discard_image,
                self.shelve_forget, self.start_shelve_offload, self.cancel_shelve_offload,
                self.unshelve_begin, self.unshelve_done]
