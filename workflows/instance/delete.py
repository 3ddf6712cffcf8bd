"""Delete: destroy and undefine the domain, withdraw its metadata and its floating
IPs' NAT from the host, unplug its ports from the host (DHCP reservations, filters),
delete its files, release the claim and its ports (made ones deleted, given ones
unbound; their floating IPs DOWN); for a shelved server also its offload timer and its
shelve image, for a resized one its source copy and the migration's claim.
Every step is idempotent, so delete works from ERROR, on a half-built server, and
on one whose domain is already gone; retrying a failed delete finishes it."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from vmflow.contracts.control_stub import ControlStub
    from vmflow.contracts.host_stub import HostStub
    from vmflow.contracts.instances import (
        FinishOperation,
        InstanceHost,
        InstanceRef,
        InstanceUpdate,
        OperationRef,
    )
    from vmflow.contracts.resize import CONFIRMED, ResizeEnd, SourceCopy
    from vmflow.states import TRANSITIONS, VmState

from workflows._base.guest_services import PATCH as SERVICES
from workflows._base.guest_services import floating_specs, remove_floating_ips
from workflows._base.metadata import withdraw_metadata
from workflows._base.operation import RowOwner, owns_operation, to_the_end
from workflows._base.ports import PATCH, groups_of, refresh_members, unplug
from workflows._base.steps import Reporting, control, describe, error_type, on_host
from workflows.background.auto_confirm import cancel_auto_confirm


@workflow.defn(name="DeleteInstance")
class DeleteInstance(Reporting, RowOwner):
    @workflow.run
    @owns_operation
    async def run(self, ref: OperationRef) -> None:
        inst = InstanceRef(ref.instance_id)
        try:
            plan = await control(ControlStub.begin_delete, ref)
            # its timetables go first, so no tick starts a backup of a vanishing server
            workflow.deprecate_patch("delete-backup-schedules")
            self.at("removing backup schedules", None, plan.host)
            await control(ControlStub.delete_backup_schedules, inst)
            # a shelved server's offload timer never fires for a deleted one
            workflow.deprecate_patch("delete-shelved")
            await control(ControlStub.cancel_shelve_offload, inst)
            workflow.deprecate_patch(PATCH)
            groups = await groups_of(ref.instance_id)
            # read while its ports still point at it: releasing them disassociates
            workflow.deprecate_patch(SERVICES)
            fips = await floating_specs(ref.instance_id)
            workflow.deprecate_patch("delete-resize-source")
            await self._drop_source_copies(inst)
            if plan.host:  # an offloaded server has none: nothing on any host
                self.at("destroying domain", None, plan.host)
                await on_host(plan.host, HostStub.destroy_domain, inst, give_up_after_s=3600,
                              attempts=0)
                # before its ports go: their addresses may be the next guest's
                self.at("withdrawing metadata and floating IPs", None, plan.host)
                await withdraw_metadata(plan.host, ref.instance_id)
                await remove_floating_ips(plan.host, fips, attempts=0,
                                          give_up_after_s=3600)
                # the ports' DHCP reservations and filters, once no NIC uses them
                self.at("unplugging ports", None, plan.host)
                await unplug(plan.host, ref.instance_id)
                self.at("deleting disks", None, plan.host)
                await on_host(plan.host, HostStub.delete_instance_files, inst, give_up_after_s=3600,
                              attempts=0)
                await control(ControlStub.release_claim, InstanceHost(ref.instance_id, plan.host))
            # made ports deleted (addresses freed), given unbound
            await control(ControlStub.release_instance_ports, inst)
            # its groups' other members stop letting its addresses in
            await refresh_members(groups)
            await control(ControlStub.ledger_forget_instance, inst)
            # its shelve image goes with it, as in Nova
            await control(ControlStub.shelve_forget, inst)
            await control(ControlStub.update_instance, InstanceUpdate(
                ref.instance_id, vm_state=TRANSITIONS["delete"].target, clear_task_state=True))
        except Exception as err:
            # nothing to undo (each step only removes); ERROR says a retry is needed
            fault = f"delete failed: {describe(err)}"
            await to_the_end(self._end(ref, "failed", fault))
            raise ApplicationError(fault, type=error_type(err), non_retryable=True) from err
        self.at("done", 100)
        await to_the_end(self._end(ref, "succeeded"))

    async def _drop_source_copies(self, inst: InstanceRef) -> None:
        """A resized server waiting for confirm or revert also has its source's copy and
        the migration's claim: they go as a confirm would remove them (Nova confirms a
        resize on delete), and its auto-confirm timer is cancelled."""
        await cancel_auto_confirm(inst.instance_id)
        for p in (await control(ControlStub.pending_resizes, inst)).items:
            copy = SourceCopy(p.instance_id, p.migration_id, same_host=p.source == p.dest)
            self.at("removing the source copy", None, p.source)
            await on_host(p.source, HostStub.drop_source, copy, give_up_after_s=3600, attempts=0)
            if p.source != p.dest:
                await unplug(p.source, inst.instance_id)
            await control(ControlStub.release_claim, InstanceHost(p.migration_id, p.source))
            await control(ControlStub.end_resize, ResizeEnd(p.instance_id, p.migration_id,
                                                            CONFIRMED))

    async def _end(self, ref: OperationRef, status: str, fault: str | None = None) -> None:
        if fault is not None:  # ERROR says a retry is needed
            await control(ControlStub.update_instance, InstanceUpdate(
                ref.instance_id, vm_state=VmState.ERROR, clear_task_state=True, fault=fault))
        await control(ControlStub.finish_operation,
                      FinishOperation(ref.operation_id, status, fault))
        self.row_finished = True
