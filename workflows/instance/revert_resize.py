"""revertResize: the destination's copy of a resized server goes (its guest, files,
claim and ledger rows), the source's copy comes back with the old flavor, its claim
the instance's own again, and it runs again if it ran before the move. Both hosts
are looked at first, so a guest is never started twice. Every step is idempotent;
a revert that fails leaves the server in VERIFY_RESIZE, so reverting again finishes
it."""

from __future__ import annotations

from dataclasses import replace

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from vmflow.contracts.actions import ActionStart, InstanceFacts, WaitAgent
    from vmflow.contracts.control_stub import ControlStub
    from vmflow.contracts.errors import Errors
    from vmflow.contracts.host_stub import HostStub
    from vmflow.contracts.instances import (
        InstanceHost,
        InstanceRef,
        LedgerEntries,
        LedgerEntry,
        OperationRef,
    )
    from vmflow.contracts.migrations import MigrationUpdate
    from vmflow.contracts.resize import (
        REVERTED,
        REVERTING,
        MoveClaim,
        ResizeEnd,
        SourceCopy,
    )
    from vmflow.states import TRANSITIONS, VmState

from workflows._base.action import InstanceAction
from workflows._base.guest_services import PATCH as SERVICES
from workflows._base.guest_services import follow
from workflows._base.ports import PATCH, bind, unplug
from workflows._base.saga import Compensations
from workflows._base.steps import control, on_host
from workflows.background.auto_confirm import cancel_auto_confirm


@workflow.defn(name="RevertResize")
class RevertResize(InstanceAction):
    def __init__(self) -> None:
        super().__init__()
        self.back_on: str | None = None  # the source, once the instance is back there

    @workflow.run
    async def run(self, ref: OperationRef) -> None:
        start = ActionStart(ref.instance_id, ref.operation_id, "revert-resize")
        await self.run_action(start, TRANSITIONS[start.action].target, self._revert)

    async def _revert(self, facts: InstanceFacts, undo: Compensations) -> str:
        iid = facts.instance_id
        ref = InstanceRef(iid)
        found = (await control(ControlStub.pending_resizes, ref)).items
        if not found:
            raise ApplicationError(f"instance {iid} has no resize waiting for revert",
                                   type=Errors.INVALID_STATE, non_retryable=True)
        p = found[0]
        src, dest, mig = p.source, p.dest, p.migration_id
        copy = SourceCopy(iid, mig, same_host=src == dest)
        await control(ControlStub.migration_update, MigrationUpdate(mig, REVERTING))
        await cancel_auto_confirm(iid)

        self.at("looking at both hosts")
        seen = {h: await on_host(h, HostStub.observe, ref) for h in dict.fromkeys([dest, src])}
        self.at("removing the destination copy", None, dest)
        await on_host(dest, HostStub.discard_incoming, copy, give_up_after_s=3600)
        workflow.deprecate_patch(PATCH)
        if src != dest:  # its ports' filters and leases there
            await unplug(dest, iid)
        await control(ControlStub.release_claim, InstanceHost(iid, dest))
        await control(ControlStub.ledger_forget, LedgerEntries(
            [LedgerEntry(dest, kind, mig, iid) for kind in ("claim", "disk", "domain")]))

        self.at("restoring the source copy", None, src)
        restored = await on_host(src, HostStub.restore_source, copy)
        await control(ControlStub.move_claim, MoveClaim(src, mig, iid))
        await control(ControlStub.end_resize, ResizeEnd(iid, mig, REVERTED, src,
                                                        p.old_flavor_id))
        await bind(iid, src)
        workflow.deprecate_patch(SERVICES)
        await follow(iid, dest, src)  # documents and floating IPs back on the source
        self.back_on = src
        note = f"reverted to {src}"
        if restored.was_running:
            # the destination's guest was destroyed above; the source's may run already
            now = await on_host(src, HostStub.observe, ref)
            if now.power != "running":
                self.at("starting", None, src)
                await on_host(src, HostStub.power_on, ref)
                if facts.agent:
                    self.at("waiting for the guest agent", None, src)
                    deadline = workflow.now().timestamp() + facts.agent_timeout_s
                    await on_host(src, HostStub.wait_agent, WaitAgent(iid, deadline),
                                  heartbeat_s=10, timeout_s=facts.agent_timeout_s + 30,
                                  give_up_after_s=facts.agent_timeout_s * 3)
            else:
                note += " (its guest ran already: not started again)"
        before = ", ".join(f"{h}: {o.power}" for h, o in seen.items())
        return f"{note}; before: {before}"

    async def real_state(self, facts: InstanceFacts) -> str:
        """Back on the source: what its guest is; not back: still waiting for revert."""
        if self.back_on is None:
            return VmState.RESIZED
        return await super().real_state(replace(facts, host=self.back_on))
