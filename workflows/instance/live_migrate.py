"""os-migrateLive: move the running (or paused) guest and its disk to another host.

    Migration row (queued) → destination: the admin's (checked like the scheduler
    would) or the scheduler's, never the source → claim there (keyed by the
    migration) and fetch the images into its cache → preparing: the destination's
    files (an empty overlay over the same base, the config drive, domain.json) →
    running: the source's libvirtd migrates peer to peer (host.live_migrate, progress
    as heartbeats) while the destination heartbeats (host.watch_incoming) → the guest
    runs there: host, claims and ledger follow (point of no return) → the source's
    files go → completed.

Signals: `abort` cancels the migration step (the source aborts the job);
`force_complete` pauses the guest on the source so the job converges (unpaused on
the destination afterwards). A destination whose worker stops heartbeating gets the
migration aborted: nothing could manage the guest there.

On failure or abort the real domain on both hosts decides (host.observe): a guest
that already runs on the destination has moved (the operation completes); otherwise
the undos remove everything on the destination (domain, files, claim, ledger) and
the guest runs on in the source, as before.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from vmflow.contracts.actions import ActionStart, InstanceFacts
    from vmflow.contracts.control_stub import ControlStub
    from vmflow.contracts.errors import Errors
    from vmflow.contracts.host_stub import HostStub
    from vmflow.contracts.instances import (
        ClaimRequest,
        InstanceHost,
        InstanceRef,
        LedgerEntries,
        LedgerEntry,
        ScheduleRequest,
    )
    from vmflow.contracts.migrations import (
        ABORT_SIGNAL,
        FORCE_COMPLETE_SIGNAL,
        MIGRATION_QUERY,
        CheckDestination,
        DestinationDirs,
        LiveMigrateRequest,
        LiveMigrationPlan,
        LiveMigrationResult,
        LiveStatus,
        MigrationDone,
        MigrationProgress,
        MigrationState,
        MigrationTarget,
        MigrationUpdate,
        PrepareLiveMigration,
        RunLiveMigration,
    )
    from vmflow.names import SA_HOST, hv_queue
    from vmflow.states import TRANSITIONS, VmState

from workflows._base.action import InstanceAction
from workflows._base.floating import move_floating_ips
from workflows._base.guest_services import PATCH as SERVICES
from workflows._base.guest_services import publish, withdraw_best_effort
from workflows._base.metadata import withdraw_metadata
from workflows._base.placement import not_taken, place
from workflows._base.ports import PATCH, bind, plug, unplug
from workflows._base.saga import Compensations
from workflows._base.spawn import fetch_images
from workflows._base.steps import control, describe, not_picked_up, on_host, retry

HEARTBEAT_S = 10  # the migration step heartbeats every 0.5 s; the destination's watch too
MAX_FORCE_REQUESTS = 20  # each is one pause on the source; more change nothing


@workflow.defn(name="LiveMigrateInstance")
class LiveMigrateInstance(InstanceAction):
    def __init__(self) -> None:
        super().__init__()
        self._abort = False
        self._force = 0
        self._lost = False
        self._current: str | None = None  # where the guest runs once it moved
        self._published = False  # its documents were published on the destination
        self._mig = MigrationState(None, LiveStatus.QUEUED, None, None)

    @workflow.signal(name=ABORT_SIGNAL)
    def abort(self) -> None:
        self._abort = True

    @workflow.signal(name=FORCE_COMPLETE_SIGNAL)
    def force_complete(self) -> None:
        self._force += 1

    @workflow.query(name=MIGRATION_QUERY)
    def migration(self) -> MigrationState:
        return self._mig

    async def real_state(self, facts: InstanceFacts) -> str:
        """Observed where the guest is: the destination once it moved."""
        return await super().real_state(replace(facts, host=self._current or facts.host))

    @workflow.run
    async def run(self, req: LiveMigrateRequest) -> None:
        async def ended(fault: str) -> None:
            if self._mig.migration_id is None:
                return
            status = (LiveStatus.CANCELLED if self._abort
                      else LiveStatus.ERROR if self._lost else LiveStatus.FAILED)
            await self._update(status=status)

        async def body(facts: InstanceFacts, undo: Compensations) -> str | None:
            return await self._body(req, facts, undo)

        start = ActionStart(req.instance_id, req.operation_id, "live-migrate")
        # target None: the state the guest really has where it runs (real_state)
        await self.run_action(start, TRANSITIONS[start.action].target, body, on_failure=ended)

    async def _update(self, status: str | None = None, dest: str | None = None,
                      progress: MigrationProgress | None = None) -> None:
        m = self._mig
        assert m.migration_id is not None
        self._mig = MigrationState(m.migration_id, status or m.status, m.source, dest or m.dest)
        await control(ControlStub.migration_update,
                      MigrationUpdate(m.migration_id, status, dest, progress))

    async def _body(self, req: LiveMigrateRequest, facts: InstanceFacts,
                    undo: Compensations) -> str | None:
        plan = await control(ControlStub.live_migration_begin, req)
        self._mig = MigrationState(plan.migration_id, LiveStatus.QUEUED, plan.source,
                                   req.host)
        dest, images = await self._destination(req, plan, undo)
        await self._update(status=LiveStatus.PREPARING, dest=dest)
        target = await control(ControlStub.migration_target, InstanceHost(plan.instance_id, dest))
        dirs = await self._prepare(plan, dest, images, undo)
        await self._update(status=LiveStatus.RUNNING)
        result = await self._migrate(req, plan, target, dirs)
        # the guest runs on the destination: no way back from here
        self._current = dest
        undo.clear()
        self.at("post-migration", 100, dest)
        workflow.upsert_search_attributes([SA_HOST.value_set(dest)])
        progress = await self._totals(dest, plan.instance_id, result.progress)
        await control(ControlStub.live_migration_done, MigrationDone(
            plan.migration_id, plan.instance_id, plan.source, dest, progress))
        await self._move_floating_ips(plan.instance_id, plan.source, dest)
        if result.paused_to_converge and facts.vm_state == VmState.ACTIVE:
            await on_host(dest, HostStub.unpause, InstanceRef(plan.instance_id))
        if self._published:  # the source serves its documents no more
            await withdraw_best_effort(plan.source, plan.instance_id)
        note = await self._clean_source(plan)
        workflow.deprecate_patch(PATCH)
        await bind(plan.instance_id, dest)  # the ports follow the guest
        if note is None:  # its domain is gone from the source: its filters may go
            await unplug(plan.source, plan.instance_id)
        await self._update(status=LiveStatus.COMPLETED)
        took = f" in {result.elapsed_s:.1f}s" if result.elapsed_s else ""
        return f"live-migrated from {plan.source} to {dest}{took}" + (
            " (paused to converge)" if result.paused_to_converge else "") + (note or "")

    async def _move_floating_ips(self, instance_id: str, source: str, dest: str) -> None:
        """The guest's floating IPs NATed by the destination now; never fails the move."""
        workflow.deprecate_patch("floating-ips-follow")
        try:
            await move_floating_ips(instance_id, source, dest)
        except Exception as err:
            workflow.logger.warning("floating IPs of %s did not follow: %s", instance_id, err)

    # ---- the destination ------------------------------------------------------------
    async def _destination(self, req: LiveMigrateRequest, plan: LiveMigrationPlan,
                           undo: Compensations) -> tuple[str, dict[str, str]]:
        async def attempt(host: str) -> dict[str, str]:
            self.at("claiming", None, host)
            await self._update(dest=host)
            claim = LedgerEntry(host, "claim", plan.migration_id, plan.instance_id)

            async def release() -> None:
                await control(ControlStub.release_claim, InstanceHost(plan.migration_id, host))
                await control(ControlStub.ledger_forget, LedgerEntries([claim]))

            undo.push("claim", release)
            await control(ControlStub.ledger_record, LedgerEntries([claim]))
            await control(ControlStub.claim, ClaimRequest(plan.migration_id, host, plan.vcpus,
                                                          plan.ram_mb, plan.disk_gb))
            return await self._fetch(plan, host)

        async def give_up(host: str) -> None:
            await undo.run_one("claim")

        self.at("scheduling")
        if req.host is None:
            request = ScheduleRequest(plan.instance_id, plan.vcpus, plan.ram_mb, plan.disk_gb,
                                      plan.required_traits, plan.forbidden_traits,
                                      tried={plan.source: "the server's own host"})
            return await place(request, plan.schedule_attempts, plan.schedule_to_start_s,
                               attempt, give_up)
        await control(ControlStub.check_destination, CheckDestination(
            plan.instance_id, plan.source, req.host, plan.vcpus, plan.ram_mb, plan.disk_gb,
            plan.required_traits, plan.forbidden_traits))
        try:
            return req.host, await attempt(req.host)
        except Exception as err:
            if not_picked_up(err):
                raise ApplicationError(
                    f"No valid host was found. {req.host}: "
                    f"{not_taken(plan.schedule_to_start_s)}.",
                    type=Errors.NO_VALID_HOST, non_retryable=True) from err
            raise

    async def _fetch(self, plan: LiveMigrationPlan, host: str) -> dict[str, str]:
        """The instance's images into the destination's cache (shared entries,
        ledgered like launch's); the first step on that host, so a host that does not
        take it within the schedule-to-start timeout is given up."""
        self.at("fetching image", None, host)
        return await fetch_images(host, [plan.root, plan.kernel, plan.ramdisk],
                                  plan.schedule_to_start_s)

    async def _prepare(self, plan: LiveMigrationPlan, dest: str, paths: dict[str, str],
                       undo: Compensations) -> DestinationDirs:
        self.at("preparing the destination", None, dest)
        ref = InstanceRef(plan.instance_id)
        entries = [LedgerEntry(dest, kind, plan.instance_id, plan.instance_id)
                   for kind in ("disk", "domain")]

        async def clean_destination() -> None:
            """Only while the guest still runs on the source: a guest that moved is
            never destroyed (DESIGN 6)."""
            src = await on_host(plan.source, HostStub.observe, ref, attempts=0,
                                give_up_after_s=300)
            if not src.exists:
                raise ApplicationError("the guest is no longer on the source; the "
                                       "destination is left as it is", non_retryable=True)
            await on_host(dest, HostStub.destroy_domain, ref, attempts=0)
            if self._published:
                await withdraw_metadata(dest, plan.instance_id)
            # the ports' reservations and filters, once no NIC uses them
            await unplug(dest, plan.instance_id)
            await on_host(dest, HostStub.delete_instance_files, ref, attempts=0)
            await control(ControlStub.ledger_forget, LedgerEntries(entries))

        workflow.deprecate_patch(PATCH)
        undo.push("destination", clean_destination)
        await control(ControlStub.ledger_record, LedgerEntries(entries))
        # the networks and the ports' filters on the destination before the guest
        # comes: libvirt refuses a NIC whose nwfilter is missing there (undone in
        # clean_destination, only while the guest is still on the source)
        self.at("plugging ports", None, dest)
        nics = await plug(dest, plan.instance_id)
        # served there before the guest comes (withdrawn in clean_destination)
        self._published = bool(nics)
        if self._published:
            workflow.deprecate_patch(SERVICES)
            await publish(dest, plan.instance_id)
        return await on_host(dest, HostStub.prepare_live_migration, PrepareLiveMigration(
            plan.instance_id, paths[plan.root.image_id], plan.root.disk_format, plan.disk_gb,
            paths[plan.kernel.image_id] if plan.kernel else None,
            paths[plan.ramdisk.image_id] if plan.ramdisk else None,
            plan.cmdline, plan.agent, plan.vcpus, plan.ram_mb, plan.config_drive, nics),
            timeout_s=600)

    # ---- the migration --------------------------------------------------------------
    async def _migrate(self, req: LiveMigrateRequest, plan: LiveMigrationPlan,
                       target: MigrationTarget, dirs: DestinationDirs) -> LiveMigrationResult:
        self.at("migrating", 0, plan.source)
        ref = InstanceRef(plan.instance_id)
        run = RunLiveMigration(plan.instance_id, target.host, target.migration_uri, dirs,
                               req.block_migration, plan.downtime_ms,
                               plan.completion_timeout_s, plan.timeout_action)
        job = asyncio.ensure_future(workflow.execute_activity_method(
            HostStub.live_migrate, run, task_queue=hv_queue(plan.source),
            schedule_to_start_timeout=timedelta(seconds=plan.schedule_to_start_s),
            start_to_close_timeout=timedelta(seconds=plan.completion_timeout_s + 300),
            heartbeat_timeout=timedelta(seconds=HEARTBEAT_S), retry_policy=retry(3),
            cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED))
        watch = asyncio.ensure_future(workflow.execute_activity_method(
            HostStub.watch_incoming, ref, task_queue=hv_queue(target.host),
            schedule_to_start_timeout=timedelta(seconds=plan.schedule_to_start_s),
            start_to_close_timeout=timedelta(seconds=plan.completion_timeout_s + 300),
            heartbeat_timeout=timedelta(seconds=HEARTBEAT_S), retry_policy=retry(1)))
        paused = False
        try:
            for _ in range(MAX_FORCE_REQUESTS + 2):
                await workflow.wait_condition(
                    lambda: job.done() or self._abort or self._force > 0
                    or (watch.done() and watch.exception() is not None))
                if job.done():
                    break
                if self._abort or watch.done():
                    if not self._abort:
                        workflow.logger.warning("destination %s stopped heartbeating: "
                                                "aborting", target.host)
                    job.cancel()
                    break
                self._force = 0
                self.at("migrating (paused to converge)", None, plan.source)
                paused = await on_host(plan.source, HostStub.force_complete_migration,
                                       ref) or paused
            result = await job
        except (Exception, asyncio.CancelledError) as err:
            if not await self._moved_anyway(plan, target.host):
                if watch.done() and not self._abort and watch.exception() is not None:
                    raise ApplicationError(
                        f"the destination {target.host} stopped answering during the "
                        f"migration ({describe(watch.exception() or err)}); aborted",
                        type="LiveMigrationFailed", non_retryable=True) from err
                raise
            result = LiveMigrationResult(MigrationProgress(percent=100), paused, 0.0)
        finally:
            if not watch.done():
                watch.cancel()
        return replace(result, paused_to_converge=result.paused_to_converge or paused)

    async def _totals(self, dest: str, instance_id: str,
                      polled: MigrationProgress) -> MigrationProgress:
        """The source's last poll may have missed the memory phase (a small guest's
        can end between two polls): the destination's record of the completed job
        fills it in. A destination that cannot say changes nothing: the guest moved."""
        if polled.memory_total:
            return polled
        try:
            kept = await on_host(dest, HostStub.incoming_migration_totals,
                                 InstanceRef(instance_id), give_up_after_s=60, attempts=2)
        except Exception as e:
            workflow.logger.info("no completed-job totals from %s: %s", dest, describe(e))
            return polled
        return kept if kept.memory_total else polled

    async def _moved_anyway(self, plan: LiveMigrationPlan, dest: str) -> bool:
        """After a failed or aborted migration step: where does the guest run? True
        when on the destination only (the job completed after all)."""
        ref = InstanceRef(plan.instance_id)
        try:
            src = await on_host(plan.source, HostStub.observe, ref, give_up_after_s=300)
        except Exception:
            return False  # the source cannot say: nothing is decided on a guess
        if src.exists:
            return False
        try:
            dst = await on_host(dest, HostStub.observe, ref, give_up_after_s=300)
        except Exception:
            self._lost = True
            return False
        if dst.vm_state() in (VmState.ACTIVE, VmState.PAUSED):
            return True
        self._lost = True
        return False

    async def _clean_source(self, plan: LiveMigrationPlan) -> str | None:
        """The source's domain (undefined by the migration: ensured) and files; a
        failure here is noted, never undone: the guest runs on the destination."""
        self.at("cleaning the source", 100)
        ref = InstanceRef(plan.instance_id)
        try:
            await on_host(plan.source, HostStub.destroy_domain, ref, give_up_after_s=300)
            await on_host(plan.source, HostStub.delete_instance_files, ref,
                          give_up_after_s=300)
        except Exception as err:
            return f"; the source's files were not removed ({describe(err)})"
        await control(ControlStub.ledger_forget, LedgerEntries([
            LedgerEntry(plan.source, kind, plan.instance_id, plan.instance_id)
            for kind in ("disk", "domain")]))
        return None
