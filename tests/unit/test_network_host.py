"""The pure parts of a host's guest networks: spec checks, dnsmasq's command line,
names; and that a host without its own namespace refuses to make a network."""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError

from activities.hypervisor.libvirt.connection import Connection
from activities.hypervisor.network import dhcp, kernel
from activities.hypervisor.network.activities import NetworkActivities
from vmflow.contracts.networks import NetworkSpec, PortSpec
from vmflow.settings import Settings

NID = str(uuid.uuid4())
SPEC = NetworkSpec(NID, 4242, "10.90.0.0/24", "10.90.0.1", dns_nameservers=["10.90.0.1"],
                   mtu=1450, peers=["10.77.0.2"])


def test_dnsmasq_serves_only_allocated_addresses_on_its_bridge(tmp_path: Path) -> None:
    a = dhcp.argv(SPEC, tmp_path)
    assert a[0] == "dnsmasq" and "--conf-file=/dev/null" in a and "--port=0" in a
    assert "--interface=vmfbr4242" in a and "--user=nobody" in a
    assert "--dhcp-range=10.90.0.0,static,255.255.255.0,3600" in a
    assert "--dhcp-option=option:router,10.90.0.1" in a
    assert "--dhcp-option=option:mtu,1450" in a
    assert "--dhcp-option=option:dns-server,10.90.0.1" in a
    assert f"--dhcp-hostsdir={tmp_path / 'hosts'}" in a


@pytest.mark.parametrize("change", [
    {"cidr": "fd00::/64"}, {"cidr": "10.90.0.0/33"}, {"gateway_ip": "10.91.0.1"},
    {"vni": 0}, {"vni": 1 << 24}, {"mtu": 100}, {"network_id": "../etc"},
    {"dns_nameservers": ["1.1.1.1,option:router,6.6.6.6"]}, {"peers": ["10.77.0.2 x"]},
    {"gateway_ip": None},  # DHCP answers from the gateway address
])
def test_bad_network_specs_are_refused(change: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        dhcp.check_network(dataclasses.replace(SPEC, **change))  # type: ignore[arg-type]


def test_a_network_without_dhcp_needs_no_gateway() -> None:
    dhcp.check_network(dataclasses.replace(SPEC, gateway_ip=None, dhcp=False))


@pytest.mark.parametrize("change", [
    {"mac": "FA:16:3E:00:00:01"}, {"mac": "fa:16:3e:00:00:01,10.0.0.9"}, {"ip": "10.90.0"},
    {"port_id": "x"},
])
def test_bad_ports_are_refused(change: dict[str, object]) -> None:
    port = PortSpec(str(uuid.uuid4()), NID, "fa:16:3e:00:00:01", "10.90.0.11")
    dhcp.check_port(port)
    with pytest.raises(ValueError):
        dhcp.check_port(dataclasses.replace(port, **change))  # type: ignore[arg-type]


def test_names_fit_linux_and_the_gateway_mac_is_the_same_everywhere() -> None:
    assert len(kernel.bridge_name(0xFFFFFF)) <= 15 and len(kernel.vxlan_name(0xFFFFFF)) <= 15
    mac = kernel.gateway_mac(NID)
    assert mac == kernel.gateway_mac(NID) != kernel.gateway_mac(str(uuid.uuid4()))
    assert int(mac[:2], 16) & 0b11 == 0b10  # locally administered, unicast


def test_a_host_without_its_own_namespace_makes_no_network(tmp_path: Path) -> None:
    acts = NetworkActivities(Settings(home=tmp_path, host="h", host_netns=""),
                             Connection("test:///default"))
    with pytest.raises(ApplicationError, match="namespace") as e:
        acts.ensure_network(SPEC)
    assert e.value.non_retryable
    assert not (tmp_path / "hosts").exists()


def test_security_group_rules_become_one_stateful_filter_per_port() -> None:
    import xml.etree.ElementTree as ET

    from activities.hypervisor.libvirt import filter_xml
    from vmflow.contracts.networks import SecurityGroupRule as R

    pid = str(uuid.uuid4())
    fid = str(uuid.uuid4())
    root = ET.fromstring(filter_xml.build(pid, [
        R("egress"), R("ingress", protocol="tcp", port_range_min=22, port_range_max=22,
                       remote_ip_prefix="10.90.0.7/24"),
        R("ingress", protocol="icmp", port_range_min=8), R("ingress", ethertype="IPv6"),
    ], fid))
    assert root.get("name") == f"vmflow-port-{pid}" and root.findtext("uuid") == fid
    assert root.find("filterref").get("filter") == "clean-traffic"
    rules = [(r.get("action"), r.get("direction"), r[0].tag, dict(r[0].attrib))
             for r in root.findall("rule")]
    assert rules == [
        ("accept", "out", "udp", {"srcportstart": "68", "dstportstart": "67"}),
        ("accept", "in", "udp", {"srcportstart": "67", "dstportstart": "68"}),
        ("accept", "out", "all", {}),
        ("accept", "in", "tcp", {"srcipaddr": "10.90.0.0", "srcipmask": "24",
                                 "dstportstart": "22", "dstportend": "22"}),
        ("accept", "in", "icmp", {"type": "8"}),
        ("drop", "inout", "all", {}),  # the IPv6 rule matches nothing on IPv4 networks
    ]


@pytest.mark.parametrize("rule", [
    {"direction": "sideways"}, {"direction": "ingress", "protocol": "gre"},
    {"direction": "ingress", "protocol": "tcp", "port_range_min": 70000},
    {"direction": "ingress", "remote_ip_prefix": "10.0.0.0/8' srcipaddr='0.0.0.0"},
    {"direction": "ingress", "port_range_min": 22},  # a port range needs a protocol
])
def test_bad_rules_are_refused(rule: dict[str, object]) -> None:
    from activities.hypervisor.libvirt import filter_xml
    from vmflow.contracts.networks import SecurityGroupRule

    with pytest.raises(ValueError):
        filter_xml.build(str(uuid.uuid4()), [SecurityGroupRule(**rule)])  # type: ignore[arg-type]
