"""Workflow and activity contracts: one frozen dataclass in, one out.

Only the standard library here, so the workflow sandbox stays cheap. Activity names
are constants (ControlActs, HostActs), used by the real activities and by the typed
stubs workflows call (control_stub.py, host_stub.py), so neither side restates a name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# sha256 hex of an image's data: sent with a download, and with a host's import of a
# copy it hashed while writing it
CHECKSUM_HEADER = "X-Image-Checksum"


class Errors:
    """ApplicationError types that retrying cannot fix (non-retryable everywhere)."""

    NO_VALID_HOST = "NoValidHost"
    NO_CAPACITY = "NoCapacity"
    IMAGE_INVALID = "ImageInvalid"
    INVALID_STATE = "InvalidState"
    NOT_FOUND = "NotFound"
    HOST_STORAGE = "HostStorageError"  # permission denied, no space, read-only: retry won't fix
    GUEST_BOOT = "GuestBootFailed"  # stopped while booting, or no agent before the deadline
    ALL = [NO_VALID_HOST, NO_CAPACITY, IMAGE_INVALID, INVALID_STATE, NOT_FOUND, HOST_STORAGE,
           GUEST_BOOT]


class ControlActs:
    VALIDATE_LAUNCH = "control.validate_launch"
    SCHEDULE = "control.schedule"
    CLAIM = "control.claim"
    RELEASE_CLAIM = "control.release_claim"
    LEDGER_RECORD = "control.ledger_record"
    LEDGER_FORGET = "control.ledger_forget"
    LEDGER_FORGET_INSTANCE = "control.ledger_forget_instance"
    UPDATE_INSTANCE = "control.update_instance"
    FINISH_OPERATION = "control.finish_operation"
    BEGIN_DELETE = "control.begin_delete"
    REGISTER_HOST = "control.register_host"
    START_SCHEDULED_BACKUP = "control.start_scheduled_backup"  # a backup schedule's tick
    AWAIT_OPERATION = "control.await_operation"  # until an instance workflow closes
    START_AUTO_UNRESCUE = "control.start_auto_unrescue"  # a rescue's timer ran out
    DELETE_BACKUP_SCHEDULES = "control.delete_backup_schedules"  # delete: the timetables
    BEGIN_ACTION = "control.begin_action"
    END_ACTION = "control.end_action"
    SYNC_CANDIDATES = "control.power_sync_candidates"
    SYNC_APPLY = "control.power_sync_apply"
    SNAPSHOT_BEGIN = "control.snapshot_begin"  # createImage/createBackup: image queued?
    SNAPSHOT_DONE = "control.snapshot_done"  # image active with its consistency
    SNAPSHOT_FAILED = "control.snapshot_failed"  # image error with the reason
    ROTATE_BACKUPS = "control.rotate_backups"
    SET_IMAGE = "control.set_instance_image"  # rebuild: the new image, once it booted
    RECONCILE_HOSTS = "control.reconcile_hosts"  # ledger reconciler: the hosts to look at
    RECONCILE_PLAN = "control.reconcile_plan"  # ... one host's listing against ledger and DB
    RECONCILE_STORAGE_HOSTS = "control.reconcile_storage_hosts"  # ... the storage hosts
    RECONCILE_SHARES = "control.reconcile_shares"  # ... one storage host's shares and snapshots
    RESYNC_SHARE_ACCESS = "control.resync_share_access"  # ... rules left in flight
    RECONCILE_IMAGE_STORE = "control.reconcile_image_store"  # ... and the image store's files
    SETTLE_OPERATION = "control.settle_operation"  # a row its own workflow left running
    SETTLE_CLOSED = "control.settle_closed_operations"  # ... rows of closed workflows


class HostActs:
    FETCH_IMAGE = "host.fetch_image"
    CREATE_DISK = "host.create_disk"
    DELETE_DISKS = "host.delete_instance_files"
    DEFINE_DOMAIN = "host.define_domain"
    START_DOMAIN = "host.start_domain"
    WAIT_AGENT = "host.wait_agent"
    DESTROY_DOMAIN = "host.destroy_domain"
    OBSERVE = "host.observe"
    OBSERVE_MANY = "host.observe_many"
    POWER_ON = "host.power_on"
    POWER_OFF = "host.power_off"
    SHUTDOWN = "host.shutdown"
    PAUSE = "host.pause"
    UNPAUSE = "host.unpause"
    MANAGED_SAVE = "host.managed_save"
    RESCUE = "host.rescue"
    UNRESCUE = "host.unrescue"
    CONFIG_DRIVE = "host.create_config_drive"
    SNAPSHOT_DISK = "host.snapshot_disk"
    UPLOAD_SNAPSHOT = "host.upload_snapshot"
    DISCARD_SNAPSHOT = "host.discard_snapshot"
    PREPARE_REBUILD = "host.prepare_rebuild"
    SWAP_IN_REBUILD = "host.swap_in_rebuild"
    COMMIT_REBUILD = "host.commit_rebuild"
    RESTORE_OLD_DISK = "host.restore_old_disk"
    LIST_RESOURCES = "host.list_instance_resources"  # ledger reconciler: domains and dirs


@dataclass(frozen=True)
class OperationRef:
    instance_id: str
    operation_id: str


@dataclass(frozen=True)
class InstanceRef:
    instance_id: str


@dataclass(frozen=True)
class ImageFile:
    image_id: str
    location: str  # API path of its data, /v1/images/<id>/file (hosts fetch over HTTP)
    checksum: str  # sha256 hex
    size: int
    disk_format: str  # qcow2 | raw | aki | ari


@dataclass(frozen=True)
class ConfigDrive:
    """Nova's config drive (config-2 layout): openstack/latest/{meta_data.json,user_data}."""

    instance_id: str
    meta_data_json: str
    user_data_b64: str | None


