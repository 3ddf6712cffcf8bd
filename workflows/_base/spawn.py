"""Putting a guest on a host, shared by launch and unshelve (from offloaded): schedule
and claim with rescheduling (workflows/_base/placement.py), fetch the images into the
host's cache, then disk, config drive, define, start and wait for the agent. Each step
pushes its undo beside it; the caller runs them (its compensation decides where the
server ends up: ERROR after a launch, SHELVED_OFFLOADED after an unshelve)."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from vmflow.contracts.actions import WaitAgent
    from vmflow.contracts.control_stub import ControlStub
    from vmflow.contracts.host_stub import HostStub
    from vmflow.contracts.instances import (
        ClaimRequest,
        CreateDisk,
        DefineDomain,
        FetchImage,
        ImageFile,
        InstanceHost,
        InstanceRef,
        InstanceUpdate,
        LaunchPlan,
        LedgerEntries,
        LedgerEntry,
        Nic,
        ScheduleRequest,
    )
    from vmflow.names import SA_HOST

from workflows._base.guest_services import PATCH as SERVICES
from workflows._base.guest_services import nat_floating_ips, publish
from workflows._base.placement import place
from workflows._base.ports import PATCH, bind, plug
from workflows._base.saga import Compensations
from workflows._base.steps import Reporting, all_of, control, on_host


class Spawning(Reporting):
    """The placement and spawn steps of a workflow that reports its status."""

    async def place_and_fetch(
        self, plan: LaunchPlan, undo: Compensations, requested_host: str | None = None,
        ruled_out: dict[str, str] | None = None,
    ) -> tuple[str, dict[str, str]]:
        """Pick a host, claim it, and fetch the images there; a host that does not
        pick up the fetch in time loses its claim and the next host is tried, up to
        the plan's attempts (workflows._base.placement). ruled_out: hosts never to
        pick, with why (an evacuation's source)."""

        async def attempt(host: str) -> dict[str, str]:
            self.at("claiming", None, host)
            workflow.upsert_search_attributes([SA_HOST.value_set(host)])
            claim = LedgerEntry(host, "claim", plan.instance_id, plan.instance_id)

            async def release() -> None:
                await control(ControlStub.release_claim, InstanceHost(plan.instance_id, host))
                await control(ControlStub.ledger_forget, LedgerEntries([claim]))

            undo.push("claim", release)
            await control(ControlStub.ledger_record, LedgerEntries([claim]))
            await control(ControlStub.claim, ClaimRequest(plan.instance_id, host, plan.vcpus,
                                                          plan.ram_mb, plan.disk_gb))
            await control(ControlStub.update_instance, InstanceUpdate(
                plan.instance_id, host=host, task_state="block_device_mapping"))
            return await self.fetch_images(plan, host)

        async def give_up(host: str) -> None:
            await undo.run_one("claim")
            self.at("scheduling")

        self.at("scheduling")
        request = ScheduleRequest(plan.instance_id, plan.vcpus, plan.ram_mb, plan.disk_gb,
                                  plan.required_traits, plan.forbidden_traits,
                                  tried=dict(ruled_out or {}), requested_host=requested_host)
        return await place(request, plan.schedule_attempts, plan.schedule_to_start_s,
                           attempt, give_up)

    async def fetch_images(self, plan: LaunchPlan, host: str) -> dict[str, str]:
        self.at("fetching image")
        return await fetch_images(host, [plan.root, plan.kernel, plan.ramdisk],
                                  plan.schedule_to_start_s)

    async def spawn(
        self, plan: LaunchPlan, host: str, paths: dict[str, str], undo: Compensations,
        power_on: bool = True,
    ) -> None:
        """power_on=False: defined and left off (an evacuation of a stopped server)."""
        ref = InstanceRef(plan.instance_id)
        self.at("creating disk")
        disk_entry = LedgerEntry(host, "disk", plan.instance_id, plan.instance_id)

        async def delete_disk() -> None:
            await on_host(host, HostStub.delete_instance_files, ref, attempts=0)
            await control(ControlStub.ledger_forget, LedgerEntries([disk_entry]))

        undo.push("disk", delete_disk)
        await control(ControlStub.ledger_record, LedgerEntries([disk_entry]))
        disk = await on_host(host, HostStub.create_disk, CreateDisk(
            plan.instance_id, paths[plan.root.image_id], plan.root.disk_format, plan.disk_gb))

        drive = None
        if plan.config_drive:  # inside the instance dir: the disk undo removes it too
            self.at("writing the config drive")
            drive = await on_host(host, HostStub.create_config_drive, plan.config_drive)

        workflow.deprecate_patch(PATCH)  # its networks and ports on the host before define
        self.at("plugging ports")
        nics: list[Nic] = await plug(host, plan.instance_id, undo)
        if nics:  # before the guest boots: its first boot reads them
            workflow.deprecate_patch(SERVICES)
            self.at("publishing metadata")
            await publish(host, plan.instance_id, undo)

        self.at("defining domain")
        await control(ControlStub.update_instance,
                      InstanceUpdate(plan.instance_id, task_state="spawning"))
        domain_entry = LedgerEntry(host, "domain", plan.instance_id, plan.instance_id)

        async def undefine() -> None:  # also undoes the start below: destroy + undefine
            await on_host(host, HostStub.destroy_domain, ref, attempts=0)
            await control(ControlStub.ledger_forget, LedgerEntries([domain_entry]))

        undo.push("domain", undefine)
        await control(ControlStub.ledger_record, LedgerEntries([domain_entry]))
        await on_host(host, HostStub.define_domain, DefineDomain(
            plan.instance_id, plan.vcpus, plan.ram_mb, disk.path,
            paths[plan.kernel.image_id] if plan.kernel else None,
            paths[plan.ramdisk.image_id] if plan.ramdisk else None,
            plan.cmdline, plan.agent, drive.path if drive else None, nics))
        if nics:
            undo.push("binding", lambda: bind(plan.instance_id, ""))
            await bind(plan.instance_id, host)
            # a given port may have one; an unshelved or evacuated guest's come
            await nat_floating_ips(host, plan.instance_id, undo)

        if not power_on:
            return
        self.at("starting")
        await on_host(host, HostStub.start_domain, ref)
        if plan.agent:
            self.at("waiting for the guest agent")
            deadline = workflow.now().timestamp() + plan.agent_timeout_s
            await on_host(host, HostStub.wait_agent, WaitAgent(plan.instance_id, deadline),
                          heartbeat_s=10, timeout_s=plan.agent_timeout_s + 30,
                          give_up_after_s=plan.agent_timeout_s * 3)


async def fetch_images(host: str, wanted: list[ImageFile | None],
                       schedule_to_start_s: float) -> dict[str, str]:
    """Images into the host's cache, by image id to path there: launch's, unshelve's,
    and a move's destination's. Cache entries are shared and appear only once
    verified, so a failure leaves nothing to undo; they are still ledgered. The first
    step on a host: one whose worker does not take it in time is given up."""
    images = [i for i in wanted if i]
    await control(ControlStub.ledger_record,
                  LedgerEntries([LedgerEntry(host, "cache", i.image_id) for i in images]))
    fetched = await all_of(*[
        on_host(host, HostStub.fetch_image, FetchImage(i),
                schedule_to_start_s=schedule_to_start_s, heartbeat_s=30, timeout_s=1800)
        for i in images
    ])
    return {i.image_id: f.path for i, f in zip(images, fetched, strict=True)}
