"""Host activities of live migration: the destination prepares the instance's files,
the source runs libvirt's peer-to-peer migration and reports its progress.

Destination (`prepare_live_migration`): the root disk is a fresh, empty qcow2 overlay
over the same base image in this host's own cache, of the same size (with
NON_SHARED_INC only the top layer travels; testbed NOTES 5), the config drive is
written again from the same contents, and the define request is kept (domain.json)
with this host's paths, as launch keeps it. No domain: the migration defines it.

Source (`live_migrate`): migrateToURI3 with LIVE|PEER2PEER|PERSIST_DEST|
UNDEFINE_SOURCE|NON_SHARED_INC to the destination's migration URI, with the
destination's XML (this domain's own XML with every file moved under the
destination's directories: domain_xml.relocate). The call blocks in a thread while
this one heartbeats the job's progress (virDomainGetJobStats), applies the maximum
downtime, and on cancellation (the workflow's abort) or the completion timeout
aborts the job, or pauses the guest so it converges (force-complete). A guest this
step paused is resumed when the migration fails, so a failed migration leaves the
guest as it found it on the source.
"""

from __future__ import annotations

import shutil
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import asdict, replace
from typing import Any

import libvirt
from temporalio import activity
from temporalio.exceptions import ApplicationError, CancelledError

from activities.errors import storage_errors
from activities.heartbeat import heartbeating
from activities.hypervisor.host import HostActivities
from activities.hypervisor.libvirt import domain_xml
from activities.hypervisor.libvirt.domain import Domain
from activities.hypervisor.power import save_spec
from vmflow.contracts.activity_names import HostActs
from vmflow.contracts.errors import Errors
from vmflow.contracts.instances import CreateDisk, DefineDomain, InstanceRef
from vmflow.contracts.migrations import (
    DestinationDirs,
    LiveMigrationResult,
    MigrationProgress,
    PrepareLiveMigration,
    RunLiveMigration,
)

JOB_START_WAIT_S = 30.0  # force_complete asked before migrateToURI3 started its job
POLL_S = 0.1  # a tiny guest's memory phase can be over in half a second
WATCH_MAX_POLLS = 2 * 3600 * 10  # two hours of polls: longer than any completion timeout
MIGRATION_FAILED = "LiveMigrationFailed"
BASE_FLAGS = (libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PEER2PEER
              | libvirt.VIR_MIGRATE_PERSIST_DEST | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE)


def migration_flags(block_migration: bool) -> int:
    """vmflow's hosts keep instance files on local disks: the top layer is copied
    (NON_SHARED_INC; the base image is in each host's cache)."""
    return BASE_FLAGS | (libvirt.VIR_MIGRATE_NON_SHARED_INC if block_migration else 0)


def disks_to_copy(xml: str) -> list[str]:
    """The targets of the writable disks: the read-only config drive is written on the
    destination from the same contents, not copied."""
    return [d.find("target").get("dev", "")  # type: ignore[union-attr]
            for d in ET.fromstring(xml).iterfind("./devices/disk")
            if d.find("readonly") is None and d.find("target") is not None]


def job_active(dom: libvirt.virDomain) -> bool:
    return int(dom.jobInfo()[0]) not in (libvirt.VIR_DOMAIN_JOB_NONE,
                                          libvirt.VIR_DOMAIN_JOB_COMPLETED,
                                          libvirt.VIR_DOMAIN_JOB_FAILED,
                                          libvirt.VIR_DOMAIN_JOB_CANCELLED)


