"""Contracts of resize and cold migration (workflows/instance/resize.py,
confirm_resize.py, revert_resize.py, workflows/background/auto_confirm.py): one frozen
dataclass in, one out, standard library only.

A resize or a cold migration is one Migration row (Nova's migrations table). While
it waits for confirm or revert, the source keeps its copy (the instance dir moved
aside to `<uuid>_resize`, its domain shut off) and its claim, held by the migration's
uuid as consumer; the destination's claim is the instance's own (Nova's
migration-based allocations)."""

from __future__ import annotations

from dataclasses import dataclass

from vmflow.contracts.instances import ImageFile

# Nova's migration statuses of a resize or a cold migration
PRE_MIGRATING = "pre-migrating"
MIGRATING = "migrating"
POST_MIGRATING = "post-migrating"
FINISHED = "finished"  # VERIFY_RESIZE: waiting for confirm or revert
CONFIRMING = "confirming"
CONFIRMED = "confirmed"
REVERTING = "reverting"
REVERTED = "reverted"
ERROR = "error"
# the source copy still exists in these (a delete must remove it too)
SOURCE_KEPT = (FINISHED, CONFIRMING, REVERTING)


@dataclass(frozen=True)
class ResizeRequest:
    """resize (flavor_id set) or migrate (flavor_id None: the same flavor)."""

    instance_id: str
    operation_id: str
    flavor_id: str | None = None
    host: str | None = None  # migrate: the admin's destination; None: the scheduler picks


@dataclass(frozen=True)
class FlavorSpec:
    flavor_id: str
    vcpus: int
    ram_mb: int
    disk_gb: int


@dataclass(frozen=True)
class ResizePlan:
    """What the move needs, read once when it begins (begin_resize)."""

    instance_id: str
    migration_id: str  # the Migration row's uuid: the source claim's consumer meanwhile
    migration_type: str  # resize | migration
    source: str
    old: FlavorSpec
    new: FlavorSpec
    required_traits: list[str]
    forbidden_traits: list[str]
    root: ImageFile  # the base image the root disk's overlay sits on
    kernel: ImageFile | None
    ramdisk: ImageFile | None
    cmdline: str
    agent: bool
    allow_same_host: bool
    host: str | None  # a destination the admin chose
    schedule_attempts: int
    schedule_to_start_s: float
    confirm_window_s: float  # 0: never confirmed by itself


@dataclass(frozen=True)
class MoveClaim:
    """Give the allocation of consumer `from_id` on `host` to consumer `to_id`."""

    host: str
    from_id: str
    to_id: str


@dataclass(frozen=True)
class ResizeDone:
    """The move worked: the instance lives on the destination with the new flavor."""

    instance_id: str
    migration_id: str
    host: str
    flavor_id: str


@dataclass(frozen=True)
class PendingResize:
    """A resize waiting for confirm or revert, as confirm, revert and delete find it."""

    instance_id: str
    migration_id: str
    source: str
    dest: str
    old_flavor_id: str
    new_flavor_id: str


@dataclass(frozen=True)
class PendingResizes:
    items: list[PendingResize]


@dataclass(frozen=True)
class ResizeEnd:
    """confirm or revert finished (or delete removed the source copy): the row's status."""

    instance_id: str
    migration_id: str
    status: str  # confirmed | reverted
    host: str | None = None  # revert: the instance is back on its source
    flavor_id: str | None = None  # ... with the old flavor


# ---- the host side -----------------------------------------------------------------
@dataclass(frozen=True)
class SourceCopy:
    """The source's copy of an instance while a move waits for confirm or revert.
    same_host: source and destination are one host (VMFLOW_ALLOW_RESIZE_TO_SAME_HOST),
    so there is one domain definition, which the destination's replaced."""

    instance_id: str
    migration_id: str
    same_host: bool = False
    was_running: bool = False  # set_aside records it; restore_source returns it


@dataclass(frozen=True)
class SourceRestored:
    was_running: bool


@dataclass(frozen=True)
class ExportedFile:
    name: str  # disk, config.iso
    port: int
    size: int  # bytes of the file itself (a qcow2 overlay travels as its own bytes)


@dataclass(frozen=True)
class Exported:
    address: str  # the source's underlay address
    files: list[ExportedFile]


@dataclass(frozen=True)
class PullFiles:
    """On the destination: fetch the exported files into its own instance dir, put the
    root disk over its own cached base image and grow it to the new flavor's size."""

    instance_id: str
    migration_id: str
    exported: Exported
    base_path: str
    base_format: str
    disk_gb: int


@dataclass(frozen=True)
class Pulled:
    disk_path: str
    config_drive_path: str | None
    bytes: int


@dataclass(frozen=True)
class CopyProgress:
    """The pull's heartbeat details: bytes copied so far of `total`."""

    copied: int
    total: int


@dataclass(frozen=True)
class AutoConfirmRequest:
    """The timer a finished resize arms (workflow id auto-confirm-<instance>)."""

    instance_id: str
    migration_id: str
    after_s: float
    busy_retry_s: int = 60
