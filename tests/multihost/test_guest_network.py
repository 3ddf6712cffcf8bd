"""Guest networks on the two-host bed (issue 12, the hosts' side): one network stretched
over both hosts by VXLAN, a guest on each (launched through the API, then given a NIC
on the network by hotplug), each gets its allocated address by DHCP from its own
host, they reach each other across the hosts, and removing the network leaves nothing
behind in either host's namespace.

The host activities run in-process against each host's libvirtd and namespace (the
same classes the host's worker registers; there is no network API to call them yet).
"""

from __future__ import annotations

import dataclasses
import json
import random
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import libvirt
import pytest

from activities.hypervisor.libvirt.connection import Connection
from activities.hypervisor.network import dhcp, kernel
from activities.hypervisor.network.activities import NetworkActivities
from tests.integration import guest
from vmflow import hostbed
from vmflow.contracts.networks import (
    AttachPort,
    DetachPort,
    HostNetworks,
    NetworkRef,
    NetworkSpec,
    PortRef,
    PortSpec,
    SecurityGroupRule,
)
from vmflow.contracts.reconcile import HostRef
from vmflow.settings import Settings

pytestmark = pytest.mark.guest

CIDR, GATEWAY = "10.91.0.0/24", "10.91.0.1"
# Neutron's default group, the remote group spelled as the subnet
DEFAULT_SG = [SecurityGroupRule("egress"), SecurityGroupRule("ingress", remote_ip_prefix=CIDR)]


def in_netns(netns: str, *argv: str) -> str:
    return subprocess.run(["ip", "netns", "exec", netns, *argv], capture_output=True,
                          text=True, check=True, timeout=30).stdout


def link_names(netns: str | None) -> set[str]:
    argv = ["ip", "-j", "link", "show"]
    out = in_netns(netns, *argv) if netns else subprocess.run(
        argv, capture_output=True, text=True, check=True).stdout
    return {link["ifname"] for link in json.loads(out)}


def wait_bound(server_id: str, iface: str, ip: str, timeout: float = 60) -> str:
    """The guest's DHCP client log line for the lease, once its address is up."""
    deadline = time.monotonic() + timeout
    log = ""
    while time.monotonic() < deadline:
        _rc, log = guest.sh(server_id, "cat /run/net.log 2>/dev/null")
        for line in log.splitlines():
            if f"bound {iface} ip={ip}/" in line:
                return line
        time.sleep(0.5)
    raise AssertionError(f"{server_id}: no DHCP lease {ip} on {iface} in {timeout}s:\n{log}")


