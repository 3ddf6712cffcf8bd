"""Host activities of rebuild: a fresh root disk from another image, same domain
(name and UUID), the old disk kept until the guest has booted from the new one.

Files in the instance directory while a rebuild runs:

    disk.new          the new overlay (prepare_rebuild)
    disk.old          the old root disk, renamed away by swap_in
    domain.json.old   the old define request, copied by swap_in before anything changes

Each step ensures a state and reads the files to know how far an earlier attempt
got, so a retry after a worker crash (at any point) converges: swap_in finishes the
swap, restore_old_disk finishes the restore, commit_rebuild finishes the delete.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.errors import storage_errors
from activities.heartbeat import heartbeating
from activities.hypervisor import qemu_img
from activities.hypervisor.libvirt import domain_xml
from activities.hypervisor.libvirt.connection import Connection
from activities.hypervisor.libvirt.domain import Domain
from activities.hypervisor.power import config_for, save_spec, spec_path
from vmflow.contracts.actions import RebuildDisk, RestoreOldDisk
from vmflow.contracts.activity_names import HostActs
from vmflow.contracts.errors import Errors
from vmflow.contracts.instances import DefineDomain, DiskCreated, InstanceRef
from vmflow.settings import Settings

DISK, NEW, OLD = "disk", "disk.new", "disk.old"
OLD_SPEC = "domain.json.old"


class RebuildActivities:
    def __init__(self, settings: Settings, conn: Connection,
                 instance_dir: Callable[[str], Path]):
        self.settings = settings
        self.conn = conn
        self.instance_dir = instance_dir

    # ---- helpers --------------------------------------------------------------------
    def _read_spec(self, path: Path) -> DefineDomain:
        data: dict[str, Any] = json.loads(path.read_text())
        return DefineDomain(**data)

    def _define(self, instance_id: str) -> None:
        """Define the domain from the saved request (same name and UUID: replaces)."""
        d = self.instance_dir(instance_id)
        cfg = config_for(self.settings, self.conn, self._read_spec(spec_path(d)), d)
        self.conn.get().defineXML(domain_xml.build(cfg))

    def _power_off(self, instance_id: str) -> None:
        dom = Domain.find(self.conn.get(), instance_id)
        if dom is not None:
            dom.destroy()

    def _power_on(self, instance_id: str) -> None:
        Domain.require(self.conn.get(), instance_id).start()

    # ---- forward --------------------------------------------------------------------
    @activity.defn(name=HostActs.PREPARE_REBUILD)
    @heartbeating
    def prepare_rebuild(self, req: RebuildDisk) -> DiskCreated:
        """disk.new: a qcow2 overlay of the new base at the flavor's size. The running
        guest is not touched. A base that qemu-img cannot read, or that is larger
        than the flavor's disk, fails here, before anything changes."""
        with storage_errors():
            return self._prepare(req)

    def _prepare(self, req: RebuildDisk) -> DiskCreated:
        d = self.instance_dir(req.instance_id)
        new = d / NEW
        try:
            base = qemu_img.info(self.settings, req.base_path, req.base_format)
        except qemu_img.QemuImgError as e:
            raise ApplicationError(f"the new image cannot be read: {e}",
                                   type=Errors.IMAGE_INVALID, non_retryable=True) from e
        if base.get("virtual-size", 0) > req.size_gb * 2**30:
            raise ApplicationError(
                f"image virtual size {base['virtual-size']} bytes is larger than the "
                f"flavor's {req.size_gb} GB root disk", type=Errors.IMAGE_INVALID,
                non_retryable=True)
        if new.exists():
            have = qemu_img.info(self.settings, str(new), "qcow2")
            if have.get("backing-filename") == req.base_path:
                return DiskCreated(path=str(new))
            new.unlink()  # left by an earlier rebuild to another image
        if not (d / DISK).exists() and not (d / OLD).exists():
            raise ApplicationError(f"instance {req.instance_id} has no disk on this host",
                                   type=Errors.NOT_FOUND, non_retryable=True)
        tmp = d / f"{NEW}.part"
        qemu_img.create_overlay(self.settings, str(tmp), req.base_path, req.base_format,
                                req.size_gb)
        tmp.rename(new)
        return DiskCreated(path=str(new))

    @activity.defn(name=HostActs.SWAP_IN_REBUILD)
    @heartbeating
    def swap_in(self, req: RebuildDisk) -> None:
        """Keep the old define request (domain.json.old) first, so any change to the
        guest comes after the evidence an undo needs; then power off, disk -> disk.old,
        disk.new -> disk, the new request saved and defined (same name and UUID),
        power on. A managed-save image is dropped: it belongs to the old disk."""
        with storage_errors():
            self._swap_in(req)

    def _swap_in(self, req: RebuildDisk) -> None:
        d = self.instance_dir(req.instance_id)
        disk, new, old = d / DISK, d / NEW, d / OLD
        old_spec = d / OLD_SPEC
        if not old_spec.exists():  # absent: nothing has changed yet
            if not new.exists():
                raise ApplicationError("the new disk was not prepared (disk.new missing)",
                                       type=Errors.INVALID_STATE, non_retryable=True)
            tmp = d / f"{OLD_SPEC}.part"
            tmp.write_text(spec_path(d).read_text())
            tmp.rename(old_spec)
        self._power_off(req.instance_id)
        dom = Domain.find(self.conn.get(), req.instance_id)
        if dom is not None:
            dom.drop_managed_save()
        # the renames, from wherever an earlier attempt stopped
        if new.exists() and disk.exists() and not old.exists():
            disk.rename(old)
        if new.exists() and old.exists() and not disk.exists():
            new.rename(disk)
        if not (disk.exists() and old.exists() and not new.exists()):
            raise ApplicationError(
                f"unexpected disk files during rebuild: "
                f"{sorted(p.name for p in d.glob('disk*'))}",
                type=Errors.INVALID_STATE, non_retryable=True)
        spec = replace(self._read_spec(old_spec), disk_path=str(disk),
                       kernel_path=req.kernel_path, initrd_path=req.initrd_path,
                       cmdline=req.cmdline, agent=req.agent)
        save_spec(d, spec)
        self._define(req.instance_id)
        self._power_on(req.instance_id)

    @activity.defn(name=HostActs.COMMIT_REBUILD)
    @heartbeating
    def commit_rebuild(self, ref: InstanceRef) -> None:
        """The new disk booted: the old disk and define request go."""
        d = self.instance_dir(ref.instance_id)
        with storage_errors():
            (d / OLD).unlink(missing_ok=True)
            (d / OLD_SPEC).unlink(missing_ok=True)

    # ---- undo -----------------------------------------------------------------------
    @activity.defn(name=HostActs.RESTORE_OLD_DISK)
    @heartbeating
    def restore_old_disk(self, req: RestoreOldDisk) -> None:
        """The undo of prepare_rebuild and swap_in, from any point of either: drop
        disk.new; if the swap began, power off, put disk.old back as disk and the old
        define request back, define it; power on when it was running before."""
        with storage_errors():
            self._restore(req)

    def _restore(self, req: RestoreOldDisk) -> None:
        d = self.instance_dir(req.instance_id)
        disk, new, old = d / DISK, d / NEW, d / OLD
        old_spec = d / OLD_SPEC
        if old_spec.exists() or old.exists():  # the swap began: the guest may have changed
            self._power_off(req.instance_id)
            if old.exists():  # then `disk`, if present, is the new one
                disk.unlink(missing_ok=True)
                old.rename(disk)
            if old_spec.exists():
                old_spec.replace(spec_path(d))
            self._define(req.instance_id)
        for leftover in (new, d / f"{NEW}.part", d / f"{OLD_SPEC}.part",
                         spec_path(d).with_suffix(".part")):  # the last: save_spec's
            leftover.unlink(missing_ok=True)
        if req.power_on:
            self._power_on(req.instance_id)

    def all(self) -> list[Callable[..., Any]]:
        return [self.prepare_rebuild, self.swap_in, self.commit_rebuild,
                self.restore_old_disk]

