"""The point-in-time copy of a running domain's root disk: a pull-mode backup job.

backupBegin fixes the point in time (from then on QEMU copies old blocks the guest
overwrites into a scratch file) and exports that frozen view over NBD on a unix
socket; nothing is copied inside QEMU. The copy reads the export into a qcow2 of our
own writing (hashed as it is written) after the guest is thawed, so the thaw never
competes with it for the CPU (in push mode the job starts copying at once, and under
TCG the thaw then took 0.15-0.3 s instead of a few ms). The domain's disk chain is
never changed; ending the job (abort) drops the export and the scratch data.

The copy runs at a low CPU and I/O priority (niced, lowest best-effort I/O class):
on a host with few cores, reading, hashing and writing at full speed starved the
guest's own vCPU and QEMU's main loop, and the whole guest stalled for half a second
at a time (docs/decisions.md, "Snapshot against Nova's pipeline").
"""

from __future__ import annotations

import ctypes
import os
import platform
import re
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import libvirt
from temporalio.exceptions import ApplicationError

from activities.hypervisor import qcow2_stream, qemu_img
from activities.hypervisor.libvirt.domain import Domain
from activities.hypervisor.nbd_reader import NbdReader
from vmflow.contracts.errors import Errors
from vmflow.settings import Settings

ABORT_S = 30.0
COPY_NICE = 10  # the copy's threads get about a tenth of a core the guest wants
IOPRIO_CLASS_BE, IOPRIO_LOWEST = 2, 7
IOPRIO_WHO_PROCESS = 1  # with a thread id: that thread
IOPRIO_SET = {"x86_64": 251, "aarch64": 30}.get(platform.machine())
T = TypeVar("T")
# not running, or a driver without jobs (test:///default): no job either
NO_JOB = (libvirt.VIR_ERR_OPERATION_INVALID, libvirt.VIR_ERR_NO_DOMAIN,
          libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED, libvirt.VIR_ERR_NO_SUPPORT)


@dataclass(frozen=True)
class RootDisk:
    target: str  # vda
    path: str
    fmt: str
    others: list[str]  # every other disk's target: not part of the image


@dataclass(frozen=True)
class JobFiles:
    scratch: Path  # where QEMU keeps the old blocks the guest overwrites meanwhile
    socket_dir: Path  # holds the NBD socket; QEMU's user may create it there

    @property
    def socket(self) -> Path:
        return self.socket_dir / "nbd.sock"

    def remove(self) -> None:
        self.scratch.unlink(missing_ok=True)
        self.socket.unlink(missing_ok=True)
        if self.socket_dir.exists():
            self.socket_dir.rmdir()


def root_disk(dom: Domain) -> RootDisk:
    """The disk the server was built on (serial "root"; vda if none says so)."""
    disks = []
    for disk in ET.fromstring(dom.xml()).findall("./devices/disk"):
        target, source = disk.find("target"), disk.find("source")
        driver = disk.find("driver")
        if target is None:
            continue
        disks.append((target.get("dev", ""), disk.findtext("serial", ""),
                      source.get("file", "") if source is not None else "",
                      driver.get("type", "raw") if driver is not None else "raw"))
    root = next((d for d in disks if d[1] == "root"), None) or next(
        (d for d in disks if d[0] == "vda"), None)
    if root is None or not root[2]:
        raise ApplicationError("the domain has no root disk to snapshot",
                               type=Errors.INVALID_STATE, non_retryable=True)
    return RootDisk(root[0], root[2], root[3], [d[0] for d in disks if d[0] != root[0]])


def pull_xml(root: RootDisk, files: JobFiles) -> str:
    """A pull-mode backup of the root disk only, exported as `root.target`."""
    backup = ET.Element("domainbackup", mode="pull")
    ET.SubElement(backup, "server", transport="unix", socket=str(files.socket))
    disks = ET.SubElement(backup, "disks")
    disk = ET.SubElement(disks, "disk", name=root.target, backup="yes", type="file",
                         exportname=root.target)
    ET.SubElement(disk, "driver", type="qcow2")
    ET.SubElement(disk, "scratch", file=str(files.scratch))
    for other in root.others:  # the config drive and any data disk stay out
        ET.SubElement(disks, "disk", name=other, backup="no")
    return ET.tostring(backup, encoding="unicode")


def qemu_owner(dom: Domain) -> tuple[int, int]:
    """uid and gid QEMU runs as (the live XML's DAC label); root without one."""
    for label in ET.fromstring(dom.xml()).findall("./seclabel"):
        if label.get("model") == "dac":
            m = re.fullmatch(r"\+?(\d+):\+?(\d+)", label.findtext("label") or "")
            if m:
                return int(m[1]), int(m[2])
    return 0, 0


