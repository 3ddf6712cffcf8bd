"""The reconciler's network pass, control side (issue 12, item 8): one host's listing
(host.list_networks) against the network and port rows, judged by
activities/control/network_orphans.py, and its floating-IP NAT (host.list_floating_ips)
against the floating-IP rows, judged by activities/control/floating_orphans.py. Also
how the control side says what a network is on a host (network_spec), which the pass
makes a missing network again with.
Nothing here touches a host: workflows/background/reconcile_ledger.py does, with the
host's own network activities."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, or_, select
from temporalio import activity

from activities.control import floating_orphans, network_orphans
from activities.control.base import ClientActivities
from activities.control.floating_ips import target
from activities.control.ledger import aware
from activities.control.liveness import workflows_running
from activities.control.port_rules import port_host, port_spec
from vmflow.contracts.activity_names import ControlActs
from vmflow.contracts.networks import HostFloatingIps, HostNetworks, NetworkSpec
from vmflow.contracts.security_groups import NetworkPlan, NetworkPlanRequest
from vmflow.models import Host, Instance, now
from vmflow.names import floating_ip_workflow_id, instance_workflow_id
from vmflow.network_models import FloatingIp, Network, Port, Subnet


def _changed(*rows: Network | Port | FloatingIp) -> datetime:
    return max(aware(t) for r in rows for t in (r.created_at, r.updated_at))


def network_spec(session: Session, net: Network, host: str,
                 ports: list[Port] | None = None) -> NetworkSpec | None:
    """The network as `host` has it, its peers the other hosts with a port on it; None
    without a subnet (no gateway, no addresses to hand out)."""
    subnet = session.exec(select(Subnet).where(Subnet.network_id == net.id)).first()
    if subnet is None:
        return None
    if ports is None:
        ports = list(session.exec(select(Port).where(Port.network_id == net.id)))
    others = {port_host(session, p) for p in ports} - {host, ""}
    peers = sorted(h.migration_address for h in session.exec(select(Host).where(
        col(Host.name).in_(sorted(others)))) if h.migration_address)
    return NetworkSpec(net.id, net.segmentation_id, subnet.cidr, subnet.gateway_ip,
                       subnet.enable_dhcp, list(subnet.dns_nameservers), net.mtu, peers)


def _ports_here(session: Session, host: str) -> list[Port]:
    on_host = select(Instance.id).where(Instance.host == host)
    return [p for p in session.exec(select(Port).where(or_(
        Port.binding_host_id == host,
        col(Port.device_id).in_(on_host)))) if port_host(session, p) == host]


def facts(session: Session, listing: HostNetworks, now_: datetime, grace_s: float
          ) -> tuple[network_orphans.NetworkFacts, dict[str, str]]:
    """The judgement's facts (no port busy yet), and port id -> its device id."""
    host = listing.host
    here = _ports_here(session, host)
    named = set(listing.port_filters) | {p for n in listing.networks for p in n.port_ids}
    named -= {p.id for p in here}
    ports = here + list(session.exec(select(Port).where(col(Port.id).in_(sorted(named)))))
    net_ids = {n.network_id for n in listing.networks if n.network_id} | {
        p.network_id for p in here}
    vnis = {n.vni for n in listing.networks if n.network_id is None}
    nets = list(session.exec(select(Network).where(or_(
        col(Network.id).in_(sorted(net_ids)), col(Network.segmentation_id).in_(sorted(vnis))))))
    rows: dict[str, network_orphans.NetworkRow] = {}
    for net in nets:
        members = list(session.exec(select(Port).where(Port.network_id == net.id)))
        rows[net.id] = network_orphans.NetworkRow(
            net.id, net.segmentation_id, _changed(net, *members),
            network_spec(session, net, host, members))
    port_rows: dict[str, network_orphans.PortRow] = {}
    for p in ports:
        on = port_host(session, p)
        port_rows[p.id] = network_orphans.PortRow(
            p.id, p.network_id, p.mac_address, on, _changed(p),
            port_spec(session, p) if on == host else None)
    devices = {p.id: p.device_id for p in ports if p.device_id}
    return network_orphans.NetworkFacts(listing, rows, port_rows, now_, grace_s), devices


