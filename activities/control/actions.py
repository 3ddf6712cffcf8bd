"""Control activities of instance actions and of the power-state reconciler."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlmodel import Session, col, select
from temporalio import activity

from activities.control.base import DbActivities
from activities.control.instances import agent_enabled, image_file, linked_image
from activities.errors import permanent
from vmflow import states
from vmflow.contracts.actions import (
    ActionEnd,
    ActionStart,
    InstanceFacts,
    InstanceIds,
    InstanceImage,
    RebuildImage,
    SyncApply,
    SyncCandidates,
    SyncResult,
)
from vmflow.contracts.activity_names import ControlActs
from vmflow.contracts.errors import Errors
from vmflow.models import Flavor, Image, Instance, Operation, now
from vmflow.names import instance_workflow_id


def rebuild_image(s: Session, image_id: str | None, flavor_id: str) -> RebuildImage:
    """The image a rebuild boots, as launch resolves one: root, kernel and ramdisk
    (image properties kernel_id / ramdisk_id), command line and agent."""
    image = s.get(Image, image_id) if image_id else None
    flavor = s.get(Flavor, flavor_id)
    if image is None or image.status == "deleted":
        raise permanent(f"the rebuild image {image_id} does not exist", Errors.IMAGE_INVALID)
    if flavor is None:
        raise permanent("the instance's flavor no longer exists", Errors.NOT_FOUND)
    props = image.properties or {}
    return RebuildImage(image_id=image.id, root=image_file(image),
                        kernel=linked_image(s, image, "kernel_id"),
                        ramdisk=linked_image(s, image, "ramdisk_id"),
                        cmdline=str(props.get("os_command_line", "")),
                        agent=agent_enabled(image), disk_gb=flavor.disk_gb)


class ActionActivities(DbActivities):
    @activity.defn(name=ControlActs.BEGIN_ACTION)
    def begin_action(self, req: ActionStart) -> InstanceFacts:
        """Check the table once more (the state may have moved since the API looked)
        and set the action's task_state. The API set that task_state already with the
        Operation row (vmflow.operations): it is this operation's own, not a conflict;
        a refusal here gives it back, since nothing else would. An operation whose row
        already ended (its workflow was cancelled before this step ran) never begins."""
        with self.session() as s:
            op = s.exec(select(Operation).where(Operation.id == req.operation_id)
                        .with_for_update()).first()
            if op is not None and op.status != "running":
                raise permanent(f"operation {op.id} already ended ({op.status})",
                                Errors.INVALID_STATE)
            inst = s.get(Instance, req.instance_id)
            if inst is None or inst.vm_state == states.VmState.DELETED:
                raise permanent(f"instance {req.instance_id} does not exist", Errors.NOT_FOUND)
            transition = states.TRANSITIONS[req.action]

            def refuse(message: str) -> Exception:
                if inst.task_state == transition.task_state:  # this operation's own
                    inst.task_state, inst.updated_at = None, now()
                    s.add(inst)
                    s.commit()
                return permanent(message, Errors.INVALID_STATE)

            if states.VmState(inst.vm_state) not in transition.allowed_from:
                raise refuse(str(states.ActionNotAllowed(req.action, inst.vm_state)))
            if not inst.host:
                raise refuse("the instance has no host (it was never built)")
            before = inst.vm_state
            inst.task_state = transition.task_state
            inst.updated_at = now()
            s.add(inst)
            image = s.get(Image, inst.image_id)
            rescue = None
            if req.action == "rescue":
                rescue_image = s.get(Image, req.image_id or inst.image_id)
                if rescue_image is None:
                    raise permanent("the rescue image does not exist", Errors.IMAGE_INVALID)
                rescue = image_file(rescue_image)
            rebuild = None
            if req.action == "rebuild":  # the new image boots: its agent is the one waited on
                rebuild = rebuild_image(s, req.image_id, inst.flavor_id)
                image = s.get(Image, rebuild.image_id)
            s.commit()
            st = self.settings
            return InstanceFacts(
                instance_id=inst.id, host=inst.host, vm_state=before,
                agent=agent_enabled(image), agent_timeout_s=st.agent_timeout,
                stop_timeout_s=st.stop_timeout, reboot_timeout_s=st.reboot_timeout,
                rescue_image=rescue, rebuild=rebuild,
            )

    @activity.defn(name=ControlActs.END_ACTION)
    def end_action(self, req: ActionEnd) -> None:
        with self.session() as s:
            inst = s.get(Instance, req.instance_id)
            if inst is not None:
                inst.vm_state, inst.task_state, inst.updated_at = req.vm_state, None, now()
                inst.fault = req.error if req.status != "succeeded" else None
                s.add(inst)
            op = s.get(Operation, req.operation_id)
            if op is not None:
                op.status, op.last_error, op.finished_at = req.status, req.error, now()
                s.add(op)
            s.commit()

    @activity.defn(name=ControlActs.SET_IMAGE)
    def set_instance_image(self, req: InstanceImage) -> None:
        """rebuild, once the guest booted from the new disk: the image it was built from."""
        with self.session() as s:
            inst = s.get(Instance, req.instance_id)
            if inst is not None and inst.image_id != req.image_id:
                inst.image_id, inst.updated_at = req.image_id, now()
                s.add(inst)
                s.commit()

    # ---- the power-state reconciler -------------------------------------------------
    @activity.defn(name=ControlActs.SYNC_CANDIDATES)
    def power_sync_candidates(self, req: InstanceIds) -> SyncCandidates:
        """Instances with a host, a stable state and no operation running. Shelved ones
        are left out as Nova leaves them: their domain is off on purpose (a shelved
        server is not a stopped one) and an offloaded one has none."""
        with self.session() as s:
            stmt = select(Instance).where(
                col(Instance.host).is_not(None), col(Instance.task_state).is_(None),
                col(Instance.vm_state).not_in(["building", "deleted", "shelved",
                                               "shelved_offloaded"]))
            if req.instance_ids:
                stmt = stmt.where(col(Instance.id).in_(req.instance_ids))
            by_host: dict[str, list[str]] = {}
            for inst in s.exec(stmt):
                if inst.host and not self._running(s, inst.id):
                    by_host.setdefault(inst.host, []).append(inst.id)
            return SyncCandidates(by_host)

    @staticmethod
    def _running(s: Session, instance_id: str) -> bool:
        return s.exec(select(Operation).where(
            Operation.resource_id == instance_id, Operation.status == "running",
            Operation.workflow_id == instance_workflow_id(instance_id))).first() is not None

    @activity.defn(name=ControlActs.SYNC_APPLY)
    def power_sync_apply(self, req: SyncApply) -> SyncResult:
        """Make the DB say what the hypervisor says, with an action that explains it;
        instances that started an operation since they were observed are left alone."""
        fixed = []
        with self.session() as s:
            for obs in req.observations:
                inst = s.get(Instance, obs.instance_id)
                real = obs.vm_state()
                if (inst is None or inst.task_state is not None or inst.vm_state == real
                        or inst.vm_state == "deleted" or self._running(s, inst.id)):
                    continue
                if inst.vm_state == states.VmState.RESIZED and obs.exists:
                    continue  # VERIFY_RESIZE whatever its power, until confirm or revert
                why = (f"power sync: the domain is {obs.power}"
                       f"{' with a saved memory image' if obs.managed_save else ''}"
                       f"{'' if obs.exists else ' (not defined on its host)'}; "
                       f"vm_state {inst.vm_state} -> {real}")
                s.add(Operation(resource_type="instance", resource_id=inst.id,
                                action="power-sync", status="succeeded", workflow_id="",
                                project_id=inst.project_id, user_id=inst.user_id,
                                last_error=why, finished_at=now()))
                inst.vm_state, inst.updated_at = real, now()
                if real == "error":
                    inst.fault = why
                s.add(inst)
                fixed.append(f"{inst.id}: {why}")
            s.commit()
        return SyncResult(fixed)

    def all(self) -> list[Callable[..., Any]]:
        return [self.begin_action, self.end_action, self.power_sync_candidates,
                self.power_sync_apply, self.set_instance_image]
