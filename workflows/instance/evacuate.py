"""evacuate: the server's host is down; rebuild the server on another host from its
image, as a launch would (same id, name, flavor, metadata, keypair, user data; the
local disk's contents are lost, as in Nova).

    check again that the source is down; Migration row (evacuation, accepted)
    schedule (never the source; only the admin's host if one was named), claim,
        fetch the images                                   -> pre-migrating
    disk, config drive, define; start and wait for the agent unless it was stopped
    the server lives on the destination: active (from active or error) or stopped
    (from stopped); the source's claim released           -> done

The old copy stays on the dead host, with its ledger entries there: when that host's
worker registers again, RegisterHost removes it instead of starting it
(workflows/_base/evacuated.py) and the row becomes completed.

Any failure undoes the destination's domain, disk and claim, claims the source again
and leaves the server where and as it was, with the fault; the row becomes failed.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from vmflow.contracts.control_stub import ControlStub
    from vmflow.contracts.evacuate import (
        EvacuateRequest,
        EvacuationEnd,
        EvacuationPlan,
        MigrationStatus,
    )
    from vmflow.contracts.instances import (
        ClaimRequest,
        InstanceHost,
        LedgerEntries,
        LedgerEntry,
    )
    from vmflow.states import VmState

from workflows._base.evacuated import remove_evacuated
from workflows._base.operation import RowOwner, owns_operation, to_the_end
from workflows._base.saga import Compensations
from workflows._base.spawn import Spawning
from workflows._base.steps import control, describe, error_type

SOURCE_REASON = "the server's own host, which it is evacuated from"
# the source came back while this ran: its worker polls, so it takes the clean-up soon
SOURCE_PICKUP_S = 30


@workflow.defn(name="EvacuateInstance")
class EvacuateInstance(Spawning, RowOwner):
    def __init__(self) -> None:
        super().__init__("checking the source host")

    @workflow.run
    @owns_operation
    async def run(self, req: EvacuateRequest) -> str:
        undo = Compensations()
        ev: EvacuationPlan | None = None
        try:
            ev = await control(ControlStub.begin_evacuation, req)
            dest = await self._rebuild(ev, undo)
        except (Exception, asyncio.CancelledError) as err:
            fault = await to_the_end(self._compensate(req, ev, err, undo))
            raise ApplicationError(fault, type=error_type(err), non_retryable=True) from err
        await to_the_end(self._succeed(req, ev, dest))
        return dest

    async def _rebuild(self, ev: EvacuationPlan, undo: Compensations) -> str:
        plan = ev.launch

        async def claim_source_again() -> None:  # after the destination's is released
            await control(ControlStub.claim, ClaimRequest(
                plan.instance_id, ev.source, plan.vcpus, plan.ram_mb, plan.disk_gb))

        undo.push("source claim", claim_source_again)
        dest, paths = await self.place_and_fetch(plan, undo, requested_host=ev.host,
                                                 ruled_out={ev.source: SOURCE_REASON})
        await control(ControlStub.evacuation_status,
                      MigrationStatus(ev.migration_id, "pre-migrating", dest))
        await self.spawn(plan, dest, paths, undo, power_on=ev.vm_state != VmState.STOPPED)
        return dest

    async def _succeed(self, req: EvacuateRequest, ev: EvacuationPlan, dest: str) -> None:
        """The source's claim goes (its disk and domain entries stay for the clean-up);
        then server, operation and Migration row together."""
        self.at("releasing the source", 95)
        iid = req.instance_id
        await control(ControlStub.release_claim, InstanceHost(iid, ev.source))
        await control(ControlStub.ledger_forget,
                      LedgerEntries([LedgerEntry(ev.source, "claim", iid, iid)]))
        target = VmState.STOPPED if ev.vm_state == VmState.STOPPED else VmState.ACTIVE
        ended = await control(ControlStub.end_evacuation, EvacuationEnd(
            iid, req.operation_id, ev.migration_id, dest, target, "succeeded"))
        self.row_finished = True
        self.at("done", 100)
        if ended.source_back:  # registered meanwhile: its clean-up did not see this one
            await remove_evacuated(ev.source, SOURCE_PICKUP_S)

    async def _compensate(self, req: EvacuateRequest, ev: EvacuationPlan | None,
                          err: BaseException, undo: Compensations) -> str:
        self.at("compensating")
        fault = describe(err)
        if ev is None:  # refused before anything was done (begin gave the task back)
            await self.settle_row(req.operation_id, "failed", fault)
            return fault
        failed = await undo.run()
        if failed:
            fault += f" (undo of {', '.join(failed)} failed)"
        await control(ControlStub.end_evacuation, EvacuationEnd(
            req.instance_id, req.operation_id, ev.migration_id, ev.source, ev.vm_state,
            "failed" if failed else "compensated", fault))
        self.row_finished = True
        return fault
