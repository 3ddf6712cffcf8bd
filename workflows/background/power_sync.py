"""The power-state reconciler, run by a Temporal Schedule: compare each instance's
vm_state with its domain on the host (a guest may power itself off) and make the DB
say what is true, recording an action that says why."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from vmflow.contracts.actions import InstanceIds, SyncApply, SyncResult
    from vmflow.contracts.control_stub import ControlStub
    from vmflow.contracts.host_stub import HostStub

from workflows._base.steps import control, on_host


@workflow.defn(name="PowerSync")
class PowerSync:
    @workflow.run
    async def run(self, only: InstanceIds) -> SyncResult:
        candidates = await control(ControlStub.power_sync_candidates, only)
        fixed: list[str] = []
        for host, ids in sorted(candidates.by_host.items()):
            try:
                seen = await on_host(host, HostStub.observe_many, InstanceIds(ids),
                                     schedule_to_start_s=10, attempts=2, give_up_after_s=60)
            except Exception as err:  # a dead host says nothing about its guests
                workflow.logger.warning("power sync skipped host %s: %s", host, err)
                continue
            result = await control(ControlStub.power_sync_apply, SyncApply(seen.items))
            fixed += result.fixed
        return SyncResult(fixed)
