"""The activities of the `hv.<host>` queue as workflows see them: name, input, output.

Workflows call these (workflows/_base/steps.py `on_host(host, HostStub.fetch_image,
arg)`); each host's worker runs the real ones in activities/hypervisor/, registered
under the same names. tests/unit/test_activity_stubs.py keeps both sides in step.
"""

from __future__ import annotations

from temporalio import activity

from vmflow.contracts.actions import (
    InstanceIds,
    Observation,
    Observations,
    RebuildDisk,
    Rescue,
    RestoreOldDisk,
    Shutdown,
    ShutdownResult,
    WaitAgent,
)
from vmflow.contracts.activity_names import HostActs
from vmflow.contracts.instances import (
    ConfigDrive,
    ConfigDriveCreated,
    CreateDisk,
    DefineDomain,
    DiskCreated,
    FetchedImage,
    FetchImage,
    InstanceRef,
)
from vmflow.contracts.metadata import InstanceMetadata, MetadataRef
from vmflow.contracts.migrations import (
    DestinationDirs,
    LiveMigrationResult,
    MigrationProgress,
    PrepareLiveMigration,
    RunLiveMigration,
)
from vmflow.contracts.networks import (
    AttachPort,
    DetachPort,
    FloatingIpRef,
    FloatingIpSpec,
    HostFloatingIps,
    HostNetworks,
    NetworkRef,
    NetworkSpec,
    PortRef,
    PortSpec,
)
from vmflow.contracts.reconcile import HostRef, HostResources
from vmflow.contracts.resize import Exported, Pulled, PullFiles, SourceCopy, SourceRestored
from vmflow.contracts.snapshots import SnapshotDisk, SnapshotFile, SnapshotTaken

RUNS_ON_THE_WORKER = "declared here; a hypervisor worker (hv.<host>) runs this activity"


