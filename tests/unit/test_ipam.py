"""vmflow.ipam and vmflow.security_rules: the pure checks and choices behind the
network API (CIDRs, gateways, pools, free addresses, MACs, VXLAN ids, auto /24s, rule
normalization)."""

from __future__ import annotations

import pytest

from vmflow import ipam, security_rules
from vmflow.ipam import IpamError


def test_plan_defaults_the_gateway_and_pools() -> None:
    plan = ipam.plan_subnet("192.168.5.0/24", None, False, None)
    assert (plan.cidr, plan.gateway_ip) == ("192.168.5.0/24", "192.168.5.1")
    assert plan.allocation_pools == [{"start": "192.168.5.2", "end": "192.168.5.254"}]
    assert ipam.pool_size(plan.allocation_pools) == 253
    assert ipam.plan_subnet("10.0.0.0/30", None, True, None).gateway_ip is None


@pytest.mark.parametrize(("cidr", "gateway", "pools", "error_type"), [
    ("10.0.0.0/31", None, None, "InvalidInput"),
    ("10.0.0.0/32", None, None, "InvalidInput"),
    ("10.0.0.1/24", None, None, "InvalidInput"),
    ("2001:db8::/64", None, None, "InvalidInput"),
    ("10.0.0.0/4", None, None, "InvalidInput"),
    ("10.0.0.0/24", "10.0.0.0", None, "InvalidInput"),
    ("10.0.0.0/24", "11.0.0.1", None, "InvalidInput"),
    ("10.0.0.0/24", "10.0.0.1", [{"start": "10.0.0.1", "end": "10.0.0.5"}],
     "GatewayConflictWithAllocationPools"),
    ("10.0.0.0/24", "10.0.0.1", [{"start": "10.0.0.2", "end": "10.0.0.9"},
                                 {"start": "10.0.0.9", "end": "10.0.0.12"}],
     "OverlappingAllocationPools"),
    ("10.0.0.0/24", "10.0.0.1", [{"start": "10.0.0.2"}], "InvalidInput"),
    ("10.0.0.0/24", "10.0.0.1", [{"start": "10.0.0.200", "end": "10.0.0.255"}],
     "InvalidInput"),
])
def test_plan_refuses(cidr: str, gateway: str | None, pools: list[dict[str, str]] | None,
                      error_type: str) -> None:
    with pytest.raises(IpamError) as e:
        ipam.plan_subnet(cidr, gateway, gateway is not None, pools)
    assert e.value.type == error_type and not e.value.conflict


def test_free_addresses_skip_the_used_lowest_first_and_lazily() -> None:
    pools = [{"start": "10.0.0.2", "end": "10.0.0.4"}, {"start": "10.0.0.9", "end": "10.0.0.9"}]
    assert list(ipam.free_addresses(pools, {"10.0.0.3"})) == ["10.0.0.2", "10.0.0.4", "10.0.0.9"]
    huge = ipam.plan_subnet("10.0.0.0/8", None, False, None).allocation_pools
    assert next(ipam.free_addresses(huge, {"10.0.0.2"})) == "10.0.0.3"
    assert ipam.check_requested("10.0.0.0/24", pools, "10.0.0.9") == "10.0.0.9"
    for ip in ("10.0.0.5", "10.0.1.2", "::1", "x"):
        with pytest.raises(IpamError):
            ipam.check_requested("10.0.0.0/24", pools, ip)


def test_macs_vnis_and_auto_cidrs() -> None:
    macs = {ipam.random_mac() for _ in range(50)}
    assert len(macs) == 50
    assert all(m.startswith("fa:16:3e:") and len(m) == 17 for m in macs)
    assert ipam.first_free([1, 2, 4]) == 3 and ipam.first_free([]) == 1
    assert ipam.first_free([1, 2], 1, 2) is None
    assert ipam.auto_cidr("10.100.0.0/16", []) == "10.100.0.0/24"
    assert ipam.auto_cidr("10.100.0.0/16", ["10.100.0.0/24", "10.100.1.0/24"]) == \
        "10.100.2.0/24"
    assert ipam.auto_cidr("10.100.0.0/23", ["10.100.0.0/23"]) is None
    assert ipam.check_nameservers(["1.1.1.1", "2001:db8::1"]) == ["1.1.1.1", "2001:db8::1"]
    with pytest.raises(IpamError):
        ipam.check_nameservers(["1.1.1.1", "1.1.1.1"])


def test_rules_normalize_and_sign() -> None:
    a = security_rules.normalize("ingress", "IPv4", "6", 22, 22, "10.1.2.3/8", None)
    b = security_rules.normalize("ingress", "IPv4", "TCP", 22, 22, "10.0.0.0/8", None)
    assert a == b and a.protocol == "tcp" and a.remote_ip_prefix == "10.0.0.0/8"
    assert a.signature() == b.signature()
    assert security_rules.normalize("egress", "IPv6", 58, None, None, None, None).protocol == "58"
    icmp = security_rules.normalize("ingress", "IPv4", "icmp", 8, None, None, None)
    assert (icmp.port_range_min, icmp.port_range_max) == (8, None)
    for bad in [("up", "IPv4", None, None, None, None, None),
                ("ingress", "IPv4", "tcp", 5, None, None, None),
                ("ingress", "IPv4", "gre", None, None, None, None),
                ("ingress", "IPv4", True, None, None, None, None),
                ("ingress", "IPv4", "icmp", None, 3, None, None),
                ("ingress", "IPv4", None, None, None, "10.0.0.0/8", "g")]:
        with pytest.raises(IpamError):
            security_rules.normalize(*bad)  # type: ignore[arg-type]
    rules = security_rules.default_rules("g1")
    assert {(r.direction, r.ethertype, r.remote_group_id) for r in rules} == {
        ("egress", "IPv4", None), ("egress", "IPv6", None),
        ("ingress", "IPv4", "g1"), ("ingress", "IPv6", "g1")}