class MigrationActivities:
    def __init__(self, host: HostActivities):
        self.host = host
        self.conn = host.conn

    # ---- destination ----------------------------------------------------------------
    @activity.defn(name=HostActs.PREPARE_LIVE_MIGRATION)
    @heartbeating
    def prepare_live_migration(self, req: PrepareLiveMigration) -> DestinationDirs:
        dom = Domain.find(self.conn.get(), req.instance_id)
        if dom is not None and dom.is_active():
            raise ApplicationError(f"instance {req.instance_id} already runs on this host",
                                   type=Errors.INVALID_STATE, non_retryable=True)
        if dom is not None:  # an inactive leftover would be replaced anyway: drop it
            dom.undefine()
        d = self.host.instance_dir(req.instance_id)
        with storage_errors():
            # always a fresh overlay: clusters a dead attempt copied would show through
            # wherever the source's top layer has none
            shutil.rmtree(d, ignore_errors=True)
            disk = self.host.make_disk(CreateDisk(req.instance_id, req.base_path,
                                                     req.base_format, req.size_gb))
            drive = (self.host.create_config_drive(req.config_drive)
                     if req.config_drive else None)
            save_spec(d, DefineDomain(req.instance_id, req.vcpus, req.ram_mb, disk.path,
                                      req.kernel_path, req.initrd_path, req.cmdline, req.agent,
                                      drive.path if drive else None, req.nics))
        return DestinationDirs(str(d), str(self.host.cache_dir))

    @activity.defn(name=HostActs.WATCH_INCOMING, no_thread_cancel_exception=True)
    def watch_incoming(self, ref: InstanceRef) -> bool:
        """Heartbeat while a migration comes in, until cancelled: the workflow learns
        from this step's heartbeat timeout that the destination's worker died, and
        aborts (a destination it cannot manage must not receive the guest). True: the
        guest runs here with no job left."""
        for _ in range(WATCH_MAX_POLLS):
            activity.heartbeat()
            if activity.is_cancelled():
                return False
            if self._arrived(ref):
                return True
            time.sleep(POLL_S)
        return False

    def _arrived(self, ref: InstanceRef) -> bool:
        """The guest runs here and no job is left. While it comes in, libvirt refuses
        job queries on this side ("migration statistics are available only on the
        source host") and the domain may vanish (an abort): still coming, not an error."""
        try:
            dom = Domain.find(self.conn.get(), ref.instance_id)
            return dom is not None and dom.is_active() and not job_active(dom.virdom)
        except libvirt.libvirtError as e:
            activity.logger.debug("incoming %s: %s", ref.instance_id, e)
            return False

    @activity.defn(name=HostActs.INCOMING_TOTALS)
    def incoming_migration_totals(self, ref: InstanceRef) -> MigrationProgress:
        """The totals of the migration that brought the guest here, as this side's
        libvirtd keeps them (the completed job's stats). The source polls its job, and
        a small guest's memory phase can end between two polls: these fill the gap.
        Nothing known (no domain, no completed job): all zero."""
        dom = Domain.find(self.conn.get(), ref.instance_id)
        if dom is None:
            return MigrationProgress()
        try:
            stats = dom.virdom.jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
        except libvirt.libvirtError as e:
            activity.logger.info("completed job stats of %s: %s", ref.instance_id, e)
            return MigrationProgress()
        totals = MigrationProgress.of({k: int(v) for k, v in stats.items()
                                       if isinstance(v, int)})
        return replace(totals, percent=100)

    # ---- source ---------------------------------------------------------------------
    @activity.defn(name=HostActs.FORCE_COMPLETE_MIGRATION)
    @heartbeating
    def force_complete_migration(self, ref: InstanceRef) -> bool:
        """Pause the guest while its migration job runs (Nova's force-complete without
        post-copy): memory stops changing and the job converges. A request that comes
        right after the migration began waits for its job to start. False: no job ran
        here within JOB_START_WAIT_S (or the guest has left)."""
        for _ in range(int(JOB_START_WAIT_S / POLL_S)):
            dom = Domain.find(self.conn.get(), ref.instance_id)
            if dom is None:
                return False
            if job_active(dom.virdom):
                dom.pause()
                return True
            time.sleep(POLL_S)
        return False

    @activity.defn(name=HostActs.LIVE_MIGRATE, no_thread_cancel_exception=True)
    def live_migrate(self, req: RunLiveMigration) -> LiveMigrationResult:
        t0 = time.monotonic()
        dom = Domain.find(self.conn.get(), req.instance_id)
        if dom is None:  # a retry after the job ended: UNDEFINE_SOURCE took it away
            return LiveMigrationResult(MigrationProgress(percent=100), False, 0.0)
        was_running = dom.power() == "running"
        call: _MigrateCall | None = None
        if not job_active(dom.virdom):  # else a dead attempt's job runs on in libvirtd
            call = _MigrateCall(dom.virdom, req, self._params(dom, req))
            call.start()
        try:
            return self._follow(dom, req, call, t0)
        except BaseException:
            if was_running and Domain.find(self.conn.get(), req.instance_id) is not None:
                try:  # the guest stays where it was, as it was
                    dom.unpause()
                except libvirt.libvirtError as e:
                    activity.logger.warning("could not resume %s: %s", req.instance_id, e)
            raise

    def _params(self, dom: Domain, req: RunLiveMigration) -> dict[str, Any]:
        iid = req.instance_id
        dirs = {str(self.host.instance_dir(iid)): req.dest.instance_dir,
                str(self.host.cache_dir): req.dest.cache_dir}
        live = dom.virdom.XMLDesc(libvirt.VIR_DOMAIN_XML_MIGRATABLE)
        persistent = dom.virdom.XMLDesc(libvirt.VIR_DOMAIN_XML_MIGRATABLE
                                        | libvirt.VIR_DOMAIN_XML_INACTIVE)
        params: dict[str, Any] = {
            libvirt.VIR_MIGRATE_PARAM_DEST_XML: domain_xml.relocate(live, dirs),
            libvirt.VIR_MIGRATE_PARAM_PERSIST_XML: domain_xml.relocate(persistent, dirs),
        }
        if req.block_migration:
            params[libvirt.VIR_MIGRATE_PARAM_MIGRATE_DISKS] = disks_to_copy(live)
        return params

    def _follow(self, dom: Domain, req: RunLiveMigration, call: _MigrateCall | None,
                t0: float) -> LiveMigrationResult:
        """Heartbeat the job's progress until it ends; abort it when cancelled or, by
        default, at the completion timeout (force_complete: pause the guest instead)."""
        progress, downtime_set, paused = MigrationProgress(), False, False
        deadline = t0 + req.completion_timeout_s
        while call is None or call.is_alive():
            running = _stats(dom.virdom)
            if running is None and call is None:  # a dead attempt's job has ended
                break
            if running is not None:
                progress = _merged(progress, MigrationProgress.of(running))
                if not downtime_set:
                    downtime_set = _set_downtime(dom.virdom, req.downtime_ms)
            activity.heartbeat(asdict(progress))
            if activity.is_cancelled():
                self._abort(dom, call, "the migration was aborted")
                raise CancelledError("live migration aborted")
            if time.monotonic() > deadline and not paused:
                if req.timeout_action == "force_complete":
                    paused = self.force_complete_migration(InstanceRef(req.instance_id))
                else:
                    self._abort(dom, call, "completion timeout")
                    raise ApplicationError(
                        f"the live migration did not complete within "
                        f"{req.completion_timeout_s:g}s and was aborted",
                        type=MIGRATION_FAILED, non_retryable=True)
            time.sleep(POLL_S)
        if call is not None and call.error is not None:
            e = call.error
            raise ApplicationError(f"live migration to {req.dest_host} failed: "
                                   f"{e.get_error_message()}", type=MIGRATION_FAILED,
                                   non_retryable=True) from e
        if Domain.find(self.conn.get(), req.instance_id) is not None:
            raise ApplicationError("the migration job ended but the guest is still here",
                                   type=MIGRATION_FAILED, non_retryable=True)
        return LiveMigrationResult(replace(progress, percent=100), paused,
                                   time.monotonic() - t0, call.downtime_ms if call else None)

    def _abort(self, dom: Domain, call: _MigrateCall | None, why: str) -> None:
        """Abort the job and wait until it has ended (bounded: about a minute)."""
        activity.logger.info("aborting the migration of %s: %s", dom.uuid(), why)
        for _ in range(30):  # early in the job, libvirt may refuse the abort: again
            try:
                dom.virdom.abortJob()
            except libvirt.libvirtError as e:
                activity.logger.info("abortJob: %s", e)
            if call is not None:
                call.join(2)
                if not call.is_alive():
                    return
            else:
                time.sleep(1)
                if _stats(dom.virdom) is None:
                    return
            activity.heartbeat()

    def all(self) -> list[Callable[..., Any]]:
        return [self.prepare_live_migration, self.watch_incoming,
                self.incoming_migration_totals, self.live_migrate,
                self.force_complete_migration]