def floating_facts(session: Session, listing: HostFloatingIps, now_: datetime, grace_s: float
                   ) -> tuple[floating_orphans.FloatingFacts, dict[str, list[str]]]:
    """The judgement's facts (no row busy yet), and floating address -> the workflows
    (its guest's operation, its SyncFloatingIp) that make it busy while they run."""
    named = {s.floating_ip for s in listing.nat} | set(listing.addresses)
    on_host = select(Instance.id).where(Instance.host == listing.host)
    guests_here = select(Port.id).where(col(Port.device_id).in_(on_host))
    fips = session.exec(select(FloatingIp).where(or_(
        col(FloatingIp.floating_ip_address).in_(sorted(named)),
        col(FloatingIp.port_id).in_(guests_here))).order_by(col(FloatingIp.created_at)))
    rows: dict[str, floating_orphans.FloatingRow] = {}
    busy_if: dict[str, list[str]] = {}
    for fip in fips:
        host, spec = target(session, fip)
        rows[fip.floating_ip_address] = floating_orphans.FloatingRow(
            fip.id, fip.floating_ip_address, host, spec, _changed(fip))
        port = session.get(Port, fip.port_id) if fip.port_id else None
        busy_if[fip.floating_ip_address] = [floating_ip_workflow_id(fip.id)] + (
            [instance_workflow_id(port.device_id)] if port is not None and port.device_id
            else [])
    return floating_orphans.FloatingFacts(listing, rows, now_, grace_s), busy_if


class NetworkReconcileActivities(ClientActivities):
    @activity.defn(name=ControlActs.RECONCILE_NETWORKS)
    async def reconcile_networks(self, req: NetworkPlanRequest) -> NetworkPlan:
        """Judge one host's networks. The listing was taken before the DB is read here.
        A port whose instance has an operation running (instance-<id>) is busy: what
        that operation plugs or unplugs is its own business."""
        grace = self.settings.reconcile_grace if req.grace_s is None else req.grace_s
        first, devices = await asyncio.to_thread(self._facts, req.listing, grace)
        running = await workflows_running(
            self.client, sorted({instance_workflow_id(d) for d in devices.values()}))
        ports = {pid: replace(p, busy=instance_workflow_id(devices.get(pid, "")) in running)
                 for pid, p in first.ports.items()}
        plan = network_orphans.judge(replace(first, ports=ports))
        if req.floating is not None:
            plan = await self._floating(req.floating, grace, plan)
        activity.logger.info(
            "network reconcile of host %s: %d ports and %d networks to remove, %d networks "
            "and %d ports to make again, %d floating IPs to remove and %d to make again, "
            "%d reported, %d deferred", plan.host, len(plan.remove_ports),
            len(plan.remove_networks), len(plan.ensure_networks), len(plan.ensure_ports),
            len(plan.remove_floating_ips), len(plan.ensure_floating_ips), len(plan.reported),
            len(plan.deferred))
        return plan

    async def _floating(self, listing: HostFloatingIps, grace_s: float,
                        plan: NetworkPlan) -> NetworkPlan:
        """The host's floating-IP NAT judged, added to the network plan."""
        first, busy_if = await asyncio.to_thread(self._floating_facts, listing, grace_s)
        running = await workflows_running(
            self.client, sorted({w for ws in busy_if.values() for w in ws}))
        rows = {a: replace(r, busy=any(w in running for w in busy_if[a]))
                for a, r in first.rows.items()}
        fp = floating_orphans.judge(replace(first, rows=rows))
        return replace(plan, remove_floating_ips=fp.remove, ensure_floating_ips=fp.ensure,
                       deferred=plan.deferred + fp.deferred)

    def _facts(self, listing: HostNetworks, grace_s: float
               ) -> tuple[network_orphans.NetworkFacts, dict[str, str]]:
        with self.session() as s:
            return facts(s, listing, aware(now()), grace_s)

    def _floating_facts(self, listing: HostFloatingIps, grace_s: float
                        ) -> tuple[floating_orphans.FloatingFacts, dict[str, list[str]]]:
        with self.session() as s:
            return floating_facts(s, listing, aware(now()), grace_s)

    def all(self) -> list[Callable[..., Any]]:
        return [self.reconcile_networks]
