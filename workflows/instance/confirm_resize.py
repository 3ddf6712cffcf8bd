"""confirmResize: the source's copy of a resized server goes (its domain unless one
host holds both, its set-aside files, the migration's claim and ledger rows); the
server stays as it runs on the destination, ACTIVE or SHUTOFF as before the move.
Every step is idempotent; a confirm that fails leaves the server in VERIFY_RESIZE,
so confirming again finishes it."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from vmflow.contracts.actions import ActionStart, InstanceFacts
    from vmflow.contracts.control_stub import ControlStub
    from vmflow.contracts.errors import Errors
    from vmflow.contracts.host_stub import HostStub
    from vmflow.contracts.instances import InstanceHost, InstanceRef, OperationRef
    from vmflow.contracts.migrations import MigrationUpdate
    from vmflow.contracts.resize import (
        CONFIRMED,
        CONFIRMING,
        ResizeEnd,
        SourceCopy,
    )
    from vmflow.states import TRANSITIONS, VmState

from workflows._base.action import InstanceAction
from workflows._base.ports import PATCH, unplug
from workflows._base.saga import Compensations
from workflows._base.steps import control, on_host
from workflows.background.auto_confirm import cancel_auto_confirm


@workflow.defn(name="ConfirmResize")
class ConfirmResize(InstanceAction):
    def __init__(self) -> None:
        super().__init__()
        self.finished = False

    @workflow.run
    async def run(self, ref: OperationRef) -> None:
        start = ActionStart(ref.instance_id, ref.operation_id, "confirm-resize")
        await self.run_action(start, TRANSITIONS[start.action].target, self._confirm)

    async def _confirm(self, facts: InstanceFacts, undo: Compensations) -> str:
        iid = facts.instance_id
        found = (await control(ControlStub.pending_resizes, InstanceRef(iid))).items
        if not found:
            raise ApplicationError(f"instance {iid} has no resize waiting for confirm",
                                   type=Errors.INVALID_STATE, non_retryable=True)
        p = found[0]
        copy = SourceCopy(iid, p.migration_id, same_host=p.source == p.dest)
        await control(ControlStub.migration_update, MigrationUpdate(p.migration_id, CONFIRMING))
        await cancel_auto_confirm(iid)
        self.at("removing the source copy", None, p.source)
        await on_host(p.source, HostStub.drop_source, copy, give_up_after_s=3600)
        workflow.deprecate_patch(PATCH)
        if p.source != p.dest:  # its ports' filters, leases
            await unplug(p.source, iid)
        await control(ControlStub.release_claim, InstanceHost(p.migration_id, p.source))
        await control(ControlStub.confirm_ledger, copy)
        await control(ControlStub.end_resize, ResizeEnd(iid, p.migration_id, CONFIRMED))
        self.finished = True
        return f"confirmed: the copy on {p.source} is removed"

    async def real_state(self, facts: InstanceFacts) -> str:
        """Done: what the guest on the destination is; not done: still waiting."""
        if not self.finished:
            return VmState.RESIZED
        return await super().real_state(facts)