def test_one_network_over_two_hosts(bed: Settings, hosts: list[str],
                                    two_guests: dict[str, str],
                                    net_acts: Callable[[str], NetworkActivities],
                                    conn: Callable[[str], libvirt.virConnect]) -> None:
    nid, vni = str(uuid.uuid4()), random.randint(1000, 900000)
    spec = NetworkSpec(nid, vni, CIDR, GATEWAY, dns_nameservers=["10.91.0.1"], mtu=1450,
                       peers=[hostbed.host(bed, h).address for h in hosts])
    ports = {h: PortSpec(str(uuid.uuid4()), nid, f"fa:16:3e:91:00:{i:02x}", f"10.91.0.{10 + i}",
                         DEFAULT_SG) for i, h in enumerate(hosts, start=1)}
    netns = {h: hostbed.host(bed, h).netns for h in hosts}
    dnsmasq_pids: list[int] = []
    try:
        for h in hosts:
            sid, port = two_guests[h], ports[h]
            net_acts(h).ensure_network(spec)
            net_acts(h).ensure_network(spec)  # again: nothing changes, nothing doubles
            t0 = time.monotonic()
            net_acts(h).attach_port(AttachPort(sid, port))
            net_acts(h).attach_port(AttachPort(sid, port))  # again: still one NIC
            print(f"{h}: NIC attached in {time.monotonic() - t0:.2f} s")
            xml = conn(h).lookupByUUIDString(sid).XMLDesc(0)
            assert xml.count("<interface type='bridge'>") == 1, xml
            assert f"<source bridge='{kernel.bridge_name(vni)}'/>" in xml
            assert "<model type='virtio'/>" in xml
            assert f"<filterref filter='vmflow-port-{port.port_id}'>" in xml
            inactive = conn(h).lookupByUUIDString(sid).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
            assert port.mac in inactive  # in its definition too: a reboot keeps it
            d = dhcp.state_dir(net_acts(h).settings, nid)
            pid = dhcp.pid(d)
            assert pid is not None
            dnsmasq_pids.append(pid)
            assert {kernel.bridge_name(vni), kernel.vxlan_name(vni)} <= link_names(netns[h])
            fdb = in_netns(netns[h], "bridge", "fdb", "show", "dev", kernel.vxlan_name(vni))
            (other,) = set(hosts) - {h}
            assert f"00:00:00:00:00:00 dst {hostbed.host(bed, other).address}" in fdb

        for h in hosts:  # each guest got its allocated address by DHCP, with the MTU
            t0 = time.monotonic()
            line = wait_bound(two_guests[h], "eth0", ports[h].ip)
            print(f"{h}: {line} ({time.monotonic() - t0:.1f} s after the attach returned)")
            assert "mtu=1450" in line and f"router={GATEWAY}" in line
            assert guest.sh(two_guests[h], "cat /sys/class/net/eth0/mtu")[1].strip() == "1450"
        for h in hosts:  # ... from its own host's DHCP server, never from the other's
            listed = net_acts(h).list_networks(HostRef(h)).networks
            assert [(n.network_id, n.bridge, n.vxlan, n.dhcp_running) for n in listed] == [
                (nid, True, True, True)]
            (other,) = set(hosts) - {h}
            assert f"{ports[h].mac} {ports[h].ip}" in listed[0].leases
            assert f"{ports[other].mac} {ports[other].ip}" not in listed[0].leases

        a, b = (two_guests[h] for h in hosts)
        ip_a, ip_b = (ports[h].ip for h in hosts)
        for src, dst in ((a, ip_b), (b, ip_a)):  # across the hosts, over the VXLAN
            rc, out = guest.sh(src, f"ping -c 3 -W 2 {dst}", timeout=30)
            assert rc == 0, out
            print(f"ping {dst}: {out.strip().splitlines()[-1]}")
            rc, out = guest.sh(src, f"echo | nc -w 3 {dst} 8080")
            assert out.strip() == "vmflow-tiny", (rc, out)
        for src in (a, b):  # the gateway answers on each guest's own host
            rc, out = guest.sh(src, f"ping -c 2 -W 2 {GATEWAY}")
            assert rc == 0, out

        # a reboot: the NIC is in the definition, the guest asks for its lease at boot
        dom_a = conn(hosts[0]).lookupByUUIDString(a)
        boot = guest.boot_id(a)
        dom_a.reset()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if guest.boot_id(a) != boot:
                    break
            except (libvirt.libvirtError, TimeoutError):
                pass
            time.sleep(0.5)
        line = wait_bound(a, "eth0", ip_a)
        print(f"after reset: {line}")
        rc, out = guest.sh(a, f"ping -c 2 -W 2 {ip_b}")
        assert rc == 0, out

        # nothing of the network is in the machine's own namespace
        assert not {n for n in link_names(None) if n.startswith(("vmfbr", "vmfvx"))}

        for h in hosts:
            net_acts(h).detach_port(DetachPort(two_guests[h], PortRef(
                ports[h].port_id, nid, ports[h].mac)))
            remove_port_once_unplugged(net_acts(h), PortRef(ports[h].port_id, nid,
                                                            ports[h].mac))
        for h in hosts:  # the NIC is gone from the guest (unplug is asynchronous)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and guest.sh(
                    two_guests[h], "test -e /sys/class/net/eth0")[0] == 0:
                time.sleep(0.5)
            assert guest.sh(two_guests[h], "test -e /sys/class/net/eth0")[0] != 0
    finally:
        for h in hosts:
            net_acts(h).remove_network(NetworkRef(nid, vni))
            net_acts(h).remove_network(NetworkRef(nid, vni))  # absent is fine

    for h in hosts:  # no bridge, vxlan, dnsmasq or lease file left in either host
        assert not {n for n in link_names(netns[h]) if n.startswith(("vmfbr", "vmfvx"))}
        assert net_acts(h).list_networks(HostRef(h)).networks == []
        assert net_acts(h).list_networks(HostRef(h)).port_filters == []  # removed with the port
        assert not dhcp.state_dir(net_acts(h).settings, nid).exists()
        assert not list(Path(net_acts(h).settings.host_dir()).glob("networks/*/leases"))
        pids = subprocess.run(["ip", "netns", "pids", netns[h]], capture_output=True,
                              text=True, check=True).stdout.split()
        assert not [p for p in pids if b"dnsmasq" in _cmdline(p)]
    assert dnsmasq_pids and not [p for p in dnsmasq_pids if Path(f"/proc/{p}").exists()]


