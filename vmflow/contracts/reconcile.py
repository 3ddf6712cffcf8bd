"""Contracts of the ledger reconciler (DESIGN decision 9; workflows/background/reconcile_ledger.py):
what a hypervisor or storage host lists, what the control side plans, what a run
reports. Standard library only, as vmflow.contracts.instances."""

from __future__ import annotations

from dataclasses import dataclass, field

from vmflow.contracts.instances import LedgerEntry


@dataclass(frozen=True)
class ReconcileLedgerRequest:
    """The input of a ReconcileLedger run (the schedule's is the default)."""

    hosts: list[str] = field(default_factory=list)  # empty: every host vmflow knows
    grace_s: float | None = None  # None: VMFLOW_RECONCILE_GRACE


@dataclass(frozen=True)
class HostRef:
    host: str


@dataclass(frozen=True)
class ReconcileHosts:
    alive: list[str]  # a worker polls hv.<host> (storage hosts: storage.<host>): listed
    dead: list[str]  # no worker: skipped (a dead host says nothing about its resources)


@dataclass(frozen=True)
class HostDomain:
    """A libvirt domain named <domain prefix><uuid> whose disks are in this host's own
    instance dir of that uuid (a domain of another host or stack is never listed)."""

    instance_id: str
    active: bool


@dataclass(frozen=True)
class HostDir:
    """<host dir>/instances/<uuid>: an instance's disks, config drive, domain.json."""

    instance_id: str
    age_s: float  # since it last changed (mtime), by the host's own clock


@dataclass(frozen=True)
class HostResources:
    host: str
    domains: list[HostDomain]
    dirs: list[HostDir]


@dataclass(frozen=True)
class ReconcilePlanRequest:
    resources: HostResources
    grace_s: float | None = None


@dataclass(frozen=True)
class OrphanRemoval:
    """What a gone instance left on a host; each removed, then `entries` forgotten."""

    instance_id: str
    domain: bool  # destroy and undefine (host.destroy_domain)
    dir: bool  # remove the instance dir (host.delete_instance_files)
    claim: bool  # release the allocation (control.release_claim)
    entries: list[LedgerEntry]
    why: str


@dataclass(frozen=True)
class ReconcilePlan:
    host: str
    remove: list[OrphanRemoval]
    forget: list[LedgerEntry]  # entries of gone instances whose resource is gone already
    reported: list[str]  # live instances that disagree with the host: told, not touched
    deferred: list[str]  # orphans left for a later run: too young, or an operation runs


# ---- storage hosts: shares and share snapshots --------------------------------------

@dataclass(frozen=True)
class StoredSubvolume:
    """A share's subvolume (pool/shares/<id>) or a snapshot's (pool/snapshots/<id>)."""

    id: str
    age_s: float  # since its root last changed (mtime), by the storage host's clock
    # snapshots: the share it was taken of (btrfs parent), while the pool still holds it
    share_id: str | None = None


@dataclass(frozen=True)
class StoredExport:
    """A share's export file in ganesha's config (or one whose removal stopped midway)."""

    share_id: str
    export_id: int
    age_s: float  # since the file was last written


@dataclass(frozen=True)
class StorageResources:
    host: str
    shares: list[StoredSubvolume]
    snapshots: list[StoredSubvolume]
    exports: list[StoredExport]


@dataclass(frozen=True)
class StoragePlanRequest:
    resources: StorageResources
    grace_s: float | None = None


@dataclass(frozen=True)
class StoredOrphan:
    """A share or snapshot with no row: its backend part removed with the delete
    workflow's own step (storage.delete_share / delete_share_snapshot, which count
    "already gone" as done), then `entries` forgotten."""

    kind: str  # share | share_snapshot (vmflow.contracts.shares.ShareLedger)
    id: str
    share_id: str | None  # the share a snapshot was taken of, if known
    removes: int  # what goes: subvolume, export (counted into `removed`)
    entries: list[LedgerEntry]
    why: str


@dataclass(frozen=True)
class ShareResync:
    """A live share whose access rules were left in flight (queued, applying, denying)
    with no SyncShareAccess running: the reconcile is signalled again."""

    share_id: str
    why: str


@dataclass(frozen=True)
class StoragePlan:
    host: str
    remove: list[StoredOrphan]  # snapshots first, then shares
    forget: list[LedgerEntry]  # rows of gone shares/snapshots whose backend is gone too
    reported: list[str]  # live shares or snapshots that disagree: told, not touched
    deferred: list[str]  # orphans left for a later run: too young, or an operation runs
    resync: list[ShareResync] = field(default_factory=list)


@dataclass(frozen=True)
class ReconcileLedgerResult:
    """What a run did; the Temporal Web UI shows it as the workflow's result."""

    removed: int  # domains, instance dirs, claims; subvolumes and exports of gone shares;
    # image store files no image uses
    forgotten: int  # ledger entries
    reported: int
    deferred: int
    failed: int  # removals that failed (the next run tries again)
    skipped_hosts: list[str]  # not listed: no worker, or it did not answer (storage.<host>)
    details: list[str]  # one line per thing done, reported, deferred or failed
    repaired: int = 0  # images moved out of a state nobody would move them out of, and
    # shares whose access rules were left in flight, signalled again
    settled: int = 0  # Operation rows left running by a workflow that had closed


# ---- the image store (activities/control/image_store.py) ---------------------------

@dataclass(frozen=True)
class ImageStoreRequest:
    grace_s: float | None = None  # None: VMFLOW_RECONCILE_GRACE


@dataclass(frozen=True)
class ImageStoreReport:
    """What the image store's check did (a part of ReconcileLedgerResult)."""

    removed: int  # files no image uses
    repaired: int  # images moved out of a state nobody would move them out of
    reported: int
    deferred: int
    failed: int
    details: list[str]


# ---- operation rows (activities/control/operation_rows.py) --------------------------

class RowActs:
    """Control activities that finish Operation rows their workflow left running."""

    SETTLE_OPERATION = "control.settle_operation"
    SETTLE_CLOSED = "control.settle_closed_operations"


@dataclass(frozen=True)
class SettleOperation:
    """Finish the row if it still runs (a row the workflow finished is left alone)."""

    operation_id: str
    status: str  # failed | compensated
    error: str


@dataclass(frozen=True)
class ClosedRowsRequest:
    grace_s: float | None = None  # rows younger than this are not judged


@dataclass(frozen=True)
class ClosedRowsReport:
    """What the ledger reconciler's row check did (a part of ReconcileLedgerResult)."""

    settled: int  # rows of closed workflows finished with the workflow's final status
    details: list[str]
