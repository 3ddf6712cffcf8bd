"""The ledger reconciler's judgement for a storage host, pure (DESIGN decision 9):
given what the host has (share and snapshot subvolumes, export files), its ledger
rows of kind share and share_snapshot, the share and snapshot rows they name, and
which shares have an operation running, say what to remove, what to forget, what to
report and what to leave for a later run.

The rules, per share id and per snapshot id that any of those name:

- **live** (a row, whatever its status): never touched, and nothing is said while
  its share's workflow `share-<id>` runs. Otherwise reported:
  - an `available` share whose row puts it on this host without its subvolume or
    its export here; an `available` snapshot of a share here without its subvolume;
  - one whose row puts it (or its share) on another host, with a subvolume or an
    export here;
  - one in a transitional status (creating, extending, shrinking, deleting) whose
    row has not changed for the grace period: its operation died (none runs), and
    the admin decides (reset_status, force_delete).
- **gone** (no row: rows are deleted only once the backend was cleaned), its share's
  `share-<id>` runs: deferred; the operation owns it.
- **gone**, younger than the grace period: deferred. Its age is the time since its
  newest sign of life here: its ledger rows were made, its subvolume's root last
  changed (mtime), its export file was last written.
- **gone**, old, with a subvolume or an export here: removed (snapshots first), then
  its ledger rows forgotten.
- **gone**, old, with only ledger rows: the rows are forgotten.

- **live** `available` share here with access rules in flight (queued_to_apply,
  applying, queued_to_deny, denying) unchanged for the grace period and no
  `share-<id>-access` running: its access sync is signalled again (rules move only
  while one runs).

A snapshot's share is its row's; without a row, the share btrfs says it was taken of
(while the pool holds that share); with neither there is no workflow to wait for. A
snapshot's root is a copy of its share's, mtime included, so a new snapshot may look
old by it: its ledger entry, recorded just before it was taken, keeps it young.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from vmflow.contracts.instances import LedgerEntry
from vmflow.contracts.reconcile import ShareResync, StoragePlan, StorageResources, StoredOrphan
from vmflow.contracts.shares import ShareLedger
from vmflow.share_states import TRANSITIONAL, ShareStatus

SHARE, SNAPSHOT = ShareLedger.SHARE, ShareLedger.SNAPSHOT
NAMES = {SHARE: "share", SNAPSHOT: "share snapshot"}
SNAPSHOT_TRANSITIONAL = frozenset({"creating", "deleting"})


@dataclass(frozen=True)
class LedgerRow:
    kind: str  # share | share_snapshot
    key: str  # the share or snapshot id
    created_at: datetime  # timezone-aware


@dataclass(frozen=True)
class ShareRow:
    id: str
    status: str
    host: str | None
    updated_at: datetime


@dataclass(frozen=True)
class SnapshotRow:
    id: str
    share_id: str
    status: str
    updated_at: datetime


@dataclass(frozen=True)
class StorageFacts:
    """Everything the judgement reads about one storage host."""

    resources: StorageResources  # listed on the host, before the DB was read
    ledger: list[LedgerRow]  # this host's rows of kind share and share_snapshot
    shares: dict[str, ShareRow]  # rows of the ids named, of snapshots' shares, placed here
    snapshots: dict[str, SnapshotRow]  # rows of the ids named, and of the shares here
    running: frozenset[str]  # share ids whose workflow share-<id> runs
    now: datetime
    grace_s: float
    # live shares here with access rules in flight: share id -> the newest rule change
    rules_in_flight: dict[str, datetime] = field(default_factory=dict)
    access_running: frozenset[str] = frozenset()  # share-<id>-access runs


@dataclass
class Judgement:
    remove: list[StoredOrphan] = field(default_factory=list)
    forget: list[LedgerEntry] = field(default_factory=list)
    reported: list[str] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)
    asked: set[str] = field(default_factory=set)  # shares whose workflow decided the above
    resync: list[ShareResync] = field(default_factory=list)
    asked_access: set[str] = field(default_factory=set)  # ... whose access sync would

    def plan(self, host: str) -> StoragePlan:
        return StoragePlan(host, self.remove, self.forget, self.reported, self.deferred,
                           self.resync)


def named_ids(facts: StorageFacts, kind: str) -> set[str]:
    """Every share (or snapshot) the listing or the ledger names, and the rows placed
    on this host."""
    res, host = facts.resources, facts.resources.host
    ledger = {r.key for r in facts.ledger if r.kind == kind}
    if kind == SNAPSHOT:
        return ledger | {s.id for s in res.snapshots} | set(facts.snapshots)
    return (ledger | {s.id for s in res.shares} | {e.share_id for e in res.exports}
            | {s.id for s in facts.shares.values() if s.host == host})


def age_s(facts: StorageFacts, kind: str, item_id: str) -> float | None:
    """Seconds since the newest sign of life of a share or snapshot on this host; None
    if nothing carries a time."""
    res = facts.resources
    ages = [(facts.now - r.created_at).total_seconds()
            for r in facts.ledger if (r.kind, r.key) == (kind, item_id)]
    ages += [s.age_s for s in (res.shares if kind == SHARE else res.snapshots)
             if s.id == item_id]
    if kind == SHARE:
        ages += [e.age_s for e in res.exports if e.share_id == item_id]
    return min(ages) if ages else None


def classify(facts: StorageFacts) -> Judgement:
    out = Judgement()
    for kind in (SNAPSHOT, SHARE):  # a share's snapshots go before the share
        for item_id in sorted(named_ids(facts, kind)):
            _judge(facts, kind, item_id, out)
    _rules_in_flight(facts, out)
    return out


def _rules_in_flight(facts: StorageFacts, out: Judgement) -> None:
    """Access rules move only while SyncShareAccess runs; with none running and no
    change for the grace period, the signal that should have started it was lost (the
    API died after committing the rule) or its run was ended: signal it again."""
    for share_id, changed in sorted(facts.rules_in_flight.items()):
        row = facts.shares.get(share_id)
        still = (facts.now - changed).total_seconds()
        if (row is None or row.host != facts.resources.host
                or row.status != ShareStatus.AVAILABLE or still < facts.grace_s):
            continue
        out.asked_access.add(share_id)
        if share_id in facts.access_running:
            continue
        out.resync.append(ShareResync(share_id, (
            f"share {share_id}: its access rules have been in flight for {still:.0f}s with "
            "no access sync running: signalled it again")))


def _judge(facts: StorageFacts, kind: str, item_id: str, out: Judgement) -> None:
    res, host = facts.resources, facts.resources.host
    name = f"{NAMES[kind]} {item_id}"
    subvolume = {s.id: s for s in (res.shares if kind == SHARE else res.snapshots)
                 }.get(item_id)
    exported = kind == SHARE and item_id in {e.share_id for e in res.exports}
    here = [what for what, present in (("subvolume", subvolume is not None),
                                       ("export", exported)) if present]
    row: ShareRow | SnapshotRow | None
    owner: str | None  # the share whose workflow would be working on it
    if kind == SHARE:
        row, owner = facts.shares.get(item_id), item_id
    else:
        row = facts.snapshots.get(item_id)
        owner = row.share_id if row else subvolume.share_id if subvolume else None
    if row is not None:  # live: never touched
        if owner in facts.running:
            return
        why = _disagreement(facts, kind, row, here)
        if why:
            out.reported.append(f"{name} {why}")
            out.asked.add(owner or item_id)  # a live row always names its share
        return
    if owner is not None:
        out.asked.add(owner)
    entries = [LedgerEntry(host, r.kind, r.key) for r in facts.ledger
               if (r.kind, r.key) == (kind, item_id)]
    if owner in facts.running:
        out.deferred.append(f"{name} is unknown to the database, but an operation runs "
                            f"on share {owner}")
        return
    age = age_s(facts, kind, item_id)
    if age is not None and age < facts.grace_s:
        out.deferred.append(f"{name} is unknown to the database; its last sign of life on "
                            f"{host} is {age:.0f}s old (grace {facts.grace_s:.0f}s)")
        return
    if here:
        old = "age unknown" if age is None else f"last sign of life {age:.0f}s ago"
        out.remove.append(StoredOrphan(
            kind, item_id, owner, len(here), entries,
            why=f"{name} is unknown to the database ({old}): removing its "
                f"{' and '.join(here)} on {host}"))
    else:
        out.forget += entries


def _disagreement(facts: StorageFacts, kind: str, row: ShareRow | SnapshotRow,
                  here: list[str]) -> str | None:
    """Why a live share or snapshot is reported, or None: all is as its row says."""
    host = facts.resources.host
    if isinstance(row, ShareRow):
        placed = row.host
    else:
        share = facts.shares.get(row.share_id)
        placed = share.host if share else None
    if placed != host:
        return (f"lives on {placed or 'no host'} by its rows, but {host} has its "
                f"{' and '.join(here)}") if here else None
    transitional = TRANSITIONAL if kind == SHARE else SNAPSHOT_TRANSITIONAL
    still = (facts.now - row.updated_at).total_seconds()
    if row.status in transitional and still >= facts.grace_s:
        return (f"has been {row.status} for {still:.0f}s with no operation running "
                f"(grace {facts.grace_s:.0f}s): its operation died; reset_status or "
                "force_delete it")
    wanted = ["subvolume", "export"] if kind == SHARE else ["subvolume"]
    missing = [w for w in wanted if w not in here]
    if row.status == ShareStatus.AVAILABLE and missing:
        return (f"(available) is on {host} by its rows, but {host} has no "
                f"{' or '.join(missing)} of it")
    return None
