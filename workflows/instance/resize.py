"""resize and migrate (cold): the Migration row → the source's claim becomes the
migration's → place and claim the destination (new flavor) → stop the guest cleanly
→ the source sets its copy aside and serves it read-only over NBD → the destination
pulls it (progress heartbeats), puts it over its own cached base, grows the root
disk → define with the new flavor, start there if it ran → arm the auto-confirm
timer → VERIFY_RESIZE. The source keeps its copy and claim until confirm or revert.

Every step pushes its undo first; the undos that start or remove a guest look at
both hosts first (HostStub.observe), and the host steps only ever remove what this
migration made, so compensation never starts a guest twice or removes the source's."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from vmflow.contracts.actions import ActionStart, InstanceFacts, Shutdown, WaitAgent
    from vmflow.contracts.control_stub import ControlStub
    from vmflow.contracts.host_stub import HostStub
    from vmflow.contracts.instances import (
        ClaimRequest,
        DefineDomain,
        InstanceHost,
        InstanceRef,
        InstanceUpdate,
        LedgerEntries,
        LedgerEntry,
        ScheduleRequest,
    )
    from vmflow.contracts.migrations import MigrationProgress, MigrationUpdate
    from vmflow.contracts.resize import (
        ERROR,
        MIGRATING,
        POST_MIGRATING,
        AutoConfirmRequest,
        MoveClaim,
        PullFiles,
        ResizeDone,
        ResizePlan,
        ResizeRequest,
        SourceCopy,
    )
    from vmflow.names import SA_HOST, auto_confirm_workflow_id
    from vmflow.states import TRANSITIONS, TaskState, VmState

from workflows._base.action import InstanceAction
from workflows._base.guest_services import PATCH as SERVICES
from workflows._base.guest_services import follow, publish
from workflows._base.placement import place
from workflows._base.ports import PATCH, bind, plug
from workflows._base.saga import Compensations
from workflows._base.spawn import fetch_images
from workflows._base.steps import control, on_host
from workflows.background.auto_confirm import AutoConfirmResize

ARM_BEFORE_END = "resize-arms-auto-confirm-before-end"
SAME_HOST_OFF = "the server's own host (VMFLOW_ALLOW_RESIZE_TO_SAME_HOST is off)"


@workflow.defn(name="ResizeInstance")
class ResizeInstance(InstanceAction):
    def __init__(self) -> None:
        super().__init__()
        self.plan: ResizePlan | None = None

    @workflow.run
    async def run(self, req: ResizeRequest) -> None:
        action = "resize" if req.flavor_id else "migrate"
        start = ActionStart(req.instance_id, req.operation_id, action)

        armed = False

        async def body(facts: InstanceFacts, undo: Compensations) -> str:
            nonlocal armed
            self.at("preparing")
            self.plan = await control(ControlStub.begin_resize, req)
            note = await self._move(facts, self.plan, undo)
            # armed before the operation ends: a confirm sent as soon as it ended finds
            # the timer to cancel, and this workflow closes at once (the next action on
            # the server would wait for it); histories from before arm it after the end
            if workflow.patched(ARM_BEFORE_END):
                armed = True
                await self._arm_auto_confirm(self.plan)
            return note

        await self.run_action(start, TRANSITIONS[start.action].target, body,
                              on_failure=self._failed)
        if self.plan is not None and not armed:
            await self._arm_auto_confirm(self.plan)

    async def _arm_auto_confirm(self, plan: ResizePlan) -> None:
        if plan.confirm_window_s <= 0:
            return
        try:
            await workflow.start_child_workflow(
                AutoConfirmResize.run,
                AutoConfirmRequest(plan.instance_id, plan.migration_id,
                                   plan.confirm_window_s),
                id=auto_confirm_workflow_id(plan.instance_id),
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                static_summary=f"confirm the resize of instance {plan.instance_id} in "
                               f"{plan.confirm_window_s:g}s")
        except Exception as err:  # the server waits for a confirm by hand instead
            workflow.logger.warning("auto-confirm timer not armed: %s", err)

    async def _failed(self, fault: str) -> None:
        if self.plan is not None:
            await control(ControlStub.migration_update,
                          MigrationUpdate(self.plan.migration_id, status=ERROR))

    async def _move(self, facts: InstanceFacts, plan: ResizePlan, undo: Compensations) -> str:
        iid, mig, src = plan.instance_id, plan.migration_id, plan.source
        was_running = facts.vm_state == VmState.ACTIVE

        async def claim_back() -> None:
            await control(ControlStub.move_claim, MoveClaim(src, mig, iid))

        undo.push("source claim", claim_back)
        await control(ControlStub.move_claim, MoveClaim(src, iid, mig))
        dest, paths = await self._place(plan, undo)
        copy = SourceCopy(iid, mig, same_host=dest == src, was_running=was_running)
        await control(ControlStub.migration_update, MigrationUpdate(mig, MIGRATING, dest))
        await control(ControlStub.update_instance,
                      InstanceUpdate(iid, task_state=TaskState.RESIZE_MIGRATING))

        async def power_back() -> None:
            await self._restart_source(copy, src, dest)

        undo.push("power", power_back)
        if was_running:
            self.at("shutting down", None, src)
            await on_host(src, HostStub.shutdown, Shutdown(iid, facts.stop_timeout_s),
                          heartbeat_s=15, timeout_s=facts.stop_timeout_s + 60)

        async def restore() -> None:
            await on_host(src, HostStub.restore_source, copy, attempts=0)

        undo.push("source copy", restore)
        self.at("setting the source copy aside", None, src)
        await on_host(src, HostStub.set_aside, copy)

        async def unexport() -> None:
            await on_host(src, HostStub.unexport_files, copy, attempts=0)

        undo.push("export", unexport)
        exported = await on_host(src, HostStub.export_files, copy)
        total = sum(f.size for f in exported.files)
        await control(ControlStub.migration_update,
                      MigrationUpdate(mig, progress=MigrationProgress(
                          disk_total=total, disk_remaining=total)))

        # the networks and port filters on the destination before its domain is
        # defined; undone after the destination copy (below) is gone. One host:
        # they are the source's, never undone here
        workflow.deprecate_patch(PATCH)
        self.at("plugging ports", None, dest)
        nics = await plug(dest, iid, None if dest == src else undo)
        if nics:  # served before the guest boots there (one host: already served)
            workflow.deprecate_patch(SERVICES)
            await publish(dest, iid, None if dest == src else undo)
        made = LedgerEntries([LedgerEntry(dest, kind, mig, iid) for kind in ("disk", "domain")])

        async def discard() -> None:
            await on_host(dest, HostStub.discard_incoming, copy, attempts=0,
                          give_up_after_s=3600)
            await control(ControlStub.ledger_forget, made)

        undo.push("destination copy", discard)
        await control(ControlStub.ledger_record, made)
        self.at(f"copying {total} bytes", None, dest)
        # one attempt: a copy whose destination died is not resumed (Nova), it is undone
        pulled = await on_host(dest, HostStub.pull_files, PullFiles(
            iid, mig, exported, paths[plan.root.image_id], plan.root.disk_format,
            plan.new.disk_gb), heartbeat_s=30, timeout_s=3600, give_up_after_s=3600,
            attempts=1)
        await on_host(src, HostStub.unexport_files, copy)
        await control(ControlStub.migration_update,
                      MigrationUpdate(mig, POST_MIGRATING, progress=MigrationProgress(
                          disk_total=total, disk_processed=pulled.bytes,
                          disk_remaining=max(0, total - pulled.bytes), percent=100)))
        await control(ControlStub.update_instance,
                      InstanceUpdate(iid, task_state=TaskState.RESIZE_FINISH))

        self.at("defining the domain", None, dest)
        await on_host(dest, HostStub.define_domain, DefineDomain(
            iid, plan.new.vcpus, plan.new.ram_mb, pulled.disk_path,
            paths[plan.kernel.image_id] if plan.kernel else None,
            paths[plan.ramdisk.image_id] if plan.ramdisk else None,
            plan.cmdline, plan.agent, pulled.config_drive_path, nics))
        if was_running:
            self.at("starting", None, dest)
            await on_host(dest, HostStub.start_domain, InstanceRef(iid))
            if plan.agent:
                self.at("waiting for the guest agent", None, dest)
                deadline = workflow.now().timestamp() + facts.agent_timeout_s
                await on_host(dest, HostStub.wait_agent, WaitAgent(iid, deadline),
                              heartbeat_s=10, timeout_s=facts.agent_timeout_s + 30,
                              give_up_after_s=facts.agent_timeout_s * 3)
        await control(ControlStub.finish_resize, ResizeDone(iid, mig, dest, plan.new.flavor_id))
        if nics:
            await bind(iid, dest)
            # its floating IPs to the destination, its documents off the source
            await follow(iid, src, dest)
        return f"{plan.migration_type} {src} -> {dest}: {pulled.bytes} bytes copied"

    async def _place(self, plan: ResizePlan, undo: Compensations
                     ) -> tuple[str, dict[str, str]]:
        """The destination: claimed (new flavor, the instance as consumer) and the
        images fetched there, its first step; a host that does not take it in time loses
        its claim and the next is tried. An admin's host is tried alone."""
        iid, new = plan.instance_id, plan.new

        async def attempt(host: str) -> dict[str, str]:
            self.at("claiming", None, host)
            workflow.upsert_search_attributes([SA_HOST.value_set(host)])
            claim = LedgerEntry(host, "claim", plan.migration_id, iid)

            async def release() -> None:
                await control(ControlStub.release_claim, InstanceHost(iid, host))
                await control(ControlStub.ledger_forget, LedgerEntries([claim]))

            undo.push("claim", release)
            await control(ControlStub.ledger_record, LedgerEntries([claim]))
            await control(ControlStub.claim, ClaimRequest(iid, host, new.vcpus, new.ram_mb,
                                                          new.disk_gb))
            return await self._fetch_images(plan, host)

        async def give_up(host: str) -> None:
            await undo.run_one("claim")

        self.at("scheduling")
        if plan.host:
            return plan.host, await attempt(plan.host)
        ruled_out = {} if plan.allow_same_host else {plan.source: SAME_HOST_OFF}
        request = ScheduleRequest(iid, new.vcpus, new.ram_mb, new.disk_gb, plan.required_traits,
                                  plan.forbidden_traits, tried=ruled_out)
        return await place(request, plan.schedule_attempts, plan.schedule_to_start_s,
                           attempt, give_up)

    async def _fetch_images(self, plan: ResizePlan, host: str) -> dict[str, str]:
        """The base image (and kernel, ramdisk) into the destination's cache: the copied
        overlay is put over it. Cache entries are shared: ledgered, never undone."""
        self.at("fetching image", None, host)
        return await fetch_images(host, [plan.root, plan.kernel, plan.ramdisk],
                                  plan.schedule_to_start_s)

    async def _restart_source(self, copy: SourceCopy, src: str, dest: str) -> None:
        """The undo of the stop: the source runs again if it ran, unless a guest of the
        instance already runs on either host (looked at first), so never twice."""
        if not copy.was_running:
            return
        ref = InstanceRef(copy.instance_id)
        hosts = [src] if copy.same_host else [src, dest]
        seen = [await on_host(h, HostStub.observe, ref, attempts=0, give_up_after_s=600)
                for h in hosts]
        if any(o.power == "running" for o in seen):
            workflow.logger.info("a guest of %s runs already: not started again",
                                 copy.instance_id)
            return
        await on_host(src, HostStub.power_on, ref, attempts=0)
