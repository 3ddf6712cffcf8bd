"""Control activities of resize and cold migration: the Migration row, the move's
plan, claims that change consumer (Nova's migration-based allocations), the end of a
move, and the step of the auto-confirm timer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlmodel import Session, col, delete, select
from temporalio import activity

from activities.control import scheduler
from activities.control.base import ClientActivities
from activities.control.instances import agent_enabled, image_file, linked_image
from activities.errors import permanent
from vmflow.contracts.actions import TimerStep
from vmflow.contracts.activity_names import ControlActs
from vmflow.contracts.errors import Errors
from vmflow.contracts.instances import InstanceRef, OperationRef
from vmflow.contracts.resize import (
    CONFIRMING,
    FINISHED,
    PRE_MIGRATING,
    SOURCE_KEPT,
    AutoConfirmRequest,
    FlavorSpec,
    MoveClaim,
    PendingResize,
    PendingResizes,
    ResizeDone,
    ResizeEnd,
    ResizePlan,
    ResizeRequest,
    SourceCopy,
)
from vmflow.models import Allocation, Flavor, Image, Instance, Ledger, Migration, Operation, now
from vmflow.operations import ResourceBusy, instance_spec, start_operation
from vmflow.states import VmState


def spec_of(flavor: Flavor) -> FlavorSpec:
    return FlavorSpec(flavor.id, flavor.vcpus, flavor.ram_mb, flavor.disk_gb)


def pending(s: Session, instance_id: str) -> list[Migration]:
    """The instance's moves whose source copy still exists, newest first."""
    return list(s.exec(select(Migration).where(
        Migration.instance_id == instance_id, col(Migration.status).in_(SOURCE_KEPT),
        col(Migration.migration_type).in_(["resize", "migration"]))
        .order_by(col(Migration.id).desc())))


