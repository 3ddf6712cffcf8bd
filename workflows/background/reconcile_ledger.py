"""The ledger reconciler, run by a Temporal Schedule (DESIGN decision 9): on each
host, list vmflow's domains and instance dirs, compare them with the ledger, the
claims and the instance rows, and remove what instances that are gone left behind
(Nova's running_deleted_instance_action=reap and its orphan clean-ups); then the same
on each storage host for shares and share snapshots (subvolumes and exports). Live
instances and shares are never touched: what disagrees about them is reported. A
full run (no hosts named) then checks the image store's files against the image rows.
The rules are in activities/control/host_orphans.py, activities/control/share_orphans.py and
activities/control/image_store_orphans.py; removal uses the delete workflows' own steps."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from vmflow.contracts.control_stub import ControlStub
    from vmflow.contracts.host_stub import HostStub
    from vmflow.contracts.instances import InstanceHost, InstanceRef, LedgerEntries, LedgerEntry
    from vmflow.contracts.networks import HostFloatingIps, HostNetworks
    from vmflow.contracts.reconcile import (
        ClosedRowsRequest,
        HostRef,
        ImageStoreRequest,
        OrphanRemoval,
        ReconcileLedgerRequest,
        ReconcileLedgerResult,
        ReconcilePlan,
        ReconcilePlanRequest,
        StoragePlan,
        StoragePlanRequest,
        StoredOrphan,
    )
    from vmflow.contracts.security_groups import NetworkPlan, NetworkPlanRequest
    from vmflow.contracts.shares import (
        ShareAccessSync,
        ShareLedger,
        ShareSpec,
        SnapshotSpec,
    )
    from vmflow.contracts.storage_stub import StorageStub

from workflows._base.steps import control, describe, on_host
from workflows.share.steps import on_storage


@workflow.defn(name="ReconcileLedger")
class ReconcileLedger:
    def __init__(self) -> None:
        self.removed = self.forgotten = self.reported = self.deferred = self.failed = 0
        self.repaired = self.settled = 0
        self.skipped: list[str] = []
        self.details: list[str] = []

    @workflow.run
    async def run(self, req: ReconcileLedgerRequest) -> ReconcileLedgerResult:
        hosts = await control(ControlStub.reconcile_hosts, req)
        for host in hosts.dead:
            self._skip(host, f"no worker polls hv.{host}")
        for host in hosts.alive:
            try:
                listing = await on_host(host, HostStub.list_instance_resources, HostRef(host),
                                        schedule_to_start_s=10, attempts=2, give_up_after_s=60)
            except Exception as err:  # a host that does not answer says nothing
                self._skip(host, describe(err))
                continue
            plan = await control(ControlStub.reconcile_plan,
                                 ReconcilePlanRequest(listing, req.grace_s))
            await self._apply(plan)
            workflow.deprecate_patch("network-reconcile")
            await self._networks(host, req)
        await self._storage_hosts(req)
        if not req.hosts:  # the store is no host: a run over named hosts leaves it be
            await self._image_store(req)
            await self._operation_rows(req)
        result = ReconcileLedgerResult(self.removed, self.forgotten, self.reported,
                                       self.deferred, self.failed, self.skipped, self.details,
                                       self.repaired, self.settled)
        workflow.logger.info(
            "ledger reconcile: %d removed, %d ledger entries forgotten, %d reported, "
            "%d deferred, %d failed, %d repaired, %d operations settled, hosts skipped: %s",
            result.removed, result.forgotten, result.reported, result.deferred, result.failed,
            result.repaired, result.settled, ", ".join(self.skipped) or "none")
        for line in self.details:
            workflow.logger.info("ledger reconcile: %s", line)
        return result

    async def _image_store(self, req: ReconcileLedgerRequest) -> None:
        """The image store's files against the image rows
        (activities/control/image_store_orphans.py): on the control worker, which shares
        the store with the API."""
        report = await control(ControlStub.reconcile_image_store,
                               ImageStoreRequest(req.grace_s))
        self.removed += report.removed
        self.repaired += report.repaired
        self.reported += report.reported
        self.deferred += report.deferred
        self.failed += report.failed
        self.details += [f"image store: {line}" for line in report.details]

    async def _operation_rows(self, req: ReconcileLedgerRequest) -> None:
        """Operation rows still running whose workflow closed (terminated, timed out,
        or older code that did not finish them): settled to how the workflow ended."""
        workflow.deprecate_patch("settle-operation-rows")
        report = await control(ControlStub.settle_closed_operations,
                               ClosedRowsRequest(req.grace_s))
        self.settled += report.settled
        self.details += [f"operations: settled {line}" for line in report.details]

    async def _attempt(self, where: str, why: str, step: Coroutine[Any, Any, object]) -> bool:
        """One removal or repair: told when done; a failure is counted and told, and the
        next run tries again."""
        try:
            await step
        except Exception as err:
            self.failed += 1
            self.details.append(f"{where}: failed: {why}: {describe(err)}")
            return False
        self.details.append(f"{where}: {why}")
        return True

    async def _forget(self, entries: list[LedgerEntry], lines: list[str]) -> None:
        """Ledger entries whose resource is gone already."""
        if entries:
            await control(ControlStub.ledger_forget, LedgerEntries(entries))
            self.forgotten += len(entries)
            self.details += lines

    def _tell(self, where: str, reported: list[str], deferred: list[str]) -> None:
        """What a host's plan only reports, and what it leaves for a later run."""
        self.reported += len(reported)
        self.details += [f"{where}: reported: {line}" for line in reported]
        self.deferred += len(deferred)
        self.details += [f"{where}: deferred: {line}" for line in deferred]

    def _skip(self, host: str, why: str) -> None:
        self.skipped.append(host)
        self.details.append(f"{host}: skipped: {why}")

    async def _apply(self, plan: ReconcilePlan) -> None:
        host = plan.host
        for orphan in plan.remove:
            if await self._attempt(host, orphan.why, self._remove(host, orphan)):
                self.removed += int(orphan.domain) + int(orphan.dir) + int(orphan.claim)
                self.forgotten += len(orphan.entries)
        await self._forget(plan.forget, [
            f"{host}: forgot the {e.kind} entry of instance {e.instance_id} (the instance and "
            f"the {e.kind} are gone)" for e in plan.forget])
        self._tell(host, plan.reported, plan.deferred)

    async def _networks(self, host: str, req: ReconcileLedgerRequest) -> None:
        """The host's guest networks against the network and port rows
        (activities/control/network_orphans.py) and its floating-IP NAT against the
        floating-IP rows (activities/control/floating_orphans.py), with the host's own
        network steps."""
        try:
            listing: HostNetworks = await on_host(
                host, HostStub.list_networks, HostRef(host), schedule_to_start_s=10,
                attempts=2, give_up_after_s=60)
        except Exception as err:
            self.details.append(f"{host}: networks not listed: {describe(err)}")
            return
        floating: HostFloatingIps | None = None
        workflow.deprecate_patch("floating-reconcile")
        try:
            floating = await on_host(
                host, HostStub.list_floating_ips, HostRef(host), schedule_to_start_s=10,
                attempts=2, give_up_after_s=60)
        except Exception as err:  # the networks are still judged
            self.details.append(f"{host}: floating IPs not listed: {describe(err)}")
        plan: NetworkPlan = await control(ControlStub.reconcile_networks,
                                          NetworkPlanRequest(listing, req.grace_s, floating))
        where = f"{host} networks"

        def step(act: Any, arg: object) -> Coroutine[Any, Any, object]:
            return on_host(host, act, arg, schedule_to_start_s=10, timeout_s=120,
                           attempts=3, give_up_after_s=300)

        for rf in plan.remove_floating_ips:
            if await self._attempt(where, rf.why, step(HostStub.remove_floating_ip, rf.ref)):
                self.removed += 1
        for rp in plan.remove_ports:
            if await self._attempt(where, rp.why, step(HostStub.remove_port, rp.ref)):
                self.removed += 1
        for rn in plan.remove_networks:
            if await self._attempt(where, rn.why, step(HostStub.remove_network, rn.ref)):
                self.removed += 1
        for en in plan.ensure_networks:
            if await self._attempt(where, en.why, step(HostStub.ensure_network, en.spec)):
                self.repaired += 1
        for ep in plan.ensure_ports:
            if await self._attempt(where, ep.why, step(HostStub.ensure_port, ep.port)):
                self.repaired += 1
        for ef in plan.ensure_floating_ips:
            if await self._attempt(where, ef.why, step(HostStub.ensure_floating_ip, ef.spec)):
                self.repaired += 1
        self._tell(where, plan.reported, plan.deferred)

    async def _storage_hosts(self, req: ReconcileLedgerRequest) -> None:
        """Shares and share snapshots, each storage host as a hypervisor host above."""
        hosts = await control(ControlStub.reconcile_storage_hosts, req)
        for host in hosts.dead:
            self._skip(f"storage.{host}", f"no worker polls storage.{host}")
        for host in hosts.alive:
            try:
                listing = await on_storage(host, StorageStub.list_shares, HostRef(host),
                                           schedule_to_start_s=10, attempts=2, give_up_after_s=60)
            except Exception as err:  # a host that does not answer says nothing
                self._skip(f"storage.{host}", describe(err))
                continue
            plan = await control(ControlStub.reconcile_shares,
                                 StoragePlanRequest(listing, req.grace_s))
            await self._apply_storage(plan)

    async def _apply_storage(self, plan: StoragePlan) -> None:
        where = f"storage.{plan.host}"
        for orphan in plan.remove:
            if await self._attempt(where, orphan.why, self._remove_stored(plan.host, orphan)):
                self.removed += orphan.removes
                self.forgotten += len(orphan.entries)
        await self._forget(plan.forget, [
            f"{where}: forgot the {e.kind} entry of {e.key} (no row, and nothing of it on "
            "the host)" for e in plan.forget])
        self._tell(where, plan.reported, plan.deferred)
        for resync in plan.resync:
            if await self._attempt(where, resync.why, control(
                    ControlStub.resync_share_access, ShareAccessSync(resync.share_id, plan.host))):
                self.repaired += 1

    async def _remove_stored(self, host: str, orphan: StoredOrphan) -> None:
        """What the delete workflows' storage step does (unexport, unmount, delete the
        subvolume; "already gone" is done), then the ledger entries."""
        if orphan.kind == ShareLedger.SNAPSHOT:  # only the snapshot id is read
            await on_storage(host, StorageStub.delete_snapshot,
                             SnapshotSpec(orphan.share_id or "", orphan.id),
                             schedule_to_start_s=10, attempts=3, give_up_after_s=300)
        else:
            await on_storage(host, StorageStub.delete_share, ShareSpec(orphan.id, 0),
                             schedule_to_start_s=10, timeout_s=300, attempts=3,
                             give_up_after_s=300)
        if orphan.entries:
            await control(ControlStub.ledger_forget, LedgerEntries(orphan.entries))

    async def _remove(self, host: str, orphan: OrphanRemoval) -> None:
        """What delete does, for one gone instance: domain (destroy, undefine with its
        managed save and NVRAM), then its files, then its claim, then its entries."""
        ref = InstanceRef(orphan.instance_id)
        if orphan.domain:
            await on_host(host, HostStub.destroy_domain, ref, schedule_to_start_s=10,
                          attempts=3, give_up_after_s=300)
        if orphan.dir:
            await on_host(host, HostStub.delete_instance_files, ref, schedule_to_start_s=10,
                          attempts=3, give_up_after_s=300)
        if orphan.claim:
            await control(ControlStub.release_claim, InstanceHost(orphan.instance_id, host))
        if orphan.entries:
            await control(ControlStub.ledger_forget, LedgerEntries(orphan.entries))
