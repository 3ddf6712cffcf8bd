"""Host activities for the life of a defined domain: observe, power on/off, clean
shutdown, pause, managed save, rescue. Each ensures a state, so a retry after a
worker crash finds the work done and returns."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import libvirt
from temporalio import activity

from activities.heartbeat import heartbeating
from activities.hypervisor import qemu_img
from activities.hypervisor.libvirt import domain_xml
from activities.hypervisor.libvirt.connection import Connection
from activities.hypervisor.libvirt.domain import Domain
from vmflow.contracts.actions import (
    InstanceIds,
    Observation,
    Observations,
    Rescue,
    Shutdown,
    ShutdownResult,
)
from vmflow.contracts.activity_names import HostActs
from vmflow.contracts.instances import DefineDomain, InstanceRef
from vmflow.names import domain_name
from vmflow.settings import Settings

RESCUE_DISK = "rescue.disk"


def spec_path(instance_dir: Path) -> Path:
    """The define request a domain was built from, kept so rescue can rebuild it."""
    return instance_dir / "domain.json"


def config_for(settings: Settings, conn: Connection, req: DefineDomain, instance_dir: Path,
               rescue: Rescue | None = None) -> domain_xml.DomainConfig:
    disks = [domain_xml.Disk(path=req.disk_path, target="vda", serial="root")]
    cmdline = ["vmflow.root=/dev/vda"] if req.kernel_path else []
    if rescue:  # Nova's rescue: the rescue image boots, the original disk comes second
        disks = [domain_xml.Disk(path=str(instance_dir / RESCUE_DISK), target="vda",
                                 serial="rescue"),
                 domain_xml.Disk(path=req.disk_path, target="vdb", serial="root")]
        cmdline.append("vmflow.rescue=1")
    if req.config_drive_path:
        disks.append(domain_xml.Disk(path=req.config_drive_path, target="vdz", fmt="raw",
                                     serial="config-2", readonly=True))
    return domain_xml.DomainConfig(
        uuid=req.instance_id,
        name=domain_name(settings.domain_prefix, req.instance_id),
        vcpus=req.vcpus, ram_mb=req.ram_mb,
        virt_type=conn.virt_type(settings.virt_type),
        disks=disks, console_log=str(instance_dir / "console.log"),
        kernel=req.kernel_path, initrd=req.initrd_path, cmdline=req.cmdline,
        extra_cmdline=cmdline, agent=req.agent,
        interfaces=[domain_xml.interface_of(n) for n in req.nics],  # every redefinition keeps them
    )


class PowerActivities:
    def __init__(self, settings: Settings, conn: Connection,
                 instance_dir: Callable[[str], Path]):
        self.settings = settings
        self.conn = conn
        self.instance_dir = instance_dir

    def _domain(self, instance_id: str) -> Domain:
        return Domain.require(self.conn.get(), instance_id)

    # ---- observing ------------------------------------------------------------------
    def _observe(self, instance_id: str) -> Observation:
        dom = Domain.find(self.conn.get(), instance_id)
        if dom is None:
            return Observation(instance_id, False, "absent", False, False)
        power = dom.power()
        rescue = (self.instance_dir(instance_id) / RESCUE_DISK).exists() and RESCUE_DISK in (
            dom.xml())
        return Observation(instance_id, True, power, dom.has_managed_save(), rescue)

    @activity.defn(name=HostActs.OBSERVE)
    @heartbeating
    def observe(self, ref: InstanceRef) -> Observation:
        return self._observe(ref.instance_id)

    @activity.defn(name=HostActs.OBSERVE_MANY)
    @heartbeating
    def observe_many(self, req: InstanceIds) -> Observations:
        return Observations([self._observe(i) for i in req.instance_ids])

    # ---- power ----------------------------------------------------------------------
    @activity.defn(name=HostActs.POWER_ON)
    @heartbeating
    def power_on(self, ref: InstanceRef) -> None:
        """Start the domain; with a managed-save image this resumes it (libvirt's rule)."""
        self._domain(ref.instance_id).start()

    @activity.defn(name=HostActs.POWER_OFF)
    @heartbeating
    def power_off(self, ref: InstanceRef) -> None:
        """Pull the plug (the definition and disks stay)."""
        self._domain(ref.instance_id).destroy()

    @activity.defn(name=HostActs.SHUTDOWN)
    def shutdown(self, req: Shutdown) -> ShutdownResult:
        """Ask the guest to power off (agent first, then ACPI: libvirt's default order)
        and wait; after the timeout the guest is destroyed and `clean` is False."""
        dom = self._domain(req.instance_id)
        deadline = time.monotonic() + req.timeout_s
        asked = 0.0
        while dom.is_active():
            if time.monotonic() > deadline:
                self.power_off(InstanceRef(req.instance_id))
                return ShutdownResult(clean=False)
            if time.monotonic() - asked > 5:  # ask again: the first may come too early
                try:
                    dom.request_shutdown()
                except libvirt.libvirtError as e:
                    activity.logger.info("shutdown request refused: %s", e)
                asked = time.monotonic()
            activity.heartbeat()
            time.sleep(0.2)
        return ShutdownResult(clean=True)

    @activity.defn(name=HostActs.PAUSE)
    @heartbeating
    def pause(self, ref: InstanceRef) -> None:
        self._domain(ref.instance_id).pause()

    @activity.defn(name=HostActs.UNPAUSE)
    @heartbeating
    def unpause(self, ref: InstanceRef) -> None:
        self._domain(ref.instance_id).unpause()

    @activity.defn(name=HostActs.MANAGED_SAVE)
    @heartbeating
    def managed_save(self, ref: InstanceRef) -> None:
        """Memory to disk, domain off; the next power_on restores it."""
        self._domain(ref.instance_id).managed_save()

    # ---- rescue ---------------------------------------------------------------------
    def _spec(self, instance_id: str) -> DefineDomain:
        data: dict[str, Any] = json.loads(spec_path(self.instance_dir(instance_id)).read_text())
        return DefineDomain(**data)

    @activity.defn(name=HostActs.RESCUE)
    @heartbeating
    def rescue(self, req: Rescue) -> None:
        """Power off, boot a fresh overlay of the rescue image with the original disk
        as the second disk. Same name and UUID (libvirt requires both to match)."""
        self.power_off(InstanceRef(req.instance_id))
        d = self.instance_dir(req.instance_id)
        spec = self._spec(req.instance_id)
        disk = d / RESCUE_DISK
        if not disk.exists():
            tmp = d / f"{RESCUE_DISK}.part"
            qemu_img.create_overlay(self.settings, str(tmp), req.rescue_image_path,
                                    req.rescue_image_format)
            tmp.rename(disk)
        cfg = config_for(self.settings, self.conn, spec, d, rescue=req)
        self.conn.get().defineXML(domain_xml.build(cfg))
        self.power_on(InstanceRef(req.instance_id))

    @activity.defn(name=HostActs.UNRESCUE)
    @heartbeating
    def unrescue(self, ref: InstanceRef) -> None:
        """Power off, define the original domain again, drop the rescue disk, start."""
        self.power_off(ref)
        d = self.instance_dir(ref.instance_id)
        cfg = config_for(self.settings, self.conn, self._spec(ref.instance_id), d)
        self.conn.get().defineXML(domain_xml.build(cfg))
        (d / RESCUE_DISK).unlink(missing_ok=True)
        self.power_on(ref)

    def all(self) -> list[Callable[..., Any]]:
        return [self.observe, self.observe_many, self.power_on, self.power_off, self.shutdown,
                self.pause, self.unpause, self.managed_save, self.rescue, self.unrescue]


def save_spec(instance_dir: Path, req: DefineDomain) -> None:
    tmp = spec_path(instance_dir).with_suffix(".part")
    tmp.write_text(json.dumps(asdict(req)))
    tmp.rename(spec_path(instance_dir))
