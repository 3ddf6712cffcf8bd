"""Host activities: run by the hypervisor worker of each host on `hv.<host>`.

Each one ensures a state rather than doing something once (Temporal runs activities
at least once): "create disk X" succeeds if X already exists as wanted, "destroy"
succeeds if the domain is already gone.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import libvirt
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.errors import storage_errors
from activities.heartbeat import heartbeating
from activities.hypervisor import image_transfer, qemu_img
from activities.hypervisor.libvirt import domain_xml
from activities.hypervisor.libvirt.connection import Connection
from activities.hypervisor.libvirt.domain import Domain, gone
from activities.hypervisor.libvirt.events import AgentEvents
from activities.hypervisor.power import PowerActivities, config_for, save_spec
from activities.hypervisor.underlay import underlay_address
from vmflow.contracts.actions import WaitAgent
from vmflow.contracts.activity_names import HostActs
from vmflow.contracts.errors import Errors
from vmflow.contracts.instances import (
    ConfigDrive,
    ConfigDriveCreated,
    CreateDisk,
    DefineDomain,
    DiskCreated,
    FetchedImage,
    FetchImage,
    HostInfo,
    InstanceRef,
)
from vmflow.contracts.reconcile import HostDir, HostDomain, HostRef, HostResources
from vmflow.names import domain_name
from vmflow.settings import Settings

AGENT_POLL_S = 0.2  # between guest-pings when libvirt gives no agent events
AGENT_RECHECK_S = 1.0  # with events: ping anyway this often (a missed event, a dead guest)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class HostActivities:
    def __init__(self, settings: Settings, conn: Connection):
        self.settings = settings
        self.conn = conn
        self.agent_events = AgentEvents(conn)
        self.cache_dir = settings.host_dir() / "cache"
        self.instances_dir = settings.host_dir() / "instances"

    # ---- host facts -------------------------------------------------------
    def info(self) -> HostInfo:
        c = self.conn.get()
        _model, mem_mb, cpus, *_ = c.getInfo()
        self.instances_dir.mkdir(parents=True, exist_ok=True)
        st = os.statvfs(self.instances_dir)
        return HostInfo(
            name=self.settings.host,
            hostname=c.getHostname(),
            vcpus=cpus,
            ram_mb=mem_mb,
            disk_gb=st.f_blocks * st.f_frsize // 2**30,
            traits=self.settings.traits,
            virt_type=self.conn.virt_type(self.settings.virt_type),
            libvirt_uri=self.settings.libvirt_uri,
            migration_address=underlay_address(self.settings),
            migration_uri=self.settings.migration_uri or self.settings.libvirt_uri,
        )

    def instance_dir(self, instance_id: str) -> Path:
        return self.instances_dir / str(uuid.UUID(instance_id))  # never a path from input

    # ---- image cache --------------------------------------------------------
    @activity.defn(name=HostActs.FETCH_IMAGE)
    def fetch_image(self, req: FetchImage) -> FetchedImage:
        with storage_errors():
            return self._fetch_image(req)

    def _fetch_image(self, req: FetchImage) -> FetchedImage:
        """Download an image from the image service (HTTP, service token) into this
        host's cache, verifying its sha256 against the checksum the workflow carries.

        The cache entry appears atomically (rename) only after the checksum matched,
        and a stamp of (checksum, size, mtime) lets later launches trust it without
        re-hashing; an entry changed behind our back is re-fetched.
        """
        img = req.image
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.cache_dir.chmod(0o755)
        dst = self.cache_dir / str(uuid.UUID(img.image_id))
        stamp = dst.with_suffix(".verified")
        if dst.exists() and stamp.exists():
            st = dst.stat()
            if stamp.read_text() == f"{img.checksum} {st.st_size} {st.st_mtime_ns}":
                return FetchedImage(path=str(dst))
            activity.logger.warning("cache entry %s changed since verified; re-fetching", dst)
        tmp = dst.with_name(f"{dst.name}.{uuid.uuid4().hex}.part")
        try:
            with tmp.open("wb") as out:
                digest = image_transfer.download(self.settings, img.location, out,
                                                 activity.heartbeat)
            if digest != img.checksum:
                raise ApplicationError(
                    f"image {img.image_id} is corrupt: sha256 {digest} does not match "
                    f"the recorded checksum {img.checksum}",
                    type=Errors.IMAGE_INVALID,
                    non_retryable=True,
                )
            tmp.chmod(0o644)
            tmp.rename(dst)
            st = dst.stat()
            stamp.write_text(f"{img.checksum} {st.st_size} {st.st_mtime_ns}")
            return FetchedImage(path=str(dst))
        finally:
            tmp.unlink(missing_ok=True)

    # ---- disks --------------------------------------------------------------
    @activity.defn(name=HostActs.CREATE_DISK)
    @heartbeating
    def create_disk(self, req: CreateDisk) -> DiskCreated:
        with storage_errors():
            return self.make_disk(req)

    def make_disk(self, req: CreateDisk) -> DiskCreated:
        """The instance's root disk over its base image (the caller maps errors): the
        create_disk step, and the live migration's destination."""
        d = self.instance_dir(req.instance_id)
        disk = d / "disk"
        base_info = qemu_img.info(self.settings, req.base_path, req.base_format)
        if base_info.get("virtual-size", 0) > req.size_gb * 2**30:
            raise ApplicationError(
                f"image virtual size {base_info['virtual-size']} bytes is larger than the "
                f"flavor's {req.size_gb} GB root disk",
                type=Errors.IMAGE_INVALID,
                non_retryable=True,
            )
        if disk.exists():
            have = qemu_img.info(self.settings, str(disk), "qcow2")
            if have.get("backing-filename") == req.base_path:
                return DiskCreated(path=str(disk))
            disk.unlink()
        d.mkdir(parents=True, exist_ok=True)
        d.chmod(0o755)
        tmp = d / "disk.part"
        qemu_img.create_overlay(self.settings, str(tmp), req.base_path, req.base_format,
                                req.size_gb)
        tmp.rename(disk)
        return DiskCreated(path=str(disk))

    @activity.defn(name=HostActs.DELETE_DISKS)
    @heartbeating
    def delete_instance_files(self, ref: InstanceRef) -> None:
        d = self.instance_dir(ref.instance_id)
        if d.exists():
            shutil.rmtree(d)

    # ---- domains ------------------------------------------------------------
    @activity.defn(name=HostActs.DEFINE_DOMAIN)
    @heartbeating
    def define_domain(self, req: DefineDomain) -> None:
        d = self.instance_dir(req.instance_id)
        save_spec(d, req)  # rescue and unrescue rebuild the domain from it
        cfg = config_for(self.settings, self.conn, req, d)
        self.conn.get().defineXML(domain_xml.build(cfg))  # same uuid+name: replaces, idempotent

    @activity.defn(name=HostActs.CONFIG_DRIVE)
    @heartbeating
    def create_config_drive(self, req: ConfigDrive) -> ConfigDriveCreated:
        """Nova's config drive: an ISO 9660 volume labelled config-2 with
        openstack/latest/meta_data.json, network_data.json and user_data, read-only to
        the guest."""
        d = self.instance_dir(req.instance_id)
        iso = d / "config.iso"
        if iso.exists():
            return ConfigDriveCreated(str(iso))
        with storage_errors(), tempfile.TemporaryDirectory(dir=d) as tmp:
            latest = Path(tmp) / "openstack" / "latest"
            latest.mkdir(parents=True)
            (latest / "meta_data.json").write_text(req.meta_data_json)
            if req.network_data_json is not None:
                (latest / "network_data.json").write_text(req.network_data_json)
            if req.user_data_b64 is not None:
                (latest / "user_data").write_bytes(base64.b64decode(req.user_data_b64))
            part = d / "config.iso.part"
            subprocess.run(["genisoimage", "-quiet", "-o", str(part), "-V", "config-2", "-J",
                            "-R", "-input-charset", "utf-8", tmp], check=True,
                           capture_output=True)
            part.chmod(0o644)
            part.rename(iso)
        return ConfigDriveCreated(str(iso))

    @activity.defn(name=HostActs.START_DOMAIN)
    @heartbeating
    def start_domain(self, ref: InstanceRef) -> None:
        Domain.require(self.conn.get(), ref.instance_id).start()

    @activity.defn(name=HostActs.WAIT_AGENT)
    def wait_agent(self, req: WaitAgent) -> float:
        """Wait until the guest agent answers guest-ping; returns the seconds waited.
        Woken by libvirt's agent-connected event where the worker runs libvirt's event
        loop (activities/hypervisor/libvirt/events.py), else asking every 0.2 s."""
        t0 = time.monotonic()
        with self.agent_events.watching(req.instance_id) as connected:
            while True:
                dom = Domain.find(self.conn.get(), req.instance_id)
                if dom is None or not dom.is_active():
                    raise ApplicationError("the guest stopped while booting",
                                           type=Errors.GUEST_BOOT, non_retryable=True)
                try:
                    dom.agent_command("guest-ping", timeout_s=1)
                    return time.monotonic() - t0
                except libvirt.libvirtError as e:
                    if time.time() > req.deadline:
                        raise ApplicationError(
                            f"the guest agent did not answer before the boot deadline ({e})",
                            type=Errors.GUEST_BOOT, non_retryable=True) from e
                    activity.heartbeat(time.monotonic() - t0)
                if connected is None:
                    time.sleep(AGENT_POLL_S)
                elif connected.wait(min(AGENT_RECHECK_S, max(0.0, req.deadline - time.time()))):
                    connected.clear()  # the next ping answers, or we wait for the next one

    @activity.defn(name=HostActs.DESTROY_DOMAIN)
    @heartbeating
    def destroy_domain(self, ref: InstanceRef) -> None:
        """Stop and undefine, clearing managed-save and snapshot metadata; absent is fine."""
        dom = Domain.find(self.conn.get(), ref.instance_id)
        if dom is not None:
            dom.destroy()
            dom.undefine()

    # ---- the ledger reconciler's view of this host ----------------------------------
    @activity.defn(name=HostActs.LIST_RESOURCES)
    @heartbeating
    def list_instance_resources(self, ref: HostRef) -> HostResources:
        """vmflow's domains and instance dirs on this host. A domain counts only if its
        name is the domain prefix and its UUID, and one of its disks is in this host's
        instance dir of that UUID: a domain of another stack or another host on the
        same libvirt (VMFLOW_HOSTS=2 shares qemu:///system) is never listed."""
        if ref.host != self.settings.host:  # a worker on the wrong queue must not answer
            raise ApplicationError(f"this worker is host {self.settings.host}, not {ref.host}",
                                   type=Errors.INVALID_STATE, non_retryable=True)
        domains = []
        for dom in map(Domain, self.conn.get().listAllDomains(0)):
            try:
                iid = dom.uuid()
                if dom.name() != domain_name(self.settings.domain_prefix, iid):
                    continue
                if self._disks_in_own_dir(dom.xml(), iid):
                    domains.append(HostDomain(iid, dom.is_active()))
            except libvirt.libvirtError as e:
                if not gone(e):  # undefined meanwhile: not listed
                    raise
        dirs = []
        now = time.time()
        if self.instances_dir.is_dir():
            for entry in self.instances_dir.iterdir():
                try:
                    if str(uuid.UUID(entry.name)) != entry.name or not entry.is_dir():
                        continue
                    dirs.append(HostDir(entry.name, max(0.0, now - entry.stat().st_mtime)))
                except (ValueError, FileNotFoundError):  # not an instance dir, or gone
                    continue
        return HostResources(self.settings.host, sorted(domains, key=lambda d: d.instance_id),
                             sorted(dirs, key=lambda d: d.instance_id))

    def _disks_in_own_dir(self, xml: str, instance_id: str) -> bool:
        own = self.instance_dir(instance_id)
        for source in ET.fromstring(xml).iterfind("./devices/disk/source"):
            path = source.get("file")
            if path and Path(path).parent == own:
                return True
        return False

    def all(self) -> list[Callable[..., Any]]:
        """This class's steps and the power steps; the other groups of the host
        (rebuild, moves, networks, snapshots) are added by workers/hypervisor.py."""
        return [
            self.fetch_image,
            self.create_disk,
            self.delete_instance_files,
            self.define_domain,
            self.start_domain,
            self.wait_agent,
            self.destroy_domain,
            self.create_config_drive,
            self.list_instance_resources,
            *PowerActivities(self.settings, self.conn, self.instance_dir).all(),
        ]
