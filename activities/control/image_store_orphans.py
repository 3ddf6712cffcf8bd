"""The image store's part of the ledger reconciler, pure (DESIGN decision 9): given
the store's files and the image rows they name, say which files to remove, which
images to move out of a state nobody will move them out of, and what to report.

The store holds `<id>` (an image's data), `<id>.part` (an upload or import in
flight) and `staging/<id>` (a snapshot a host copied, waiting for its import). The
API writes these (api/routers/image_files.py) and a dead API process leaves them
behind, with the image stuck in saving; Glance has the same hole and its operators
mend it by hand. The rules:

- An image made by a snapshot or backup (image_type snapshot|backup, instance_uuid)
  belongs to the operation on `instance-<uuid>` while it is queued or saving. While
  that workflow runs it is left alone; once nothing runs it and its newest sign of
  life is older than the grace, it goes to error with the reason (never stuck, never
  a silent delete: issue 4) and its part and staged files are removed.
- Any other image in saving whose upload has shown no sign of life (its row's last
  change, its part file's last write) for longer than the grace was interrupted: it
  goes back to queued, as the API does when a client goes away mid-upload, and its
  part file is removed. The owner can upload again.
- A file whose image does not need it (no row, or the row is not in a state that
  uses that file) and older than the grace is removed: `<id>` unless the image is
  active or saving or an active image's location names it, `<id>.part` unless
  saving, `staging/<id>` unless queued or saving.
- An active image whose location is not a file is reported: only its owner can tell.
- Younger than the grace, or owned by a running operation: deferred.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

SNAPSHOT_TYPES = frozenset({"snapshot", "backup"})
# the states of an image in which each kind of file is in use
USES = {"data": frozenset({"active", "saving"}), "part": frozenset({"saving"}),
        "staged": frozenset({"queued", "saving"})}


@dataclass(frozen=True)
class StoreFile:
    image_id: str
    kind: str  # data | part | staged
    age_s: float  # since it was last written


@dataclass(frozen=True)
class ImageRow:
    id: str
    status: str
    updated_at: datetime  # timezone-aware
    image_type: str | None = None
    instance_uuid: str | None = None
    has_data: bool = False  # its location is a file (an active image's data may be
    # another image's file: images made from the same data share it)

    @property
    def owner_workflow_instance(self) -> str | None:
        """The instance whose operation makes this image, if a snapshot or backup does."""
        return self.instance_uuid if self.image_type in SNAPSHOT_TYPES else None


@dataclass(frozen=True)
class StoreFacts:
    files: list[StoreFile]  # listed before the rows were read
    images: dict[str, ImageRow]  # the rows the files name, and every queued/saving/active one
    running: frozenset[str]  # instances whose workflow instance-<id> runs
    now: datetime
    grace_s: float
    referenced: frozenset[str] = frozenset()  # data files named by an active row's location


@dataclass
class StorePlan:
    remove: list[StoreFile] = field(default_factory=list)
    requeue: dict[str, datetime] = field(default_factory=dict)  # id -> updated_at seen
    fail: dict[str, tuple[datetime, str]] = field(default_factory=dict)  # id -> (seen, why)
    reported: list[str] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)
    why: dict[StoreFile, str] = field(default_factory=dict)


def owners_to_ask(facts: StoreFacts) -> set[str]:
    """The instances whose running operation would change the judgement."""
    return {row.owner_workflow_instance for row in facts.images.values()
            if row.status in ("queued", "saving") and row.owner_workflow_instance}


def _age(facts: StoreFacts, row: ImageRow) -> float:
    """Seconds since the newest sign of life of an image: its row, its files."""
    ages = [(facts.now - row.updated_at).total_seconds()]
    ages += [f.age_s for f in facts.files if f.image_id == row.id]
    return max(0.0, min(ages))


def judge(facts: StoreFacts) -> StorePlan:
    plan = StorePlan()
    settled: set[str] = set()  # images whose files the state change below accounts for
    for row in sorted(facts.images.values(), key=lambda r: r.id):
        owner = row.owner_workflow_instance
        if row.status == "active":
            if not row.has_data:
                plan.reported.append(f"image {row.id} is active, but its data is not in "
                                     "the image store")
            continue
        if row.status not in ("queued", "saving") or (row.status == "queued" and not owner):
            continue  # a queued upload image waits for its owner, as long as it likes
        age = _age(facts, row)
        if owner and owner in facts.running:
            plan.deferred.append(f"image {row.id} is {row.status}: the operation on "
                                 f"instance {owner} makes it")
            settled.add(row.id)
            continue
        if age < facts.grace_s:
            plan.deferred.append(f"image {row.id} is {row.status}; its last sign of life is "
                                 f"{age:.0f}s old (grace {facts.grace_s:.0f}s)")
            settled.add(row.id)
            continue
        if owner:
            plan.fail[row.id] = (row.updated_at, (
                f"the {row.image_type} of instance {owner} ended without making this "
                f"image active (it was {row.status}; found by the reconciler)"))
        else:
            plan.requeue[row.id] = row.updated_at
    for f in sorted(facts.files, key=lambda f: (f.image_id, f.kind)):
        found = facts.images.get(f.image_id)
        changing = f.image_id in plan.fail or f.image_id in plan.requeue
        if f.image_id in settled or (found is not None and not changing
                                     and found.status in USES[f.kind]) or (
                f.kind == "data" and f.image_id in facts.referenced):
            continue
        if f.age_s < facts.grace_s:  # (a changing image's files are all older)
            plan.deferred.append(f"{f.kind} file of image {f.image_id} is {f.age_s:.0f}s old "
                                 f"(grace {facts.grace_s:.0f}s)")
            continue
        # an image going to error or back to queued uses none of its files any more
        state = "unknown to the database" if found is None else found.status
        plan.remove.append(f)
        plan.why[f] = f"removing the {f.kind} file of image {f.image_id} ({state})"
    return plan
