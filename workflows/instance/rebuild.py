"""rebuild: a fresh root disk from another image (or snapshot), same instance: id,
name, flavor, addresses, domain name and UUID all stay; the instance's image
becomes the new one.

    fetch the new image (root, kernel, ramdisk) into the host cache
    prepare: disk.new, an overlay of the new base        guest still running
    clean shutdown (agent, then ACPI; destroy after the stop timeout)
    swap in: disk -> disk.old, disk.new -> disk, define with the new image's
             kernel/ramdisk/command line, power on
    wait for the guest agent when the new image has one
    (from STOPPED: shut down again: the new disk was booted once to verify it)
    image_id := the new image; delete disk.old              point of no return

Anything failing before the point of no return runs the undo, which puts the old
disk and the old define request back and powers on what was running before; the
frame then records the state the domain really is in. Without an agent on the new
image, "booted" means the domain started, as at launch.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from vmflow.contracts.actions import (
        ActionStart,
        InstanceFacts,
        InstanceImage,
        RebuildDisk,
        RebuildRequest,
        RestoreOldDisk,
        Shutdown,
    )
    from vmflow.contracts.control_stub import ControlStub
    from vmflow.contracts.host_stub import HostStub
    from vmflow.contracts.instances import (
        FetchImage,
        ImageFile,
        InstanceRef,
        LedgerEntries,
        LedgerEntry,
    )
    from vmflow.states import TRANSITIONS, VmState

from workflows._base.action import InstanceAction
from workflows._base.saga import Compensations
from workflows._base.steps import all_of, control, on_host


@workflow.defn(name="RebuildInstance")
class RebuildInstance(InstanceAction):
    @workflow.run
    async def run(self, req: RebuildRequest) -> None:
        async def body(facts: InstanceFacts, undo: Compensations) -> str | None:
            new = facts.rebuild
            assert new is not None
            ref = InstanceRef(facts.instance_id)
            obs = await on_host(facts.host, HostStub.observe, ref)
            was_running = obs.power == "running"
            paths = await self._fetch(facts, [i for i in (new.root, new.kernel, new.ramdisk)
                                              if i])
            disk = RebuildDisk(
                facts.instance_id, paths[new.root.image_id], new.root.disk_format,
                new.disk_gb, paths[new.kernel.image_id] if new.kernel else None,
                paths[new.ramdisk.image_id] if new.ramdisk else None, new.cmdline, new.agent)
            committed = False

            async def restore_old() -> None:
                if not committed:
                    await on_host(facts.host, HostStub.restore_old_disk,
                                  RestoreOldDisk(facts.instance_id, was_running),
                                  timeout_s=300, attempts=0)

            undo.push("disk", restore_old)
            self.at("creating the new disk")
            await on_host(facts.host, HostStub.prepare_rebuild, disk, timeout_s=300)
            if was_running:
                self.at("shutting down")
                await on_host(facts.host, HostStub.shutdown,
                              Shutdown(facts.instance_id, facts.stop_timeout_s),
                              timeout_s=facts.stop_timeout_s + 60)
            self.at("booting the new disk")
            await on_host(facts.host, HostStub.swap_in_rebuild, disk, timeout_s=300)
            await self.wait_agent(facts)  # facts.agent: the new image's
            if facts.vm_state == VmState.STOPPED:  # it stays off, as the user left it
                self.at("shutting down after the verifying boot")
                await on_host(facts.host, HostStub.shutdown,
                              Shutdown(facts.instance_id, facts.stop_timeout_s),
                              timeout_s=facts.stop_timeout_s + 60)
            # the guest booted from the new disk: no way back from here
            committed = True
            self.at("deleting the old disk")
            await control(ControlStub.set_instance_image,
                          InstanceImage(facts.instance_id, new.image_id))
            await on_host(facts.host, HostStub.commit_rebuild, ref, attempts=0)
            return f"rebuilt from image {new.image_id}"

        start = ActionStart(req.instance_id, req.operation_id, "rebuild", req.image_id)
        await self.run_action(start, TRANSITIONS[start.action].target, body)

    async def _fetch(self, facts: InstanceFacts, images: list[ImageFile]) -> dict[str, str]:
        """Into the host's cache, ledgered like launch's (cache entries are shared)."""
        self.at("fetching image")
        await control(ControlStub.ledger_record, LedgerEntries(
            [LedgerEntry(facts.host, "cache", i.image_id) for i in images]))
        fetched = await all_of(*[
            on_host(facts.host, HostStub.fetch_image, FetchImage(i), heartbeat_s=30,
                    timeout_s=1800)
            for i in images
        ])
        return {i.image_id: f.path for i, f in zip(images, fetched, strict=True)}
