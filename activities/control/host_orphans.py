"""The ledger reconciler's judgement, pure (DESIGN decision 9): given one host's
ledger rows, claims, the instance rows they name, what the host really has (vmflow's
domains and instance dirs) and which instances have an operation running, say what
to remove, what to forget, what to report and what to leave for a later run.

The rules, per instance id that any of those name:

- **moving**: a claim whose consumer is a migration not ended (resize, cold
  migration: the source's claim), and a live instance's copy on the other host of
  such a move: left to the move (confirm, revert or delete remove them).
- **live** (a row, not `deleted`): never touched. On its own host without a domain
  (and in a state that has one), or with a domain or dir on another host than its
  row's: reported. Nothing is reported while an operation runs on it.
- **gone** (no row, or `deleted`), an operation runs on it (`instance-<id>`):
  deferred; the operation owns its resources.
- **gone**, younger than the grace period: deferred. Its age is the time since its
  newest sign of life: its ledger rows and claim were made, its instance dir last
  changed, its row was deleted. A domain with none of these (no dir, no row, no
  ledger entry) cannot be a launch in progress, whose dir comes first: it counts as old.
- **gone**, old, with a domain, a dir or a claim: removed, then its ledger rows
  forgotten.
- **gone**, old, with only ledger rows: the rows are forgotten.

Image cache entries are shared between instances and belong to none: not judged here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from vmflow.contracts.instances import LedgerEntry
from vmflow.contracts.reconcile import HostResources, OrphanRemoval, ReconcilePlan

# states in which an instance has no domain on its host
NO_DOMAIN_STATES = frozenset({"deleted", "shelved_offloaded"})


@dataclass(frozen=True)
class LedgerRow:
    kind: str  # disk | domain | claim (cache rows are not judged)
    key: str
    instance_id: str
    created_at: datetime  # timezone-aware


@dataclass(frozen=True)
class InstanceRow:
    id: str
    vm_state: str
    host: str | None
    deleted_at: datetime | None = None


@dataclass(frozen=True)
class HostFacts:
    """Everything the judgement reads about one host."""

    resources: HostResources  # listed on the host, before the DB was read
    ledger: list[LedgerRow]  # this host's rows
    claims: dict[str, datetime]  # allocations on this host: instance id -> created_at
    instances: dict[str, InstanceRow]  # rows of the ids above, and the live ones placed here
    running: frozenset[str]  # instances whose workflow instance-<id> is running
    now: datetime
    grace_s: float
    # moves not ended that involve this host: consumer id (the migration's uuid, which
    # holds the source's claim meanwhile) -> instance id
    moving: dict[str, str] = field(default_factory=dict)


@dataclass
class Judgement:
    remove: list[OrphanRemoval] = field(default_factory=list)
    forget: list[LedgerEntry] = field(default_factory=list)
    reported: dict[str, str] = field(default_factory=dict)  # instance id -> why
    deferred: dict[str, str] = field(default_factory=dict)

    def ids(self) -> set[str]:
        """The instances about which something would be done or said."""
        return ({r.instance_id for r in self.remove}
                | {e.instance_id for e in self.forget if e.instance_id}
                | set(self.reported) | set(self.deferred))

    def plan(self, host: str) -> ReconcilePlan:
        return ReconcilePlan(host, self.remove, self.forget, list(self.reported.values()),
                             list(self.deferred.values()))


def instance_ids(facts: HostFacts) -> set[str]:
    """Every instance the host's listing, ledger or claims name, and the live instances
    whose row places them on this host."""
    host = facts.resources.host
    return ({d.instance_id for d in facts.resources.domains}
            | {d.instance_id for d in facts.resources.dirs}
            | {r.instance_id for r in facts.ledger} | set(facts.claims)
            | {i.id for i in facts.instances.values()
               if i.host == host and i.vm_state != "deleted"})


def age_s(facts: HostFacts, instance_id: str) -> float | None:
    """Seconds since the newest sign of life of an instance on this host; None if
    nothing carries a time."""
    ages = [(facts.now - r.created_at).total_seconds()
            for r in facts.ledger if r.instance_id == instance_id]
    if instance_id in facts.claims:
        ages.append((facts.now - facts.claims[instance_id]).total_seconds())
    ages += [d.age_s for d in facts.resources.dirs if d.instance_id == instance_id]
    inst = facts.instances.get(instance_id)
    if inst is not None and inst.deleted_at is not None:
        ages.append((facts.now - inst.deleted_at).total_seconds())
    return min(ages) if ages else None


def classify(facts: HostFacts) -> Judgement:
    host = facts.resources.host
    domains = {d.instance_id: d for d in facts.resources.domains}
    dirs = {d.instance_id for d in facts.resources.dirs}
    out = Judgement()
    for iid in sorted(instance_ids(facts)):
        if iid in facts.moving:  # a migration's claim: the move owns it until it ends
            continue
        inst = facts.instances.get(iid)
        busy = iid in facts.running
        here = [what for what, present in (("domain", iid in domains), ("dir", iid in dirs))
                if present]
        if inst is not None and inst.vm_state != "deleted":  # live: never touched
            if busy:
                continue
            if inst.host == host and iid not in domains and inst.vm_state not in (
                    NO_DOMAIN_STATES):
                out.reported[iid] = (f"instance {iid} ({inst.vm_state}) is on {host} by its "
                                     f"row, but no domain of it is defined there")
            elif inst.host != host and here and iid not in facts.moving.values():
                out.reported[iid] = (f"instance {iid} lives on {inst.host or 'no host'}, but "
                                     f"{host} has its {' and '.join(here)}")
            continue
        gone = "unknown to the database" if inst is None else "deleted"
        entries = [LedgerEntry(host, r.kind, r.key, r.instance_id)
                   for r in facts.ledger if r.instance_id == iid]
        claim = iid in facts.claims
        if busy:
            out.deferred[iid] = f"instance {iid} is {gone}, but an operation runs on it"
            continue
        age = age_s(facts, iid)
        if age is not None and age < facts.grace_s:
            out.deferred[iid] = (f"instance {iid} is {gone}; its last sign of life on {host} "
                                 f"is {age:.0f}s old (grace {facts.grace_s:.0f}s)")
            continue
        if here or claim:
            what = [("running domain" if domains[iid].active else w) if w == "domain" else w
                    for w in here] + (["claim"] if claim else [])
            old = "age unknown" if age is None else f"last sign of life {age:.0f}s ago"
            out.remove.append(OrphanRemoval(
                iid, domain=iid in domains, dir=iid in dirs, claim=claim, entries=entries,
                why=f"instance {iid} is {gone} ({old}): removing its {', '.join(what)} "
                    f"on {host}"))
        else:
            out.forget += entries
    return out
