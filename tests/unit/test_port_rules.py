"""A port's rules as its host enforces them (activities/control/port_rules.py): remote
groups expanded to their members' addresses, the ports a group's change touches and
their hosts; and the network spec the reconciler makes a network again with
(activities/control/network_reconcile.py). On a real SQLite database."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session

from activities.control.network_reconcile import network_spec
from activities.control.port_rules import expand, group_plan, port_host, port_spec
from vmflow import db
from vmflow.contracts.networks import SecurityGroupRule
from vmflow.models import Host, Instance, Project, User
from vmflow.network_models import (
    IpAllocation,
    Network,
    Port,
    PortSecurityGroup,
    SecurityGroup,
    Subnet,
)
from vmflow.network_models import SecurityGroupRule as RuleRow
from vmflow.settings import Settings


def rule(direction: str = "ingress", ethertype: str = "IPv4", protocol: str | None = "tcp",
         lo: int | None = 8080, hi: int | None = 8080, prefix: str | None = None,
         remote: str | None = None, group: str = "g") -> RuleRow:
    return RuleRow(security_group_id=group, project_id="p", direction=direction,
                   ethertype=ethertype, protocol=protocol, port_range_min=lo,
                   port_range_max=hi, remote_ip_prefix=prefix, remote_group_id=remote,
                   signature=f"{direction}{ethertype}{protocol}{lo}{hi}{prefix}{remote}")


def test_a_remote_group_becomes_one_rule_per_member_address() -> None:
    got = expand([rule(remote="web")], {"web": ["10.0.0.5", "10.0.0.6", "fd00::1"]})
    assert [r.remote_ip_prefix for r in got] == ["10.0.0.5/32", "10.0.0.6/32"]
    assert {(r.protocol, r.port_range_min, r.port_range_max) for r in got} == {
        ("tcp", 8080, 8080)}
    v6 = expand([rule(ethertype="IPv6", remote="web")], {"web": ["10.0.0.5", "fd00::1"]})
    assert [r.remote_ip_prefix for r in v6] == ["fd00::1/128"]


def test_a_remote_group_without_members_adds_nothing() -> None:
    assert expand([rule(remote="empty")], {}) == []


def test_prefix_rules_pass_as_they_are_and_duplicates_go() -> None:
    got = expand([rule(prefix="192.0.2.0/24"), rule(direction="egress", protocol=None,
                                                    lo=None, hi=None),
                  rule(remote="a"), rule(remote="b")], {"a": ["10.0.0.5"], "b": ["10.0.0.5"]})
    assert got == [SecurityGroupRule("ingress", "IPv4", "tcp", 8080, 8080, "192.0.2.0/24"),
                   SecurityGroupRule("egress"),
                   SecurityGroupRule("ingress", "IPv4", "tcp", 8080, 8080, "10.0.0.5/32")]


def test_a_protocol_number_a_filter_cannot_express_adds_nothing() -> None:
    assert expand([rule(protocol="47", lo=None, hi=None)], {}) == []
    assert [r.protocol for r in expand([rule(protocol="icmp", lo=8, hi=0)], {})] == ["icmp"]


@pytest.fixture
def session(tmp_path: Path) -> Session:
    s = Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path}/rules.db")
    db.upgrade(s.db_url)
    return Session(db.engine_for(s.db_url), expire_on_commit=False)


def _world(s: Session) -> dict[str, str]:
    """Two groups: `web` (ports a, b) allows 8080 from members of `admin` (port c, on
    no host), and `admin` allows ssh from `web`; port d is in no group."""
    s.add(Project(id="p", name="p"))
    s.add(User(id="u", name="u"))
    for h, addr in (("hv1", "192.168.9.1"), ("hv2", "192.168.9.2")):
        s.add(Host(name=h, vcpus=1, ram_mb=1, disk_gb=1, migration_address=addr))
    s.add(Network(id="n", project_id="p", segmentation_id=4242))
    s.flush()
    subnet = Subnet(network_id="n", project_id="p", cidr="10.0.0.0/24", gateway_ip="10.0.0.1",
                    dns_nameservers=["10.0.0.1"])
    s.add(subnet)
    s.add(Instance(id="i2", name="vm", project_id="p", user_id="u", image_id="x",
                   flavor_id="y", host="hv2"))
    s.add(SecurityGroup(id="web", name="web", project_id="p"))
    s.add(SecurityGroup(id="admin", name="admin", project_id="p"))
    ports = {"a": ("hv1", ""), "b": ("", "i2"), "c": ("", ""), "d": ("hv1", "")}
    for i, (pid, (host, device)) in enumerate(ports.items(), start=1):
        s.add(Port(id=pid, network_id="n", project_id="p", mac_address=f"fa:16:3e:00:00:0{i}",
                   binding_host_id=host, device_id=device))
    s.flush()
    for i, pid in enumerate(ports, start=1):
        s.add(IpAllocation(network_id="n", ip_address=f"10.0.0.{10 + i}", subnet_id=subnet.id,
                           port_id=pid))
    s.add_all([PortSecurityGroup(port_id="a", security_group_id="web"),
               PortSecurityGroup(port_id="b", security_group_id="web"),
               PortSecurityGroup(port_id="c", security_group_id="admin")])
    s.add(rule(remote="admin", group="web"))
    s.add(rule(lo=22, hi=22, remote="web", group="admin"))
    s.commit()
    return {"a": "10.0.0.11", "b": "10.0.0.12", "c": "10.0.0.13"}


def test_a_ports_spec_carries_its_groups_rules_expanded(session: Session) -> None:
    ips = _world(session)
    a = port_spec(session, session.get(Port, "a"))  # type: ignore[arg-type]
    assert a is not None and (a.ip, a.mac, a.network_id) == (ips["a"], "fa:16:3e:00:00:01", "n")
    assert a.security_group_rules == [
        SecurityGroupRule("ingress", "IPv4", "tcp", 8080, 8080, f"{ips['c']}/32")]
    c = port_spec(session, session.get(Port, "c"))  # type: ignore[arg-type]
    assert c is not None and {r.remote_ip_prefix for r in c.security_group_rules} == {
        f"{ips['a']}/32", f"{ips['b']}/32"}
    d = port_spec(session, session.get(Port, "d"))  # type: ignore[arg-type]
    assert d is not None and d.security_group_rules == []  # no group: only DHCP passes


def test_a_port_is_on_its_binding_else_its_instances_host(session: Session) -> None:
    _world(session)
    assert [port_host(session, session.get(Port, p)) for p in "abc"] == [  # type: ignore[arg-type]
        "hv1", "hv2", ""]


def test_a_groups_change_touches_its_members_and_those_of_groups_naming_it(
        session: Session) -> None:
    _world(session)
    plan = group_plan(session, "admin")  # admin's members (c), and web's (a, b): web names it
    assert sorted((t.port.port_id, t.host) for t in plan.targets) == [("a", "hv1"),
                                                                       ("b", "hv2")]
    assert plan.unbound == ["c"]
    session.add(SecurityGroup(id="lonely", name="lonely", project_id="p"))
    session.commit()
    assert group_plan(session, "lonely").targets == []


def test_the_network_spec_names_the_other_hosts_as_peers(session: Session) -> None:
    _world(session)
    spec = network_spec(session, session.get(Network, "n"), "hv1")  # type: ignore[arg-type]
    assert spec is not None
    assert (spec.vni, spec.cidr, spec.gateway_ip, spec.peers, spec.dns_nameservers) == (
        4242, "10.0.0.0/24", "10.0.0.1", ["192.168.9.2"], ["10.0.0.1"])