def _cmdline(pid: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return b""


def reach(src: str, dst: str) -> dict[str, str]:
    """What `src` gets through to `dst`: ping, and the TCP servers on 22 and 8080."""
    script = (f"ping -c 2 -W 1 {dst} >/dev/null && echo ping=OK || echo ping=BLOCKED; "
              f"for p in 22 8080; do r=$(echo | nc -w 2 {dst} $p); "
              "[ -n \"$r\" ] && echo tcp$p=OK || echo tcp$p=BLOCKED; done")
    _rc, out = guest.sh(src, script, timeout=30)
    return dict(line.split("=", 1) for line in out.split())


def test_security_groups_on_running_guests(bed: Settings, hosts: list[str],
                                           two_guests: dict[str, str],
                                           net_acts: Callable[[str], NetworkActivities]) -> None:
    """Rules per port as libvirt nwfilters: what they allow passes, the rest is dropped,
    both directions, stateful; a change applies to the running guest; a spoofed source
    address is dropped although a rule would let the real one through."""
    nid, vni = str(uuid.uuid4()), random.randint(1000, 900000)
    spec = NetworkSpec(nid, vni, CIDR, GATEWAY, mtu=1450,
                       peers=[hostbed.host(bed, h).address for h in hosts])
    ha, hb = hosts
    a, b = two_guests[ha], two_guests[hb]
    egress = SecurityGroupRule("egress")
    icmp_in = SecurityGroupRule("ingress", protocol="icmp", remote_ip_prefix=CIDR)
    web_in = SecurityGroupRule("ingress", protocol="tcp", port_range_min=8080,
                               port_range_max=8080, remote_ip_prefix=CIDR)
    pa = PortSpec(str(uuid.uuid4()), nid, "fa:16:3e:92:00:01", "10.91.0.21", [egress, icmp_in])
    pb = PortSpec(str(uuid.uuid4()), nid, "fa:16:3e:92:00:02", "10.91.0.22", [egress, web_in])
    try:
        for h, sid, port in ((ha, a, pa), (hb, b, pb)):
            net_acts(h).ensure_network(spec)
            net_acts(h).attach_port(AttachPort(sid, port))
        wait_bound(a, "eth0", pa.ip)
        wait_bound(b, "eth0", pb.ip)

        assert reach(a, pb.ip) == {"ping": "BLOCKED", "tcp22": "BLOCKED", "tcp8080": "OK"}
        assert reach(b, pa.ip) == {"ping": "OK", "tcp22": "BLOCKED", "tcp8080": "BLOCKED"}

        # a new rule on b's running port: ping passes; taken away: blocked again
        t0 = time.monotonic()
        net_acts(hb).ensure_port(dataclasses.replace(pb, security_group_rules=[
            egress, web_in, icmp_in]))
        print(f"live rule change: {time.monotonic() - t0:.2f} s")
        assert reach(a, pb.ip)["ping"] == "OK"
        net_acts(hb).ensure_port(pb)
        assert reach(a, pb.ip)["ping"] == "BLOCKED"

        # no egress rule on a: a reaches nothing, but still answers what b may send it
        net_acts(ha).ensure_port(dataclasses.replace(pa, security_group_rules=[icmp_in]))
        assert reach(a, pb.ip)["tcp8080"] == "BLOCKED"
        assert reach(b, pa.ip)["ping"] == "OK"
        net_acts(ha).ensure_port(pa)
        assert reach(a, pb.ip)["tcp8080"] == "OK"

        # b forges a source address inside the allowed CIDR: dropped (clean-traffic)
        rc, out = guest.sh(b, f"ip addr add 10.91.0.50/24 dev eth0; "
                              f"ping -c 2 -W 1 -I 10.91.0.50 {pa.ip} >/dev/null && echo PASSED "
                              f"|| echo BLOCKED; ip addr del 10.91.0.50/24 dev eth0")
        assert out.strip() == "BLOCKED", out
        assert reach(b, pa.ip)["ping"] == "OK"  # its own address still passes

        for h, sid, port in ((ha, a, pa), (hb, b, pb)):
            net_acts(h).detach_port(DetachPort(sid, PortRef(port.port_id, nid, port.mac)))
    finally:
        for h, port in ((ha, pa), (hb, pb)):
            remove_port_once_unplugged(net_acts(h), PortRef(port.port_id, nid, port.mac))
            net_acts(h).remove_network(NetworkRef(nid, vni))
    for h in hosts:
        assert net_acts(h).list_networks(HostRef(h)) == HostNetworks(h, [], [])


def remove_port_once_unplugged(acts: NetworkActivities, ref: PortRef) -> None:
    """A NIC's unplug finishes after detach returns; its filter stays in use till then."""
    deadline = time.monotonic() + 30
    while True:
        try:
            acts.remove_port(ref)
            return
        except libvirt.libvirtError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_power_off_ends_the_hosts_dhcp_servers(tmp_path: Path) -> None:
    """A bed of its own (no stack): a host with a network is powered off; its dnsmasq
    (not a child of libvirtd) does not outlive it, nor keep its namespace alive."""
    s = Settings(home=tmp_path, host="nhoff", hosts=1)
    (h,) = hostbed.bed(s)
    try:
        hostbed.start(s, h)
        acts = NetworkActivities(s.model_copy(update=dict(
            host_netns=h.netns, migration_address=h.address, libvirt_uri=h.libvirt_uri)),
            Connection(h.libvirt_uri))
        nid = str(uuid.uuid4())
        acts.ensure_network(NetworkSpec(nid, 77, CIDR, GATEWAY))
        pid = dhcp.pid(dhcp.state_dir(acts.settings, nid))
        assert pid is not None
    finally:
        hostbed.stop_all(s)
    assert not Path(f"/proc/{pid}").exists()
