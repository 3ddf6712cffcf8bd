"""Contracts of the share workflows and activities (Manila's part of vmflow): one
frozen dataclass in, one out, only the standard library (the workflow sandbox).

Storage activities run on the storage worker's queue (`storage.<host>`,
vmflow.names.storage_queue; workflows call them through storage_stub.StorageStub);
share control activities on `control` (control_stub.ControlStub).
"""

from __future__ import annotations

from dataclasses import dataclass, field


class ShareErrors:
    """ApplicationError types that retrying cannot fix."""

    SHRINK_BELOW_USED = "ShareShrinkBelowUsed"  # shrink under what the share holds
    POOL_FULL = "SharePoolFull"  # the storage pool has no room for the size asked
    NOT_FOUND = "ShareNotFound"


class StorageActs:
    """Storage worker activities; each ensures a state and is safe to repeat."""

    CREATE_SHARE = "storage.create_share"  # subvolume or copy of a snapshot, limit, export
    DELETE_SHARE = "storage.delete_share"  # unexport, unmount, delete subvolume: gone is success
    RESIZE_SHARE = "storage.resize_share"  # qgroup limit; shrink refuses below used space
    APPLY_ACCESS = "storage.apply_access"  # the whole desired rule list → the export
    CREATE_SNAPSHOT = "storage.create_share_snapshot"  # read-only btrfs snapshot
    DELETE_SNAPSHOT = "storage.delete_share_snapshot"
    LIST_SHARES = "storage.list_shares"  # ledger reconciler: subvolumes and exports here


class ShareControlActs:
    """Control activities of the share workflows (database steps)."""

    SET_SHARE = "control.share_set"  # status, export_locations, fault, size
    FINISH_SHARE = "control.share_finish"  # the row removed once the share is gone
    RULES_TO_APPLY = "control.share_rules_to_apply"  # queued_* → applying/denying; the list
    RULES_APPLIED = "control.share_rules_applied"  # applying → active|error, denying → deleted
    SET_SNAPSHOT = "control.share_snapshot_set"
    FINISH_SNAPSHOT = "control.share_snapshot_finish"
    PLAN = "control.share_plan"  # what a share workflow reads before its first step


class ShareLedger:
    """Ledger kinds of a storage host's side effects (DESIGN decision 9), recorded
    before the subvolume is made and forgotten once it is gone; key = the id."""

    SHARE = "share"  # the subvolume, its mount and its export
    SNAPSHOT = "share_snapshot"  # a read-only snapshot subvolume
    KINDS = (SHARE, SNAPSHOT)


# ---- workflow inputs (workflow id share-<share_id>, except the access reconcile) ----

@dataclass(frozen=True)
class ShareOp:
    """Create, delete, force-delete: the share and its Operation row."""

    share_id: str
    operation_id: str
    host: str  # the storage host (queue storage.<host>)
    size_gb: int = 0
    snapshot_id: str | None = None  # create from this share snapshot
    force: bool = False  # force_delete: from any state, whatever the backend says


@dataclass(frozen=True)
class ShareResizeOp:
    share_id: str
    operation_id: str
    host: str
    new_size_gb: int


@dataclass(frozen=True)
class ShareSnapshotOp:
    snapshot_id: str
    share_id: str
    operation_id: str
    host: str


@dataclass(frozen=True)
class ShareAccessSync:
    """SyncShareAccess (workflow id share-<id>-access), started with signal-with-start
    of RULES_CHANGED_SIGNAL so concurrent allow/deny requests queue on one run."""

    share_id: str
    host: str


RULES_CHANGED_SIGNAL = "rules_changed"


# ---- activity inputs and results --------------------------------------------------

@dataclass(frozen=True)
class ShareSpec:
    share_id: str
    size_gb: int
    snapshot_id: str | None = None
    source_share_id: str | None = None  # the share the snapshot belongs to


@dataclass(frozen=True)
class ShareExported:
    export_locations: list[str]


@dataclass(frozen=True)
class ShareResize:
    share_id: str
    new_size_gb: int


@dataclass(frozen=True)
class AccessRuleSpec:
    rule_id: str
    access_type: str  # ip | user | cert
    access_to: str  # normalized by vmflow.access_rules
    access_level: str  # rw | ro


@dataclass(frozen=True)
class ApplyAccess:
    share_id: str
    rules: list[AccessRuleSpec]  # every rule that should be in force, nothing else


@dataclass(frozen=True)
class AccessApplied:
    applied: list[str]  # rule ids now enforced
    errors: dict[str, str] = field(default_factory=dict)  # rule id → why it cannot be


@dataclass(frozen=True)
class SnapshotSpec:
    share_id: str
    snapshot_id: str


@dataclass(frozen=True)
class ShareUpdate:
    share_id: str
    status: str | None = None
    export_locations: list[str] | None = None
    size_gb: int | None = None
    fault: str | None = None
    clear_fault: bool = False
    access_rules_status: str | None = None


@dataclass(frozen=True)
class ShareRuleIds:
    share_id: str
    rules: list[AccessRuleSpec]  # what the exporter should enforce (applying + active)
    denying: list[str]  # rule ids being removed


@dataclass(frozen=True)
class RulesApplied:
    share_id: str
    applied: list[str]
    denied: list[str]
    errors: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ShareRef:
    share_id: str
    snapshot_id: str | None = None  # a snapshot the operation is about (create from it)


@dataclass(frozen=True)
class SharePlan:
    """The share as its workflow starts: where it stood, and what the steps need."""

    share_id: str
    status: str
    size_gb: int
    schedule_to_start_s: float  # how long the storage worker may take to pick up a step
    source_share_id: str | None = None  # the share ShareRef.snapshot_id belongs to
    snapshot_ids: list[str] = field(default_factory=list)  # every snapshot of the share


@dataclass(frozen=True)
class SnapshotUpdate:
    snapshot_id: str
    status: str
    fault: str | None = None