def prepare(settings: Settings, dom: Domain, root: RootDisk,
            files: JobFiles) -> None:
    """Before the freeze, so that backupBegin only opens what exists: the scratch
    file (as large as the disk, reused by the job) and the socket's directory."""
    files.remove()
    capacity = dom.virdom.blockInfo(root.target)[0]
    qemu_img.create(settings, str(files.scratch), "qcow2", capacity)
    files.socket_dir.parent.mkdir(parents=True, exist_ok=True)
    files.socket_dir.mkdir(mode=0o700)
    os.chown(files.socket_dir, *qemu_owner(dom))


def begin(dom: Domain, root: RootDisk, files: JobFiles) -> None:
    """The point in time: call it while the guest is frozen."""
    try:
        dom.virdom.backupBegin(pull_xml(root, files), None,
                        libvirt.VIR_DOMAIN_BACKUP_BEGIN_REUSE_EXTERNAL)
    except libvirt.libvirtError as e:
        if e.get_error_code() in (libvirt.VIR_ERR_NO_SUPPORT,
                                  libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED):
            # the driver cannot do it (test:///default): retrying will not help
            raise ApplicationError(f"this hypervisor cannot copy a running disk: {e}",
                                   type=Errors.INVALID_STATE, non_retryable=True) from e
        raise


def flush_host(path: str) -> None:
    """Write out the host's dirty data on the file system holding `path` (syncfs):
    before the freeze, so that backupBegin's drain of the disk and its opening of the
    scratch file do not queue behind writeback left by whatever wrote last (the
    freeze window once took 0.36 s, 0.23 s of it in backupBegin, on a busy disk)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if ctypes.CDLL(None, use_errno=True).syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"syncfs of {path}: {os.strerror(err)}")
    finally:
        os.close(fd)


def lower_priority() -> None:
    """The calling thread, and every thread it starts from now on (they inherit both),
    at nice COPY_NICE and in the lowest best-effort I/O class. Per thread: the
    worker's other threads (heartbeats, the Temporal SDK) keep theirs."""
    tid = threading.get_native_id()
    os.setpriority(os.PRIO_PROCESS, tid, max(COPY_NICE, os.getpriority(os.PRIO_PROCESS, tid)))
    if IOPRIO_SET is not None:  # best effort: without it the CPU priority still holds
        ctypes.CDLL(None, use_errno=True).syscall(
            IOPRIO_SET, IOPRIO_WHO_PROCESS, tid, (IOPRIO_CLASS_BE << 13) | IOPRIO_LOWEST)


def in_background(work: Callable[[], T]) -> T:
    """`work()` in a thread of its own at lowered priority (lower_priority), so the
    calling thread, one of the worker's pool, keeps its own; its result or its error."""
    out: list[T] = []
    failed: list[BaseException] = []

    def run() -> None:
        try:
            lower_priority()
            out.append(work())
        except BaseException as e:  # raised again in the caller's thread
            failed.append(e)

    t = threading.Thread(target=run, name="snapshot-copy", daemon=True)
    t.start()
    t.join()
    if failed:
        raise failed[0]
    return out[0]


def copy(settings: Settings, root: RootDisk, files: JobFiles, out: Path) -> tuple[int, str]:
    """The exported point in time into a standalone qcow2 `out`; returns its (size,
    sha256). Written front to back in one pass that hashes it as it goes
    (activities/hypervisor/qcow2_stream.py), so nobody reads the file again to hash it; only
    what the export's allocation map calls data is read. At low priority
    (in_background): the guest keeps running meanwhile."""
    uri = f"nbd+unix:///{root.target}?socket={files.socket}"
    extents = qemu_img.data_extents(settings, uri, "raw")

    def work() -> tuple[int, str]:
        with NbdReader(str(files.socket), root.target) as nbd:
            lo = qcow2_stream.layout(nbd.size, qcow2_stream.data_clusters(extents, nbd.size))
            return qcow2_stream.write(str(out), lo, nbd.read)

    return in_background(work)


def end(dom: Domain) -> None:
    """End a backup job of ours if one runs (a pull job ends only this way; nothing
    else makes backups here)."""
    try:
        if dom.virdom.jobInfo()[0] == libvirt.VIR_DOMAIN_JOB_NONE:
            return
        if dom.virdom.jobStats(0).get("operation") != libvirt.VIR_DOMAIN_JOB_OPERATION_BACKUP:
            raise RuntimeError("another job runs on the domain")
        dom.virdom.abortJob()
        deadline = time.monotonic() + ABORT_S
        while dom.virdom.jobInfo()[0] != libvirt.VIR_DOMAIN_JOB_NONE:
            if time.monotonic() > deadline:
                raise RuntimeError("the backup job did not end after abort")
            time.sleep(0.05)
    except libvirt.libvirtError as e:
        if e.get_error_code() not in NO_JOB:
            raise