@dataclass(frozen=True)
class LaunchPlan:
    instance_id: str
    project_id: str
    vcpus: int
    ram_mb: int
    disk_gb: int
    required_traits: list[str]
    forbidden_traits: list[str]
    root: ImageFile
    kernel: ImageFile | None
    ramdisk: ImageFile | None
    cmdline: str
    agent: bool  # image property hw_qemu_guest_agent
    config_drive: ConfigDrive | None
    schedule_to_start_s: float  # how long a chosen host may take to pick up work
    agent_timeout_s: float


@dataclass(frozen=True)
class ScheduleRequest:
    instance_id: str
    vcpus: int
    ram_mb: int
    disk_gb: int
    required_traits: list[str]
    forbidden_traits: list[str]
    exclude_hosts: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ScheduleResult:
    hosts: list[str]  # best first


@dataclass(frozen=True)
class ClaimRequest:
    instance_id: str
    host: str
    vcpus: int
    ram_mb: int
    disk_gb: int


@dataclass(frozen=True)
class InstanceHost:
    instance_id: str
    host: str


@dataclass(frozen=True)
class LedgerEntry:
    host: str
    kind: str  # disk | domain | claim | cache | share | share_snapshot
    key: str  # path, domain uuid, image id, share or snapshot id
    instance_id: str | None = None


@dataclass(frozen=True)
class LedgerEntries:
    entries: list[LedgerEntry]


@dataclass(frozen=True)
class FetchImage:
    image: ImageFile


@dataclass(frozen=True)
class FetchedImage:
    path: str


@dataclass(frozen=True)
class CreateDisk:
    instance_id: str
    base_path: str
    base_format: str
    size_gb: int


@dataclass(frozen=True)
class DiskCreated:
    path: str


@dataclass(frozen=True)
class DefineDomain:
    instance_id: str
    vcpus: int
    ram_mb: int
    disk_path: str
    kernel_path: str | None
    initrd_path: str | None
    cmdline: str
    agent: bool
    config_drive_path: str | None = None


@dataclass(frozen=True)
class ConfigDriveCreated:
    path: str


# ---- instance actions ---------------------------------------------------------------
@dataclass(frozen=True)
class RebootRequest:
    instance_id: str
    operation_id: str
    hard: bool


@dataclass(frozen=True)
class RescueRequest:
    instance_id: str
    operation_id: str
    image_id: str | None = None  # None: the image the server was built from
    unrescue_after_s: int | None = None  # then unrescued by itself (AutoUnrescue)


@dataclass(frozen=True)
class AutoUnrescueRequest:
    """The timer a rescue with unrescue_after arms (workflow id
    auto-unrescue-<instance>-<rescue operation>)."""

    instance_id: str
    rescue_operation_id: str
    after_s: int
    busy_retry_s: int = 60  # a server busy with another operation is asked again then


@dataclass(frozen=True)
class AutoUnrescueStep:
    """What the timer's step did: started an unrescue (operation_id), found nothing to
    do (reason), or found the server busy (try again later)."""

    busy: bool = False
    operation_id: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class RebuildRequest:
    instance_id: str
    operation_id: str
    image_id: str


