"""Contracts of createImage / createBackup (workflows/instance/snapshot.py) and of a backup
schedule's tick (workflows/background/scheduled_backup.py): one frozen dataclass in, one out.
Standard library only, as vmflow.contracts.instances (which keeps the activity names)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SnapshotRequest:
    """createImage / createBackup: the API has already made the image record (queued)."""

    instance_id: str
    operation_id: str
    image_id: str
    backup_type: str | None = None  # createBackup only
    rotation: int | None = None  # createBackup only: keep this many of that type


@dataclass(frozen=True)
class SnapshotPlan:
    """What the host step of a snapshot needs, read when it begins."""

    quiesce: bool  # the server's image has hw_qemu_guest_agent
    require_quiesce: bool  # ... and os_require_quiesce
    thaw_deadline_s: float


@dataclass(frozen=True)
class SnapshotDisk:
    instance_id: str
    image_id: str
    quiesce: bool
    require_quiesce: bool
    thaw_deadline_s: float  # the thaw guard thaws by itself this long after the freeze


@dataclass(frozen=True)
class SnapshotTaken:
    path: str  # a standalone qcow2 in the instance dir
    consistency: str  # quiesced | crash-consistent
    source: str  # running | paused | stopped | suspended: what the domain was
    frozen_s: float | None = None  # the freeze window as the host saw it
    frozen_at: float | None = None  # host wall clock (epoch s) when the freeze began
    size: int | None = None  # bytes and sha256 of the copy, when hashed as it was written
    checksum: str | None = None


@dataclass(frozen=True)
class SnapshotFile:
    instance_id: str
    image_id: str
    thaw: bool = False  # discard: also make sure the guest is not left frozen


@dataclass(frozen=True)
class SnapshotDone:
    image_id: str
    consistency: str
    source: str


@dataclass(frozen=True)
class SnapshotFailed:
    image_id: str
    reason: str


@dataclass(frozen=True)
class RotateBackups:
    instance_id: str
    backup_type: str
    rotation: int


@dataclass(frozen=True)
class RotatedBackups:
    deleted: list[str]  # image ids, oldest first



@dataclass(frozen=True)
class ScheduledBackupRequest:
    """The input of every ScheduledBackup run a backup schedule starts (fixed when
    the Temporal Schedule is made)."""

    instance_id: str
    schedule_id: str
    backup_type: str
    rotation: int


@dataclass(frozen=True)
class ScheduledBackupStart:
    """A tick's first step: the backup started (the instance's workflow id holds its
    SnapshotInstance), or the reason it was skipped."""

    started: bool
    operation_id: str | None = None
    image_id: str | None = None
    workflow_id: str | None = None
    run_id: str | None = None
    reason: str | None = None  # skipped: why (also the Operation row's last_error)


@dataclass(frozen=True)
class AwaitOperation:
    """Wait for the run of an instance workflow started for an Operation."""

    operation_id: str
    workflow_id: str
    run_id: str


@dataclass(frozen=True)
class OperationOutcome:
    status: str  # succeeded | failed | compensated
    error: str | None = None


@dataclass(frozen=True)
class ScheduledBackupResult:
    """What a ScheduledBackup run returns (and the schedule's recent actions show)."""

    status: str  # succeeded | skipped (a failed backup fails the run instead)
    operation_id: str | None = None
    image_id: str | None = None
    reason: str | None = None
