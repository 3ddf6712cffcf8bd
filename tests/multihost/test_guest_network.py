"""Guest networks on the two-host bed (issue 12, the hosts' side): one network stretched
over both hosts by VXLAN, a guest on each (launched through the API, then given a NIC
on the network by hotplug), each gets its allocated address by DHCP from its own
host, they reach each other across the hosts, and removing the network leaves nothing
behind in either host's namespace.

The host activities run in-process against each host's libvirtd and namespace (the
same classes the host's worker registers; there is no network API to call them yet).
"""

from __future__ import annotations

import json
import random
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import libvirt
import pytest

from activities.hypervisor.libvirt.connection import Connection
from activities.hypervisor.network import dhcp, kernel
from activities.hypervisor.network.activities import NetworkActivities
from tests.integration import guest
from tests.integration.conftest import delete_server
from tests.multihost.conftest import launch
from vmflow import hostbed
from vmflow.contracts.networks import (
    AttachPort,
    DetachPort,
    NetworkRef,
    NetworkSpec,
    PortRef,
    PortSpec,
)
from vmflow.contracts.reconcile import HostRef
from vmflow.settings import Settings

pytestmark = pytest.mark.guest

CIDR, GATEWAY = "10.91.0.0/24", "10.91.0.1"


@pytest.fixture
def net_acts(bed: Settings) -> Callable[[str], NetworkActivities]:
    """The network activities of one host, as its worker has them."""
    made: dict[str, NetworkActivities] = {}

    def get(name: str) -> NetworkActivities:
        if name not in made:
            h = hostbed.host(bed, name)
            s = bed.model_copy(update=dict(host=name, host_netns=h.netns,
                                           migration_address=h.address,
                                           libvirt_uri=h.libvirt_uri))
            made[name] = NetworkActivities(s, Connection(h.libvirt_uri))
        return made[name]

    return get


@pytest.fixture
def two_guests(api: httpx.Client, hosts: list[str]) -> Iterator[dict[str, str]]:
    """host -> server id: one ACTIVE guest on each host."""
    ids = [launch(api, "net-a")["id"], launch(api, "net-b")["id"]]
    try:
        placed = {api.get(f"/v1/servers/{sid}").json()["host"]: sid for sid in ids}
        assert set(placed) == set(hosts)  # the weigher spreads them
        yield placed
    finally:
        for sid in ids:
            assert delete_server(api, sid)["status"] == "succeeded"


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
    ports = {h: PortSpec(str(uuid.uuid4()), nid, f"fa:16:3e:91:00:{i:02x}", f"10.91.0.{10 + i}")
             for i, h in enumerate(hosts, start=1)}
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
            net_acts(h).remove_port(PortRef(ports[h].port_id, nid, ports[h].mac))
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
