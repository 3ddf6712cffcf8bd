"""Contracts of live migration (workflows/instance/live_migrate.py): the request, the
plan the control plane makes of it, the destination's preparation and the source's
migration job, with its progress; one frozen dataclass in, one out."""

from __future__ import annotations

from dataclasses import dataclass, field

from vmflow.contracts.instances import ConfigDrive, ImageFile, Nic

# what the API sends the LiveMigrateInstance workflow (its signals and query names)
ABORT_SIGNAL = "abort"
FORCE_COMPLETE_SIGNAL = "force_complete"
MIGRATION_QUERY = "migration"


class LiveStatus:
    """A live migration's statuses (Nova's): queued → preparing → running → completed,
    or failed | cancelled (aborted) | error (the guest is on neither host as expected)."""

    QUEUED = "queued"
    PREPARING = "preparing"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    ERROR = "error"


@dataclass(frozen=True)
class LiveMigrateRequest:
    instance_id: str
    operation_id: str
    host: str | None = None  # None: the scheduler picks (never the source)
    # copy the disks (NON_SHARED_INC); vmflow hosts never share instance storage, so
    # the API refuses false and turns auto into true
    block_migration: bool = True


@dataclass(frozen=True)
class LiveMigrationPlan:
    """What the workflow needs, read once: the Migration row, the instance's flavor and
    images (the destination fetches them into its own cache), the settings."""

    migration_id: str  # Migration.uuid; also the key of the destination's claim
    instance_id: str
    source: str
    vcpus: int
    ram_mb: int
    disk_gb: int
    required_traits: list[str]
    forbidden_traits: list[str]
    root: ImageFile
    kernel: ImageFile | None
    ramdisk: ImageFile | None
    cmdline: str
    agent: bool
    config_drive: ConfigDrive | None
    schedule_to_start_s: float
    schedule_attempts: int
    downtime_ms: int  # VMFLOW_LIVE_MIGRATION_DOWNTIME_MS
    completion_timeout_s: float  # VMFLOW_LIVE_MIGRATION_COMPLETION_TIMEOUT
    timeout_action: str  # abort | force_complete


@dataclass(frozen=True)
class CheckDestination:
    """An admin's chosen host: registered, not the source, enabled, not forced down, up,
    with the traits and the room the flavor needs; else NoValidHost naming why."""

    instance_id: str
    source: str
    host: str
    vcpus: int
    ram_mb: int
    disk_gb: int
    required_traits: list[str]
    forbidden_traits: list[str]


@dataclass(frozen=True)
class MigrationTarget:
    host: str
    migration_uri: str  # what the source's libvirtd dials, peer to peer


@dataclass(frozen=True)
class MigrationProgress:
    """From the source's migration job (virDomainGetJobStats), in bytes."""

    memory_total: int = 0
    memory_processed: int = 0
    memory_remaining: int = 0
    disk_total: int = 0
    disk_processed: int = 0
    disk_remaining: int = 0
    percent: int = 0  # of memory and disk together

    @staticmethod
    def of(stats: dict[str, int]) -> MigrationProgress:
        get = lambda k: int(stats.get(k, 0) or 0)  # noqa: E731
        total = get("memory_total") + get("disk_total")
        done = get("memory_processed") + get("disk_processed")
        pct = min(99, done * 100 // total) if total else 0
        return MigrationProgress(get("memory_total"), get("memory_processed"),
                                 get("memory_remaining"), get("disk_total"),
                                 get("disk_processed"), get("disk_remaining"), pct)


@dataclass(frozen=True)
class MigrationUpdate:
    migration_id: str
    status: str | None = None
    dest_host: str | None = None
    progress: MigrationProgress | None = None


@dataclass(frozen=True)
class PrepareLiveMigration:
    """On the destination: the instance's files as a launch makes them, but the root
    disk empty over the same base image (its top layer is copied by the migration)."""

    instance_id: str
    base_path: str  # the base image in this host's cache
    base_format: str
    size_gb: int
    kernel_path: str | None
    initrd_path: str | None
    cmdline: str
    agent: bool
    vcpus: int
    ram_mb: int
    config_drive: ConfigDrive | None
    nics: list[Nic] = field(default_factory=list)  # kept in its saved define request


@dataclass(frozen=True)
class DestinationDirs:
    """Where the destination keeps the instance: the source rewrites its own paths
    under these (activities/hypervisor/libvirt/domain_xml.py relocate)."""

    instance_dir: str
    cache_dir: str


@dataclass(frozen=True)
class RunLiveMigration:
    instance_id: str
    dest_host: str
    dest_uri: str
    dest: DestinationDirs
    block_migration: bool
    downtime_ms: int
    completion_timeout_s: float
    timeout_action: str  # abort | force_complete


@dataclass(frozen=True)
class LiveMigrationResult:
    progress: MigrationProgress
    paused_to_converge: bool  # force-complete (asked, or the timeout's) paused the guest
    elapsed_s: float
    downtime_ms: int | None = None


@dataclass(frozen=True)
class MigrationDone:
    """The guest runs on the destination: the instance's host, claims and ledger follow."""

    migration_id: str
    instance_id: str
    source: str
    dest: str
    progress: MigrationProgress


@dataclass(frozen=True)
class MigrationState:
    """The workflow's `migration` query: which row, and where it stands."""

    migration_id: str | None
    status: str
    source: str | None
    dest: str | None