def _merged(before: MigrationProgress, now: MigrationProgress) -> MigrationProgress:
    """The job reports no memory numbers while it copies the disk, and a fast memory
    phase may end between two polls: keep the last numbers each part reported."""
    if now.memory_total == 0 and before.memory_total:
        now = replace(now, memory_total=before.memory_total,
                      memory_processed=before.memory_processed,
                      memory_remaining=before.memory_remaining)
    if now.disk_total == 0 and before.disk_total:
        now = replace(now, disk_total=before.disk_total, disk_processed=before.disk_processed,
                      disk_remaining=before.disk_remaining)
    total = now.memory_total + now.disk_total
    done = now.memory_processed + now.disk_processed
    return replace(now, percent=min(99, done * 100 // total) if total else 0)


def _stats(dom: libvirt.virDomain) -> dict[str, int] | None:
    """The running job's stats, or None when no job runs (or the domain left).
    virDomainGetJobStats first; the older virDomainGetJobInfo where it refuses."""
    ended = (libvirt.VIR_DOMAIN_JOB_NONE, libvirt.VIR_DOMAIN_JOB_COMPLETED,
             libvirt.VIR_DOMAIN_JOB_FAILED, libvirt.VIR_DOMAIN_JOB_CANCELLED)
    try:
        stats: dict[str, Any] = dom.jobStats(0)
    except libvirt.libvirtError as e:
        activity.logger.info("jobStats: %s", e)
        try:
            info = dom.jobInfo()
        except libvirt.libvirtError:
            return None
        if int(info[0]) in ended:
            return None
        return {"memory_total": info[6], "memory_processed": info[7],
                "memory_remaining": info[8], "disk_total": info[9], "disk_processed": info[10],
                "disk_remaining": info[11]}
    if stats.get("type", libvirt.VIR_DOMAIN_JOB_NONE) in ended:
        activity.logger.info("jobStats: no job (%s)", stats)
        return None
    return {k: int(v) for k, v in stats.items() if isinstance(v, int)}


def _set_downtime(dom: libvirt.virDomain, ms: int) -> bool:
    try:
        dom.migrateSetMaxDowntime(ms, 0)
        return True
    except libvirt.libvirtError as e:  # the job is not far enough yet: next poll
        activity.logger.debug("max downtime not set yet: %s", e)
        return False


class _MigrateCall(threading.Thread):
    """migrateToURI3 blocks until the job ends: it runs here, the activity follows."""

    def __init__(self, dom: libvirt.virDomain, req: RunLiveMigration, params: dict[str, Any]):
        super().__init__(daemon=True, name=f"migrate-{req.instance_id}")
        self.dom, self.req, self.params = dom, req, params
        self.error: libvirt.libvirtError | None = None
        self.downtime_ms: int | None = None

    def run(self) -> None:
        try:
            self.dom.migrateToURI3(self.req.dest_uri, self.params,
                                   migration_flags(self.req.block_migration))
        except libvirt.libvirtError as e:
            self.error = e
            return
        try:
            done = self.dom.jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
            self.downtime_ms = int(done["downtime"]) if "downtime" in done else None
        except libvirt.libvirtError:
            pass