class HostStub:
    """libvirt and qemu-img steps on one host (queue `hv.<host>`)."""

    # ---- launch and delete ---------------------------------------------------------
    @activity.defn(name=HostActs.FETCH_IMAGE)
    async def fetch_image(self, req: FetchImage) -> FetchedImage:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=HostActs.CREATE_DISK)
    async def create_disk(self, req: CreateDisk) -> DiskCreated:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=HostActs.CONFIG_DRIVE)
    async def create_config_drive(self, req: ConfigDrive) -> ConfigDriveCreated:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=HostActs.DEFINE_DOMAIN)
    async def define_domain(self, req: DefineDomain) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=HostActs.START_DOMAIN)
    async def start_domain(self, ref: InstanceRef) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=HostActs.WAIT_AGENT)
    async def wait_agent(self, req: WaitAgent) -> float:
        """Seconds until the guest agent answered."""
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=HostActs.DESTROY_DOMAIN)
    async def destroy_domain(self, ref: InstanceRef) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=HostActs.DELETE_DISKS)
    async def delete_instance_files(self, ref: InstanceRef) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    # ---- power and state -----------------------------------------------------------------
    @activity.defn(name=HostActs.OBSERVE)
    async def observe(self, ref: InstanceRef) -> Observation:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=HostActs.OBSERVE_MANY)
    async def observe_many(self, req: InstanceIds) -> Observations:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=HostActs.POWER_ON)
    async def power_on(self, ref: InstanceRef) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=HostActs.POWER_OFF)
    async def power_off(self, ref: InstanceRef) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=HostActs.SHUTDOWN)
    async def shutdown(self, req: Shutdown) -> ShutdownResult:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=HostActs.PAUSE)
    async def pause(self, ref: InstanceRef) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=HostActs.UNPAUSE)
    async def unpause(self, ref: InstanceRef) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=HostActs.MANAGED_SAVE)
    async def managed_save(self, ref: InstanceRef) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=HostActs.RESCUE)
    async def rescue(self, req: Rescue) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=HostActs.UNRESCUE)
    async def unrescue(self, ref: InstanceRef) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    # ---- rebuild -------------------------------------------------------------------------
    @activity.defn(name=HostActs.PREPARE_REBUILD)
    async def prepare_rebuild(self, req: RebuildDisk) -> DiskCreated:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=HostActs.SWAP_IN_REBUILD)
    async def swap_in_rebuild(self, req: RebuildDisk) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=HostActs.COMMIT_REBUILD)
    async def commit_rebuild(self, ref: InstanceRef) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=HostActs.RESTORE_OLD_DISK)
    async def restore_old_disk(self, req: RestoreOldDisk) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    # ---- snapshots -----------------------------------------------------------------------
    @activity.defn(name=HostActs.SNAPSHOT_DISK)
    async def snapshot_disk(self, req: SnapshotDisk) -> SnapshotTaken:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=HostActs.UPLOAD_SNAPSHOT)
    async def upload_snapshot(self, req: SnapshotFile) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=HostActs.DISCARD_SNAPSHOT)
    async def discard_snapshot(self, req: SnapshotFile) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    # ---- the ledger reconciler -------------------------------------------------------------
    @activity.defn(name=HostActs.LIST_RESOURCES)
    async def list_instance_resources(self, ref: HostRef) -> HostResources:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    # ---- live migration --------------------------------------------------------------------
    @activity.defn(name=HostActs.PREPARE_LIVE_MIGRATION)
    async def prepare_live_migration(self, req: PrepareLiveMigration) -> DestinationDirs:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=HostActs.WATCH_INCOMING)
    async def watch_incoming(self, ref: InstanceRef) -> bool:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=HostActs.INCOMING_TOTALS)
    async def incoming_migration_totals(self, ref: InstanceRef) -> MigrationProgress:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=HostActs.LIVE_MIGRATE)
    async def live_migrate(self, req: RunLiveMigration) -> LiveMigrationResult:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=HostActs.FORCE_COMPLETE_MIGRATION)
    async def force_complete_migration(self, ref: InstanceRef) -> bool:
        """True: the guest was paused so its migration converges."""
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    # ---- resize and cold migration -------------------------------------------------------
    @activity.defn(name=HostActs.SET_ASIDE)
    async def set_aside(self, req: SourceCopy) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=HostActs.EXPORT_FILES)
    async def export_files(self, req: SourceCopy) -> Exported:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=HostActs.UNEXPORT_FILES)
    async def unexport_files(self, req: SourceCopy) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=HostActs.RESTORE_SOURCE)
    async def restore_source(self, req: SourceCopy) -> SourceRestored:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=HostActs.DROP_SOURCE)
    async def drop_source(self, req: SourceCopy) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=HostActs.PULL_FILES)
    async def pull_files(self, req: PullFiles) -> Pulled:
        """Heartbeat details: CopyProgress (bytes copied of the total)."""
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=HostActs.DISCARD_INCOMING)
    async def discard_incoming(self, req: SourceCopy) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    # ---- guest networks (activities/hypervisor/network/) ----------------------------
    @activity.defn(name=HostActs.ENSURE_NETWORK)
    async def ensure_network(self, spec: NetworkSpec) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=HostActs.REMOVE_NETWORK)
    async def remove_network(self, ref: NetworkRef) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=HostActs.ENSURE_PORT)
    async def ensure_port(self, port: PortSpec) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=HostActs.REMOVE_PORT)
    async def remove_port(self, ref: PortRef) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=HostActs.ATTACH_PORT)
    async def attach_port(self, req: AttachPort) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=HostActs.DETACH_PORT)
    async def detach_port(self, req: DetachPort) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=HostActs.LIST_NETWORKS)
    async def list_networks(self, ref: HostRef) -> HostNetworks:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    # ---- floating IPs (activities/hypervisor/network/floating.py) ---------------------
    @activity.defn(name=HostActs.ENSURE_FLOATING_IP)
    async def ensure_floating_ip(self, spec: FloatingIpSpec) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=HostActs.REMOVE_FLOATING_IP)
    async def remove_floating_ip(self, ref: FloatingIpRef) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=HostActs.LIST_FLOATING_IPS)
    async def list_floating_ips(self, ref: HostRef) -> HostFloatingIps:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    # ---- the metadata service (activities/hypervisor/network/metadata.py) ------------
    @activity.defn(name=HostActs.ENSURE_METADATA_ROUTE)
    async def ensure_metadata_route(self, ref: NetworkRef) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=HostActs.PUBLISH_METADATA)
    async def publish_metadata(self, md: InstanceMetadata) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=HostActs.WITHDRAW_METADATA)
    async def withdraw_metadata(self, ref: MetadataRef) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)
