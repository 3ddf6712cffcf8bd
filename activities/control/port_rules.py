"""A port's security-group rules as its host enforces them, and the ports a group's
change touches (issue 12, item 3).

A port's filter carries the rules of every group it is in. A rule naming a remote
group becomes one rule per member port's fixed IP of the rule's ethertype, as a
single-address prefix (/32), so a filter never refers to anything but addresses; a
remote group with no members adds nothing. A rule with a protocol the hosts' filters
cannot express (a protocol number other than tcp, udp, icmp) adds nothing either: a
filter allows less, never more.

A change to group G touches G's members (their own rules) and the members of every
group with a rule whose remote group is G (their expansion of G). A port is on the
host it is bound to (binding:host_id), else on its device's (the instance's host),
else on none: an unbound port has no filter to change.

SyncSecurityGroup's plan step is here too (SecurityGroupSyncActivities).
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable, Iterable
from typing import Any

from sqlmodel import Session, col, select
from temporalio import activity

from activities.control.base import DbActivities
from vmflow.contracts.activity_names import ControlActs
from vmflow.contracts.networks import PortSpec, SecurityGroupRule
from vmflow.contracts.security_groups import PortOnHost, SecurityGroupPlan, SecurityGroupSync
from vmflow.models import Instance
from vmflow.network_models import IpAllocation, Port, PortSecurityGroup
from vmflow.network_models import SecurityGroupRule as RuleRow

FILTER_PROTOCOLS = frozenset({"tcp", "udp", "icmp", None})


def _version(ethertype: str) -> int:
    return 6 if ethertype == "IPv6" else 4


def expand(rules: Iterable[RuleRow], member_ips: dict[str, list[str]]) -> list[SecurityGroupRule]:
    """The rules as the host's filter takes them: remote groups as their members'
    addresses (`member_ips`: group id -> fixed IPs of its member ports), duplicates
    once, in the order first met."""
    out: dict[SecurityGroupRule, None] = {}
    for r in rules:
        if r.protocol not in FILTER_PROTOCOLS:
            continue
        base = SecurityGroupRule(r.direction, r.ethertype, r.protocol, r.port_range_min,
                                 r.port_range_max, r.remote_ip_prefix)
        if r.remote_group_id is None:
            out[base] = None
            continue
        for ip in member_ips.get(r.remote_group_id, []):
            addr = ipaddress.ip_address(ip)
            if addr.version == _version(r.ethertype):
                out[SecurityGroupRule(base.direction, base.ethertype, base.protocol,
                                      base.port_range_min, base.port_range_max,
                                      f"{addr}/{addr.max_prefixlen}")] = None
    return list(out)


def _ips(session: Session, port_ids: Iterable[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for a in session.exec(select(IpAllocation).where(
            col(IpAllocation.port_id).in_(sorted(set(port_ids))))):
        out.setdefault(a.port_id, []).append(a.ip_address)
    return {p: sorted(ips, key=ipaddress.ip_address) for p, ips in out.items()}


def _members(session: Session, group_ids: Iterable[str]) -> dict[str, list[str]]:
    """group id -> its member port ids."""
    out: dict[str, list[str]] = {}
    for m in session.exec(select(PortSecurityGroup).where(
            col(PortSecurityGroup.security_group_id).in_(sorted(set(group_ids))))):
        out.setdefault(m.security_group_id, []).append(m.port_id)
    return out


def port_spec(session: Session, port: Port) -> PortSpec | None:
    """The port as its host ensures it (ensure_port), rules expanded; None for a port
    without an IPv4 address (there is nothing a host could reserve or filter)."""
    fixed = [ip for ip in _ips(session, [port.id]).get(port.id, [])
             if ipaddress.ip_address(ip).version == 4]
    if not fixed:
        return None
    groups = list(session.exec(select(PortSecurityGroup.security_group_id).where(
        PortSecurityGroup.port_id == port.id)))
    rules = list(session.exec(select(RuleRow).where(
        col(RuleRow.security_group_id).in_(groups))
        .order_by(col(RuleRow.created_at), col(RuleRow.id)))) if groups else []
    remote = {r.remote_group_id for r in rules if r.remote_group_id}
    members = _members(session, remote)
    ips = _ips(session, [p for ps in members.values() for p in ps])
    member_ips = {g: [ip for p in ps for ip in ips.get(p, [])] for g, ps in members.items()}
    return PortSpec(port.id, port.network_id, port.mac_address, fixed[0],
                    expand(rules, member_ips))


def port_host(session: Session, port: Port) -> str:
    """The host the port is on: its binding, else its instance's host, else ""."""
    if port.binding_host_id:
        return port.binding_host_id
    if port.device_id:
        inst = session.get(Instance, port.device_id)
        if inst is not None and inst.host:
            return inst.host
    return ""


def affected_ports(session: Session, group_id: str) -> list[Port]:
    """The members of the group and of every group with a rule whose remote group it is."""
    referring = set(session.exec(select(RuleRow.security_group_id).where(
        RuleRow.remote_group_id == group_id)))
    port_ids = {p for ps in _members(session, {group_id, *referring}).values() for p in ps}
    return list(session.exec(select(Port).where(col(Port.id).in_(sorted(port_ids)))
                             .order_by(col(Port.id))))


def group_plan(session: Session, group_id: str) -> SecurityGroupPlan:
    targets, unbound = [], []
    for port in affected_ports(session, group_id):
        host = port_host(session, port)
        spec = port_spec(session, port) if host else None
        if spec is None:
            unbound.append(port.id)
        else:
            targets.append(PortOnHost(host, spec))
    return SecurityGroupPlan(targets, unbound)


class SecurityGroupSyncActivities(DbActivities):
    @activity.defn(name=ControlActs.SECURITY_GROUP_PLAN)
    async def security_group_plan(self, req: SecurityGroupSync) -> SecurityGroupPlan:
        """Every port the group's change touches, with its rules as they are now."""
        return await asyncio.to_thread(self._plan, req.security_group_id)

    def _plan(self, group_id: str) -> SecurityGroupPlan:
        with self.session() as s:
            return group_plan(s, group_id)

    def all(self) -> list[Callable[..., Any]]:
        return [self.security_group_plan]
