"""The reconciler's judgement for one host's guest networks, pure (issue 12, item 8):
given what the host has (bridges, vxlans, DHCP servers, state dirs with their port
reservations, port nwfilters: host.list_networks) and the network and port rows,
say what to remove, what to make again, what to report and what to leave.

A port is *here* when its row puts it on this host (activities/control/port_rules.py
port_host). A port is *settled* when its row has not changed for the grace period
and no operation runs on its instance; only settled ports are acted on, so a launch,
delete or migration that is plugging or unplugging one right now is left alone.

Networks, per network the host lists:
- no network row (by its id, or by its VXLAN id when the host lost the id): removed
  (rows are made before anything reaches a host, so no row means deleted), unless the
  host wrote its state dir within the grace period (one made outside vmflow's rows,
  by a test or an operator, is left that long);
- a row with another VXLAN id than the host's: reported, never touched;
- a row, a port here: made again (ensure_network) when a part is missing (bridge,
  vxlan, a DHCP server the subnet wants), unless a port of it is unsettled;
- a row, no port here: removed once the network row, and every port row of the
  network, is older than the grace period (a port may be on its way here).
Networks with a port here that the host does not list at all: made again, unless a
port of it is unsettled.

Ports, per settled port here: ensured (ensure_port) when its network is made again,
when its nwfilter is missing, or when its DHCP reservation is missing; without an
IPv4 address it is reported (no spec a host could take).
Per port the host has a filter or a reservation of: removed (remove_port) when no row
names it, when it is in another network than the one holding the reservation, or when
it is settled and on another host (not here); unsettled ones are deferred. A
reservation of a port here in another network is reported (removing it would take
the port's filter too).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from vmflow.contracts.networks import (
    HostNetwork,
    HostNetworks,
    NetworkRef,
    NetworkSpec,
    PortRef,
    PortSpec,
)
from vmflow.contracts.security_groups import (
    NetworkPlan,
    NetworkRemoval,
    NetworkRepair,
    PortRemoval,
    PortRepair,
)

NO_NETWORK = str(uuid.UUID(int=0))  # a port's filter alone: no state dir to edit
NO_MAC = "00:00:00:00:00:00"  # a gone port's MAC is unknown: its lease just expires


@dataclass(frozen=True)
class NetworkRow:
    id: str
    vni: int
    changed_at: datetime  # the newest of the network's and its ports' rows (timezone-aware)
    spec: NetworkSpec | None  # what ensure_network takes; None: no subnet to make it with


@dataclass(frozen=True)
class PortRow:
    id: str
    network_id: str
    mac: str
    host: str  # where its row puts it; "" for none
    changed_at: datetime  # timezone-aware
    spec: PortSpec | None  # what ensure_port takes; None: no IPv4 address
    busy: bool = False  # an operation runs on its instance


@dataclass(frozen=True)
class NetworkFacts:
    listing: HostNetworks
    networks: dict[str, NetworkRow]  # those the listing names, and those of ports here
    ports: dict[str, PortRow]  # those here, and those the listing names
    now: datetime
    grace_s: float


def _young(facts: NetworkFacts, t: datetime) -> bool:
    return (facts.now - t).total_seconds() < facts.grace_s


def _settled(facts: NetworkFacts, p: PortRow) -> bool:
    return not p.busy and not _young(facts, p.changed_at)


def _row_of(facts: NetworkFacts, n: HostNetwork) -> NetworkRow | None:
    if n.network_id is not None:
        return facts.networks.get(n.network_id)
    return next((r for r in facts.networks.values() if r.vni == n.vni), None)


def _complete(n: HostNetwork, row: NetworkRow) -> bool:
    dhcp = row.spec is None or row.spec.dhcp
    return n.network_id is not None and n.bridge and n.vxlan and (n.dhcp_running or not dhcp)


class _Judge:
    def __init__(self, facts: NetworkFacts):
        self.f = facts
        self.host = facts.listing.host
        self.plan = NetworkPlan(self.host)
        self.here = [p for p in facts.ports.values() if p.host == self.host]
        self.remade: set[str] = set()  # networks ensured again this run
        self.kept: set[str] = set()  # networks left on the host
        self.seen: set[str] = set()  # rows of the networks the host lists

    def run(self) -> NetworkPlan:
        for n in self.f.listing.networks:
            self._network(n)
        for net_id in sorted({p.network_id for p in self.here} - self.seen):
            row = self.f.networks.get(net_id)
            if row is not None:
                self._remake(row, "missing on the host")
        self._ports_here()
        self._stray_ports()
        return self.plan

    def _network(self, n: HostNetwork) -> None:
        row = _row_of(self.f, n)
        what = f"network {n.network_id or '?'} (vni {n.vni})"
        if row is None:
            if n.age_s is not None and n.age_s < self.f.grace_s:
                self.plan.deferred.append(f"{what}: no network row, but made lately")
                return
            self.plan.remove_networks.append(NetworkRemoval(
                NetworkRef(n.network_id or NO_NETWORK, n.vni),
                f"removed {what}: no network row"))
            return
        self.seen.add(row.id)
        if row.vni != n.vni:
            self.plan.reported.append(f"{what}: the row says vni {row.vni}; left alone")
            self.kept.add(row.id)
            return
        self.kept.add(row.id)
        if any(p.network_id == row.id for p in self.here):
            if not _complete(n, row):
                self._remake(row, "partial on the host (bridge, vxlan or DHCP missing)")
            return
        if _young(self.f, row.changed_at) or any(
                p.busy for p in self.f.ports.values() if p.network_id == row.id):
            self.plan.deferred.append(f"{what}: no port here, but it changed lately")
            return
        self.kept.discard(row.id)
        self.plan.remove_networks.append(NetworkRemoval(
            NetworkRef(row.id, n.vni), f"removed {what}: no port of it on this host"))

    def _remake(self, row: NetworkRow, why: str) -> None:
        what = f"network {row.id} (vni {row.vni})"
        unsettled = [p.id for p in self.here if p.network_id == row.id
                     and not _settled(self.f, p)]
        if unsettled:
            self.plan.deferred.append(f"{what}: {why}, but port(s) {', '.join(unsettled)} "
                                      "are being changed")
            return
        if row.spec is None:
            self.plan.reported.append(f"{what}: {why}, and it has no subnet to make it with")
            return
        self.remade.add(row.id)
        self.kept.add(row.id)
        self.plan.ensure_networks.append(NetworkRepair(row.spec, f"made {what} again: {why}"))

    def _ports_here(self) -> None:
        filters = set(self.f.listing.port_filters)
        reserved = {n.network_id: set(n.port_ids) for n in self.f.listing.networks}
        for p in sorted(self.here, key=lambda p: p.id):
            if not _settled(self.f, p):
                continue
            if p.network_id in self.remade:
                why = "its network was made again"
            elif p.network_id not in reserved:
                continue  # its network is deferred or reported: nothing to put it in
            elif p.id not in filters:
                why = "its filter was missing"
            elif p.id not in reserved[p.network_id]:
                why = "its DHCP reservation was missing"
            else:
                continue
            if p.spec is None:
                self.plan.reported.append(f"port {p.id}: {why}, but it has no IPv4 address")
            else:
                self.plan.ensure_ports.append(PortRepair(p.spec, f"ensured port {p.id}: {why}"))

    def _stray_ports(self) -> None:
        """Filters and reservations of ports that are not here (any more)."""
        holders: dict[str, list[str]] = {}
        for n in self.f.listing.networks:
            for pid in n.port_ids:
                holders.setdefault(pid, []).append(n.network_id or NO_NETWORK)
        for pid in sorted(set(self.f.listing.port_filters) | set(holders)):
            p = self.f.ports.get(pid)
            nets = holders.get(pid, [])
            if p is None:
                why = "no port row"
            elif p.host != self.host:
                if not _settled(self.f, p):
                    self.plan.deferred.append(f"port {pid}: on host {p.host or 'none'} "
                                              "now, but it changed lately")
                    continue
                why = f"the port is on host {p.host or 'none'}"
            else:
                if [x for x in nets if x != p.network_id]:  # removing would take its filter
                    self.plan.reported.append(f"port {pid}: a DHCP reservation outside its "
                                              f"network {p.network_id}; left alone")
                continue
            self._remove_port(pid, p, nets, why)

    def _remove_port(self, pid: str, p: PortRow | None, nets: list[str], why: str) -> None:
        """One remove_port per reservation in a network that stays (the filter goes
        with the first); a network being removed takes its reservations along."""
        mac = p.mac if p is not None else NO_MAC
        live = [n for n in nets if n in self.kept] or [NO_NETWORK]
        for net in live:
            self.plan.remove_ports.append(PortRemoval(PortRef(pid, net, mac),
                                                      f"removed port {pid}: {why}"))


def judge(facts: NetworkFacts) -> NetworkPlan:
    return _Judge(facts).run()
