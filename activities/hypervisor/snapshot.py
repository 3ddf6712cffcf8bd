"""Host activities of createImage / createBackup: a point-in-time copy of the root
disk as a standalone qcow2 in the instance dir, its upload, and its removal.

A running guest is copied with a pull-mode backup job (activities/hypervisor/backup_job.py,
testbed route C): freeze the file systems through the agent, start the job (its
point in time is when it starts), thaw, then copy the job's NBD export into a qcow2
hashed as it is written (backup_job.copy), which the image service then adopts
without reading it again. The domain's disk chain is never changed, so a worker that dies
at any point leaves no overlay to merge back.
Before it freezes, the step arms a thaw guard (activities/hypervisor/thaw_guard.py), a process
of its own that thaws the guest at a deadline if nobody did (DESIGN 8). A paused
guest cannot be frozen and is copied the same way, unfrozen. A stopped or suspended
(managed save) domain has no running disk: `qemu-img convert` flattens it.

Consistency: "quiesced" only when the agent froze the file systems for the copy;
everything else is "crash-consistent". A cleanly stopped guest's disk is in fact
clean (the guest unmounted it), but a destroyed one or a suspended one (dirty
pages in the saved memory) is not, and the disk alone cannot tell them apart, so
vmflow does not claim more than it knows; the image's `snapshot_source` property
says which case it was.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import select
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import libvirt
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.errors import storage_errors
from activities.heartbeat import heartbeating
from activities.hypervisor import backup_job, image_transfer, qemu_img
from activities.hypervisor.libvirt.connection import Connection
from activities.hypervisor.libvirt.domain import NOTHING_TO_THAW, Domain
from vmflow.contracts.activity_names import HostActs
from vmflow.contracts.errors import Errors
from vmflow.contracts.snapshots import SnapshotDisk, SnapshotFile, SnapshotTaken
from vmflow.settings import Settings

REPO = Path(__file__).resolve().parents[2]
QUIESCE_FAILED = "QuiesceFailed"
AGENT_TIMEOUT_S = 10  # for freeze and thaw: libvirt's default is to wait forever (NOTES 3)
THAW_TRIES = 3
GUARD_START_S = 15.0
GUARD_PID = "thaw-guard.pid"
NBD_SOCKETS = Path("/run/vmflow/nbd")


def quiesce_error(why: str) -> ApplicationError:
    return ApplicationError(
        f"os_require_quiesce is set but the guest agent did not freeze: {why}",
        type=QUIESCE_FAILED, non_retryable=True)


@dataclass
class CopyFacts:
    """What the copy step learnt, recorded with the copy (SnapshotTaken)."""
    consistency: str = "crash-consistent"
    frozen_s: float | None = None
    frozen_at: float | None = None  # host wall clock when fsFreeze was called
    size: int | None = None  # of the copy, with its sha256, when hashed as it was written
    checksum: str | None = None


class SnapshotActivities:
    def __init__(self, settings: Settings, conn: Connection,
                 instance_dir: Callable[[str], Path]):
        self.settings = settings
        self.conn = conn
        self.instance_dir = instance_dir

    def files(self, instance_id: str, image_id: str) -> tuple[Path, Path, Path]:
        """(the finished copy, the copy being made, what was recorded about it)."""
        d = self.instance_dir(instance_id)
        name = f"snap-{uuid.UUID(image_id)}"  # never a path from input
        return d / f"{name}.qcow2", d / f"{name}.part.qcow2", d / f"{name}.json"

    def job_files(self, instance_id: str, image_id: str) -> backup_job.JobFiles:
        d = self.instance_dir(instance_id)
        name = f"snap-{uuid.UUID(image_id)}"
        # a unix socket's path is limited to 107 bytes: not under the (long) home
        return backup_job.JobFiles(d / f"{name}.scratch.qcow2",
                                   NBD_SOCKETS / str(uuid.UUID(image_id)))

    # ---- the copy ----------------------------------------------------------------
    @activity.defn(name=HostActs.SNAPSHOT_DISK)
    @heartbeating
    def snapshot_disk(self, req: SnapshotDisk) -> SnapshotTaken:
        with storage_errors():
            return self._snapshot(req)

    def _snapshot(self, req: SnapshotDisk) -> SnapshotTaken:
        final, part, meta = self.files(req.instance_id, req.image_id)
        if final.exists() and meta.exists():  # a retry after the copy was made: keep it
            return SnapshotTaken(path=str(final), **json.loads(meta.read_text()))
        dom = Domain.require(self.conn.get(), req.instance_id)
        guard_left = self._end_earlier_attempt(dom, req.instance_id)
        for f in (final, part, meta):  # a partial copy is never trusted
            f.unlink(missing_ok=True)
        root = backup_job.root_disk(dom)
        state = dom.state()
        if state in (libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_BLOCKED,
                     libvirt.VIR_DOMAIN_PAUSED):
            paused = state == libvirt.VIR_DOMAIN_PAUSED
            source = "paused" if paused else "running"
            facts = self._live(dom, req, root, part, paused, guard_left)
        elif state in (libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_CRASHED):
            # nothing runs on the disk (the workflow id keeps anyone from starting it)
            source = "suspended" if dom.has_managed_save() else "stopped"
            facts = CopyFacts()
            qemu_img.convert(self.settings, root.path, root.fmt, str(part), "qcow2")
        else:
            raise ApplicationError(f"the domain is in libvirt state {state}; cannot snapshot",
                                   type=Errors.INVALID_STATE, non_retryable=True)
        self._check_standalone(part)
        part.chmod(0o600)
        taken = SnapshotTaken(path=str(final), source=source, **asdict(facts))
        meta.write_text(json.dumps({k: v for k, v in asdict(taken).items() if k != "path"}))
        part.rename(final)  # the copy is complete only under its final name
        activity.logger.info("snapshot %s of %s: %s, %s%s", req.image_id, req.instance_id,
                             source, facts.consistency, f", frozen {facts.frozen_s:.3f}s"
                             if facts.frozen_s is not None else "")
        return taken

    def _live(self, dom: Domain, req: SnapshotDisk, root: backup_job.RootDisk,
              part: Path, paused: bool, guard_left: bool) -> CopyFacts:
        """The backup-job route."""
        why = ("the guest is paused" if paused
               else "the image does not enable hw_qemu_guest_agent" if not req.quiesce
               else "the guest agent does not answer (an earlier freeze is still guarded)"
               if guard_left else "")
        if why and req.require_quiesce:
            raise quiesce_error(why)
        job = self.job_files(req.instance_id, req.image_id)
        deadline = time.time() + req.thaw_deadline_s
        if not why:
            dom.limit_agent_wait(AGENT_TIMEOUT_S)
        # the guard (a process of its own) starts while the scratch file is made
        guard = None if why else self._spawn_guard(req.instance_id, deadline)
        try:
            backup_job.prepare(self.settings, dom, root, job)
            if guard is not None:
                t0 = time.monotonic()
                backup_job.flush_host(str(job.scratch))  # nothing left to write back
                activity.logger.info("host flushed before the freeze of %s: %.3f s",
                                     req.instance_id, time.monotonic() - t0)
                self._await_guard(guard, req.instance_id)
        except BaseException:
            if guard is not None:
                self._disarm(guard, req.instance_id)
            raise
        try:
            if guard is None:
                backup_job.begin(dom, root, job)
                facts = CopyFacts()
            else:
                facts = self._frozen_begin(dom, req, root, job, guard, deadline)
            facts.size, facts.checksum = backup_job.copy(self.settings, root, job, part)
        finally:
            backup_job.end(dom)
            job.remove()
        return facts

    def _frozen_begin(self, dom: Domain, req: SnapshotDisk,
                      root: backup_job.RootDisk, job: backup_job.JobFiles,
                      guard: subprocess.Popen[bytes], deadline: float) -> CopyFacts:
        """Freeze, start the job, thaw (retried; the armed `guard` thaws at `deadline`
        if this process cannot); without a freeze the job starts anyway and the copy is
        crash-consistent."""
        froze, began_at, why = False, None, ""
        frozen_at = time.time()
        t0 = t_frozen = time.monotonic()
        try:
            try:
                dom.freeze()
                froze = True
            except libvirt.libvirtError as e:
                why = str(e)
            t_frozen = time.monotonic()
            if froze:
                if self.settings.snapshot_hold_frozen_s:  # tests: a window to crash in
                    time.sleep(self.settings.snapshot_hold_frozen_s)
                backup_job.begin(dom, root, job)  # the point in time
                began_at = time.time()
        finally:
            # after a failed freeze too: a late agent may still apply the queued one
            t_thaw = time.monotonic()
            thawed = self._thaw(dom)
            frozen_s = time.monotonic() - t0
            activity.logger.info(
                "freeze window of %s: %.3f s (fsFreeze %.3f, backupBegin %.3f, fsThaw %.3f)",
                req.instance_id, frozen_s, t_frozen - t0 if froze else 0.0,
                t_thaw - t_frozen if froze else 0.0, time.monotonic() - t_thaw)
            if thawed:
                self._disarm(guard, req.instance_id)
            else:
                activity.logger.warning("guest %s did not thaw; its guard thaws it by %s",
                                        req.instance_id, time.ctime(deadline))
        if not froze:
            if req.require_quiesce:
                raise quiesce_error(why)
            activity.logger.info("no freeze for %s (%s): crash-consistent", req.instance_id,
                                 why)
            backup_job.begin(dom, root, job)
            return CopyFacts()
        # the guard thaws at the deadline: a job that began later was not frozen
        quiesced = began_at is not None and began_at < deadline
        return CopyFacts("quiesced" if quiesced else "crash-consistent", frozen_s, frozen_at)

    def _check_standalone(self, part: Path) -> None:
        info = qemu_img.info(self.settings, str(part), "qcow2")
        if info.get("backing-filename") or not info.get("virtual-size"):
            raise RuntimeError(f"the copy {part.name} is not a standalone qcow2: {info}")

    # ---- freeze, thaw and the guard ----------------------------------------------
    def _thaw(self, dom: Domain) -> bool:
        """True once the guest is known not to be frozen."""
        for attempt in range(THAW_TRIES):
            try:
                dom.thaw()
                return True
            except libvirt.libvirtError as e:
                if e.get_error_code() in NOTHING_TO_THAW:
                    return True
                activity.logger.warning("thaw attempt %d failed: %s", attempt + 1, e)
                time.sleep(0.5)
        return False

    def _spawn_guard(self, instance_id: str, deadline: float) -> subprocess.Popen[bytes]:
        d = self.instance_dir(instance_id)
        with (d / "thaw-guard.log").open("ab") as log:
            # its own session: a kill of the worker or of its process group spares it
            proc = subprocess.Popen(
                [sys.executable, "-m", "activities.hypervisor.thaw_guard", self.conn.uri,
                 instance_id, repr(deadline)],
                cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
                start_new_session=True)
        (d / GUARD_PID).write_text(f"{proc.pid}\n")
        return proc

    def _await_guard(self, proc: subprocess.Popen[bytes], instance_id: str) -> None:
        """Until the guard says it is armed; never freeze without it."""
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], GUARD_START_S)
        line = proc.stdout.readline() if ready else b""
        proc.stdout.close()
        if line.strip() != b"armed":
            raise RuntimeError("the thaw guard did not start; not freezing without it")

    def _disarm(self, proc: subprocess.Popen[bytes], instance_id: str) -> None:
        proc.kill()
        proc.wait()
        (self.instance_dir(instance_id) / GUARD_PID).unlink(missing_ok=True)

    def _earlier_guard(self, instance_id: str) -> int | None:
        """The pid of a guard an earlier attempt left sleeping (its worker died)."""
        try:
            pid = int((self.instance_dir(instance_id) / GUARD_PID).read_text())
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return None
        if b"activities.hypervisor.thaw_guard" in cmd and instance_id.encode() in cmd:
            return pid
        return None

    def _end_earlier_attempt(self, dom: Domain, instance_id: str) -> bool:
        """Undo what an attempt that died may have left: its backup job, a frozen guest
        and its guard. Returns True when that guard must stay (the guest could not be
        thawed now), in which case this attempt must not freeze: the old guard would
        thaw in the middle of it."""
        backup_job.end(dom)
        pid = self._earlier_guard(instance_id)
        if pid is None:
            return False
        if not self._thaw(dom):
            return True
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)  # a guard of this instance, started by us
        (self.instance_dir(instance_id) / GUARD_PID).unlink(missing_ok=True)
        return False

    # ---- upload and discard ------------------------------------------------------
    @activity.defn(name=HostActs.UPLOAD_SNAPSHOT)
    @heartbeating
    def upload_snapshot(self, req: SnapshotFile) -> None:
        """Hand the copy to the image service, then remove it here. Where this host
        shares the store's file system the copy is renamed into its staging area and
        imported there (no second copy, one hash); elsewhere it is PUT over HTTP. No
        copy left means an earlier attempt handed it over (SNAPSHOT_DONE checks)."""
        final, _, meta = self.files(req.instance_id, req.image_id)
        staged = self.staged(req.image_id)
        # the copy's sha256, if it was computed while writing: the import trusts it
        checksum = json.loads(meta.read_text()).get("checksum") if meta.exists() else None
        if final.exists():
            staged.parent.mkdir(parents=True, exist_ok=True)
            try:
                final.rename(staged)
            except OSError as e:
                if e.errno != errno.EXDEV:
                    raise
                staged = final  # another file system: the store is not here
        if not staged.exists():
            pass  # handed over by an earlier attempt
        elif staged == final or not image_transfer.import_staged(self.settings, req.image_id,
                                                                 checksum):
            image_transfer.upload_image_file(self.settings, req.image_id, str(staged))
        for f in (final, staged, meta):
            f.unlink(missing_ok=True)

    def staged(self, image_id: str) -> Path:
        """This host's view of the store's staging area (the API's, if they share it)."""
        return self.settings.image_store / "staging" / str(uuid.UUID(image_id))

    @activity.defn(name=HostActs.DISCARD_SNAPSHOT)
    @heartbeating
    def discard_snapshot(self, req: SnapshotFile) -> None:
        """Undo of the copy: no backup job left running, the guest not frozen, no file."""
        dom = Domain.find(self.conn.get(), req.instance_id)
        if dom is not None:
            backup_job.end(dom)
            if req.thaw and dom.is_active():
                self._thaw(dom)  # best effort; the guard covers an agent that is away
        for f in (*self.files(req.instance_id, req.image_id), self.staged(req.image_id)):
            f.unlink(missing_ok=True)
        self.job_files(req.instance_id, req.image_id).remove()

    def all(self) -> list[Callable[..., Any]]:
        return [self.snapshot_disk, self.upload_snapshot, self.discard_snapshot]
