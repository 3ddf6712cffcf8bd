"""The ledger reconciler, run by a Temporal Schedule (DESIGN decision 9): on each
host, list vmflow's domains and instance dirs, compare them with the ledger, the
claims and the instance rows, and remove what instances that are gone left behind
(Nova's running_deleted_instance_action=reap and its orphan clean-ups). Live
instances are never touched: what disagrees about them is reported. The rules are in
activities/orphans.py; removal uses the delete workflow's own steps."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from vmflow.contracts import ControlActs, HostActs, InstanceHost, InstanceRef, LedgerEntries
    from vmflow.reconcile_contracts import (
        HostRef,
        HostResources,
        OrphanRemoval,
        ReconcileHosts,
        ReconcileLedgerRequest,
        ReconcileLedgerResult,
        ReconcilePlan,
        ReconcilePlanRequest,
    )

from workflows.steps import control, describe, on_host


@workflow.defn(name="ReconcileLedger")
class ReconcileLedger:
    def __init__(self) -> None:
        self.removed = self.forgotten = self.reported = self.deferred = self.failed = 0
        self.skipped: list[str] = []
        self.details: list[str] = []

    @workflow.run
    async def run(self, req: ReconcileLedgerRequest) -> ReconcileLedgerResult:
        hosts = await control(ControlActs.RECONCILE_HOSTS, req, ReconcileHosts)
        for host in hosts.dead:
            self._skip(host, f"no worker polls hv.{host}")
        for host in hosts.alive:
            try:
                listing = await on_host(host, HostActs.LIST_RESOURCES, HostRef(host),
                                        HostResources, schedule_to_start_s=10, attempts=2,
                                        give_up_after_s=60)
            except Exception as err:  # a host that does not answer says nothing
                self._skip(host, describe(err))
                continue
            plan = await control(ControlActs.RECONCILE_PLAN,
                                 ReconcilePlanRequest(listing, req.grace_s), ReconcilePlan)
            await self._apply(plan)
        result = ReconcileLedgerResult(self.removed, self.forgotten, self.reported,
                                       self.deferred, self.failed, self.skipped, self.details)
        workflow.logger.info(
            "ledger reconcile: %d removed, %d ledger entries forgotten, %d reported, "
            "%d deferred, %d failed, hosts skipped: %s", result.removed, result.forgotten,
            result.reported, result.deferred, result.failed, ", ".join(self.skipped) or "none")
        for line in self.details:
            workflow.logger.info("ledger reconcile: %s", line)
        return result

    def _skip(self, host: str, why: str) -> None:
        self.skipped.append(host)
        self.details.append(f"{host}: skipped: {why}")

    async def _apply(self, plan: ReconcilePlan) -> None:
        host = plan.host
        for orphan in plan.remove:
            try:
                self.removed += await self._remove(host, orphan)
            except Exception as err:  # the next run tries again
                self.failed += 1
                self.details.append(f"{host}: failed: {orphan.why}: {describe(err)}")
                continue
            self.forgotten += len(orphan.entries)
            self.details.append(f"{host}: {orphan.why}")
        if plan.forget:
            await control(ControlActs.LEDGER_FORGET, LedgerEntries(plan.forget))
            self.forgotten += len(plan.forget)
            self.details += [f"{host}: forgot the {e.kind} entry of instance {e.instance_id} "
                             f"(the instance and the {e.kind} are gone)" for e in plan.forget]
        self.reported += len(plan.reported)
        self.details += [f"{host}: reported: {line}" for line in plan.reported]
        self.deferred += len(plan.deferred)
        self.details += [f"{host}: deferred: {line}" for line in plan.deferred]

    async def _remove(self, host: str, orphan: OrphanRemoval) -> int:
        """What delete does, for one gone instance: domain (destroy, undefine with its
        managed save and NVRAM), then its files, then its claim, then its entries."""
        ref = InstanceRef(orphan.instance_id)
        if orphan.domain:
            await on_host(host, HostActs.DESTROY_DOMAIN, ref, schedule_to_start_s=10,
                          attempts=3, give_up_after_s=300)
        if orphan.dir:
            await on_host(host, HostActs.DELETE_DISKS, ref, schedule_to_start_s=10,
                          attempts=3, give_up_after_s=300)
        if orphan.claim:
            await control(ControlActs.RELEASE_CLAIM, InstanceHost(orphan.instance_id, host))
        if orphan.entries:
            await control(ControlActs.LEDGER_FORGET, LedgerEntries(orphan.entries))
        return int(orphan.domain) + int(orphan.dir) + int(orphan.claim)