@dataclass(frozen=True)
class RebuildImage:
    """rebuild: the new image as begin_action resolved it (root, kernel, ramdisk)."""

    image_id: str
    root: ImageFile
    kernel: ImageFile | None
    ramdisk: ImageFile | None
    cmdline: str  # image property os_command_line
    agent: bool  # image property hw_qemu_guest_agent
    disk_gb: int  # the flavor's root disk: the new overlay's size


@dataclass(frozen=True)
class RebuildDisk:
    """rebuild on the host: the new root disk's base and the boot parameters that
    replace the old ones in the saved define request (domain.json)."""

    instance_id: str
    base_path: str
    base_format: str
    size_gb: int
    kernel_path: str | None
    initrd_path: str | None
    cmdline: str
    agent: bool


@dataclass(frozen=True)
class RestoreOldDisk:
    """rebuild's undo: the old disk and define request back; power on if it ran."""

    instance_id: str
    power_on: bool


@dataclass(frozen=True)
class InstanceImage:
    instance_id: str
    image_id: str


@dataclass(frozen=True)
class ActionStart:
    instance_id: str
    operation_id: str
    action: str  # a key of vmflow.states.TRANSITIONS
    image_id: str | None = None  # rescue: the image to boot


@dataclass(frozen=True)
class InstanceFacts:
    """What a workflow needs to know about an instance when its action starts."""

    instance_id: str
    host: str
    vm_state: str  # before the action
    agent: bool
    agent_timeout_s: float
    stop_timeout_s: float
    reboot_timeout_s: float
    rescue_image: ImageFile | None = None
    rebuild: RebuildImage | None = None  # rebuild: the image to build the new disk from


@dataclass(frozen=True)
class ActionEnd:
    instance_id: str
    operation_id: str
    vm_state: str
    status: str  # succeeded | failed | compensated
    error: str | None = None


@dataclass(frozen=True)
class Shutdown:
    instance_id: str
    timeout_s: float


@dataclass(frozen=True)
class ShutdownResult:
    clean: bool  # False: the guest ignored the request until the timeout


@dataclass(frozen=True)
class Rescue:
    instance_id: str
    rescue_image_path: str
    rescue_image_format: str


@dataclass(frozen=True)
class Observation:
    """The real state of an instance's domain on its host."""

    instance_id: str
    exists: bool
    power: str  # running | paused | shutoff | crashed | absent | other
    managed_save: bool
    rescue: bool

    def vm_state(self) -> str:
        if not self.exists:
            return "error"
        if self.rescue and self.power == "running":
            return "rescued"
        if self.power == "running":
            return "active"
        if self.power == "paused":
            return "paused"
        if self.power == "shutoff" and self.managed_save:
            return "suspended"
        if self.power in ("shutoff", "crashed"):
            return "stopped"
        return "error"


@dataclass(frozen=True)
class InstanceIds:
    instance_ids: list[str]


@dataclass(frozen=True)
class Observations:
    items: list[Observation]


@dataclass(frozen=True)
class SyncCandidates:
    """Instances per host whose DB state can be compared (no operation running)."""

    by_host: dict[str, list[str]]


@dataclass(frozen=True)
class SyncApply:
    observations: list[Observation]


@dataclass(frozen=True)
class SyncResult:
    fixed: list[str]  # "<instance id>: <from> -> <to>"


@dataclass(frozen=True)
class WaitAgent:
    instance_id: str
    deadline: float  # epoch seconds; retries after a worker crash keep the same deadline


@dataclass(frozen=True)
class InstanceUpdate:
    instance_id: str
    vm_state: str | None = None
    task_state: str | None = None
    clear_task_state: bool = False
    host: str | None = None
    clear_host: bool = False
    fault: str | None = None
    clear_fault: bool = False


@dataclass(frozen=True)
class FinishOperation:
    operation_id: str
    status: str  # succeeded | failed | compensated
    error: str | None = None


@dataclass(frozen=True)
class DeletePlan:
    instance_id: str
    host: str | None


@dataclass(frozen=True)
class HostInfo:
    name: str
    vcpus: int
    ram_mb: int
    disk_gb: int
    traits: list[str]
    virt_type: str
    hostname: str


@dataclass(frozen=True)
class StepStatus:
    """What a running workflow reports through its `status` query."""

    step: str
    progress: int | None
    host: str | None
