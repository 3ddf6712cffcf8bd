"""The reconciler's judgement of one host's floating-IP NAT, pure (issue 12, item 8):
given what the host NATs and which floating addresses it holds on its external link
(host.list_floating_ips) and the floating-IP rows, say what to remove, what to make
again and what to leave. SyncFloatingIp (workflows/network/floating_ip_sync.py) is
what normally applies them; this catches a host that missed a change (down, or a
worker killed between steps).

A floating IP belongs on the host running the guest behind its port
(activities/control/floating_ips.py target: associated, the port's instance placed and
not deleted), NATed to its fixed IP on its network's VXLAN id. A row is *settled*
when it has not changed for the grace period, no operation runs on the port's
instance and no SyncFloatingIp runs for it; only settled rows are acted on.

Per floating address the host NATs or holds:
- no floating-IP row: removed (the row is made before any host NATs it, so no row
  means released);
- a row that is not settled: deferred;
- a row that belongs on no host (not associated, or its guest is not placed) or on
  another host: removed;
- a row that belongs here, NATed to another fixed IP or VXLAN id, or with its NAT or
  its address missing: made again (ensure_floating_ip replaces the old mapping).
Per settled row that belongs here and the host has nothing of: made again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from vmflow.contracts.networks import FloatingIpRef, FloatingIpSpec, HostFloatingIps
from vmflow.contracts.security_groups import FloatingIpRemoval, FloatingIpRepair


@dataclass(frozen=True)
class FloatingRow:
    id: str
    address: str
    host: str | None  # where its NAT belongs; None: nowhere
    spec: FloatingIpSpec | None  # the NAT it needs there
    changed_at: datetime  # timezone-aware
    busy: bool = False  # an operation runs on its guest, or its SyncFloatingIp runs


@dataclass(frozen=True)
class FloatingFacts:
    listing: HostFloatingIps
    rows: dict[str, FloatingRow]  # by address: those the listing names, those of guests here
    now: datetime
    grace_s: float


@dataclass
class FloatingPlan:
    remove: list[FloatingIpRemoval]
    ensure: list[FloatingIpRepair]
    deferred: list[str]


def _settled(facts: FloatingFacts, row: FloatingRow) -> bool:
    return not row.busy and (facts.now - row.changed_at).total_seconds() >= facts.grace_s


def judge(facts: FloatingFacts) -> FloatingPlan:
    host = facts.listing.host
    plan = FloatingPlan([], [], [])
    nat = {s.floating_ip: s for s in facts.listing.nat}
    held = set(facts.listing.addresses)
    for address in sorted(set(nat) | held):
        what = f"floating IP {address}"
        row = facts.rows.get(address)
        if row is None:
            plan.remove.append(FloatingIpRemoval(
                FloatingIpRef(address), f"removed the NAT of {what}: no floating IP row"))
            continue
        if not _settled(facts, row):
            plan.deferred.append(f"{what}: NATed here, but it changed lately")
            continue
        if row.host != host or row.spec is None:
            where = f"belongs on host {row.host}" if row.host else "belongs on no host"
            plan.remove.append(FloatingIpRemoval(
                FloatingIpRef(address), f"removed the NAT of {what}: it {where}"))
            continue
        have = nat.get(address)
        if have is None:
            why = "its NAT was missing"
        elif have != row.spec:
            why = f"NATed to {have.fixed_ip} (vni {have.vni}), not {row.spec.fixed_ip} " \
                  f"(vni {row.spec.vni})"
        elif address not in held:
            why = "its address was missing"
        else:
            continue
        plan.ensure.append(FloatingIpRepair(row.spec, f"made the NAT of {what} again: {why}"))
    for row in sorted(facts.rows.values(), key=lambda r: r.address):
        if row.host != host or row.spec is None or row.address in nat or row.address in held:
            continue
        if not _settled(facts, row):
            plan.deferred.append(f"floating IP {row.address}: not NATed here, but it "
                                 "changed lately")
            continue
        plan.ensure.append(FloatingIpRepair(
            row.spec, f"made the NAT of floating IP {row.address} again: missing on the host"))
    return plan