class ResizeControlActivities(ClientActivities):
    @activity.defn(name=ControlActs.BEGIN_RESIZE)
    def begin_resize(self, req: ResizeRequest) -> ResizePlan:
        """The move's Migration row (one per operation: a retry finds it) and plan."""
        with self.session() as s:
            inst = s.get(Instance, req.instance_id)
            if inst is None or inst.host is None:
                raise permanent(f"instance {req.instance_id} does not exist", Errors.NOT_FOUND)
            mig = s.exec(select(Migration).where(
                Migration.operation_id == req.operation_id)).first()
            old = s.get(Flavor, mig.old_flavor_id if mig else inst.flavor_id)
            new = s.get(Flavor, mig.new_flavor_id if mig else (req.flavor_id or inst.flavor_id))
            image = s.get(Image, inst.image_id)
            if old is None or new is None or image is None:
                raise permanent("the instance's flavor or image no longer exists",
                                Errors.NOT_FOUND)
            if new.disk_gb < old.disk_gb:  # the API refuses it; the flavor may have changed
                raise permanent(f"flavor {new.name} has a smaller root disk ({new.disk_gb} GB) "
                                f"than {old.name} ({old.disk_gb} GB)", Errors.INVALID_STATE)
            if mig is None:
                op = s.get(Operation, req.operation_id)
                mig = Migration(instance_id=inst.id, project_id=inst.project_id,
                                user_id=op.user_id if op else inst.user_id,
                                operation_id=req.operation_id,
                                migration_type="resize" if req.flavor_id else "migration",
                                status=PRE_MIGRATING, source_host=inst.host,
                                dest_host=req.host, old_flavor_id=old.id, new_flavor_id=new.id)
                s.add(mig)
                s.commit()
            required, forbidden = scheduler.traits_from_extra_specs(new.extra_specs or {})
            props = image.properties or {}
            st = self.settings
            return ResizePlan(
                instance_id=inst.id, migration_id=mig.uuid, migration_type=mig.migration_type,
                source=mig.source_host or inst.host, old=spec_of(old), new=spec_of(new),
                required_traits=required, forbidden_traits=forbidden, root=image_file(image),
                kernel=linked_image(s, image, "kernel_id"),
                ramdisk=linked_image(s, image, "ramdisk_id"),
                cmdline=str(props.get("os_command_line", "")), agent=agent_enabled(image),
                allow_same_host=st.allow_resize_to_same_host, host=req.host,
                schedule_attempts=st.schedule_attempts,
                schedule_to_start_s=st.schedule_to_start_timeout,
                confirm_window_s=st.resize_confirm_window)

    @activity.defn(name=ControlActs.MOVE_CLAIM)
    def move_claim(self, req: MoveClaim) -> None:
        """The allocation of `from_id` on the host becomes `to_id`'s (same resources)."""
        with self.session() as s:
            to = s.get(Allocation, req.to_id)
            if to is not None:
                if to.host == req.host:
                    return  # done already
                raise permanent(f"consumer {req.to_id} holds a claim on {to.host}, not "
                                f"{req.host}", Errors.INVALID_STATE)
            frm = s.get(Allocation, req.from_id)
            if frm is None or frm.host != req.host:
                raise permanent(f"no claim of {req.from_id} on {req.host} to move",
                                Errors.NOT_FOUND)
            s.add(Allocation(instance_id=req.to_id, host=frm.host, vcpus=frm.vcpus,
                             ram_mb=frm.ram_mb, disk_gb=frm.disk_gb, created_at=frm.created_at))
            s.delete(frm)
            s.commit()

    @activity.defn(name=ControlActs.FINISH_RESIZE)
    def finish_resize(self, req: ResizeDone) -> None:
        """The instance lives on the destination with the new flavor; the row waits."""
        with self.session() as s:
            inst = s.get(Instance, req.instance_id)
            mig = s.exec(select(Migration).where(Migration.uuid == req.migration_id)).one()
            if inst is not None:
                inst.host, inst.flavor_id, inst.updated_at = req.host, req.flavor_id, now()
                s.add(inst)
            mig.status, mig.dest_host, mig.updated_at = FINISHED, req.host, now()
            s.add(mig)
            s.commit()

    @activity.defn(name=ControlActs.PENDING_RESIZES)
    def pending_resizes(self, ref: InstanceRef) -> PendingResizes:
        with self.session() as s:
            return PendingResizes([
                PendingResize(m.instance_id, m.uuid, m.source_host or "", m.dest_host or "",
                              m.old_flavor_id or "", m.new_flavor_id or "")
                for m in pending(s, ref.instance_id) if m.source_host and m.dest_host])

    @activity.defn(name=ControlActs.END_RESIZE)
    def end_resize(self, req: ResizeEnd) -> None:
        with self.session() as s:
            mig = s.exec(select(Migration).where(Migration.uuid == req.migration_id)).one()
            mig.status, mig.updated_at = req.status, now()
            s.add(mig)
            inst = s.get(Instance, req.instance_id)
            if inst is not None and (req.host or req.flavor_id):
                inst.host = req.host or inst.host
                inst.flavor_id = req.flavor_id or inst.flavor_id
                inst.updated_at = now()
                s.add(inst)
            s.commit()

    @activity.defn(name=ControlActs.CONFIRM_LEDGER)
    def confirm_ledger(self, req: SourceCopy) -> None:
        """Confirm: the source's ledger rows of the instance go, and the destination's
        (keyed by the migration while both copies exist, also on one host) become the
        instance's own, as a launch leaves them."""
        with self.session() as s:
            mig = s.exec(select(Migration).where(Migration.uuid == req.migration_id)).one()
            s.exec(delete(Ledger).where(
                col(Ledger.host) == mig.source_host, col(Ledger.instance_id) == req.instance_id,
                col(Ledger.kind) != "cache", col(Ledger.key) != req.migration_id))
            for row in s.exec(select(Ledger).where(Ledger.key == req.migration_id,
                                                   Ledger.instance_id == req.instance_id)):
                row.key = req.instance_id
                s.add(row)
            s.commit()

    # ---- the auto-confirm timer's step ------------------------------------------------
    @activity.defn(name=ControlActs.START_AUTO_CONFIRM)
    async def start_auto_confirm(self, req: AutoConfirmRequest) -> TimerStep:
        """Start confirm-resize as the API would, on behalf of who asked for the move;
        the Idempotency-Key `auto-confirm/<migration>` makes a retry find the first."""
        key = f"auto-confirm/{req.migration_id}"
        with self.session() as s:
            earlier = s.exec(select(Operation).where(Operation.idempotency_key == key)).first()
            if earlier is not None:
                return TimerStep(operation_id=earlier.id)
            mig = s.exec(select(Migration).where(Migration.uuid == req.migration_id)).first()
            inst = s.get(Instance, req.instance_id)
            if mig is None or mig.status not in (FINISHED, CONFIRMING):
                return TimerStep(reason=f"the move is {mig.status if mig else 'gone'}")
            if inst is None or inst.vm_state != VmState.RESIZED:
                return TimerStep(reason="the server is no longer waiting for confirm")
            if inst.task_state:
                return TimerStep(busy=True, reason=f"another operation "
                                                         f"({inst.task_state}) is in progress")
            iid = inst.id
            spec = instance_spec(
                inst, "confirm-resize", mig.user_id, lambda op_id: OperationRef(iid, op_id),
                idempotency_key=key, memo={"auto": True},
                summary=f"confirm the resize of instance {iid} (its window ran out)")
            try:
                op = await start_operation(self.client, s, spec)
            except ResourceBusy as e:
                return TimerStep(busy=True, reason=str(e))
            activity.logger.info("auto-confirm of instance %s: operation %s", inst.id, op.id)
            return TimerStep(operation_id=op.id)

    def all(self) -> list[Callable[..., Any]]:
        return [self.begin_resize, self.move_claim, self.finish_resize,
                self.pending_resizes, self.end_resize, self.confirm_ledger,
                self.start_auto_confirm]

