"""Floating IPs on the two-host bed (issue 12 items 4 and 7): a guest with a NIC on a
project network gets a floating IP of the admin's external network through the API;
the floating IP's sync workflow NATs it on the guest's host; from the stack's outside
namespace, ping and TCP reach the guest, and the guest's own connections to the
outside show the floating IP as their source (without one, the host's address);
disassociating cuts it off and leaves nothing behind on either host.

The network and the NIC are made with the in-process host activities, as in
test_guest_network.py (launch does not carry NICs here); everything about the
floating IP goes through the API and the hosts' workers.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from activities.hypervisor.network.floating import FloatingIpActivities
from tests.integration import guest
from tests.integration.conftest import action, delete_server, wait_operation
from tests.multihost.conftest import launch
from tests.multihost.test_guest_network import (
    in_netns,
    remove_port_once_unplugged,
    wait_bound,
)
from vmflow import hostbed
from vmflow.contracts.networks import (
    AttachPort,
    DetachPort,
    FloatingIpRef,
    FloatingIpSpec,
    HostFloatingIps,
    NetworkRef,
    NetworkSpec,
    PortRef,
    PortSpec,
    SecurityGroupRule,
)
from vmflow.contracts.reconcile import HostRef
from vmflow.settings import Settings

pytestmark = pytest.mark.guest

CIDR, GATEWAY = "10.94.0.0/24", "10.94.0.1"
CIDR_LM, GATEWAY_LM = "10.95.0.0/24", "10.95.0.1"
OPEN = [SecurityGroupRule("egress"), SecurityGroupRule("ingress")]  # the NAT is under test
HOSTNAME = "vmflow-tiny"  # what the tiny guest's nc servers answer


def fip_acts(bed: Settings, name: str) -> FloatingIpActivities:
    h = hostbed.host(bed, name)
    return FloatingIpActivities(bed.model_copy(update=dict(
        host=name, host_netns=h.netns, migration_address=h.address, libvirt_uri=h.libvirt_uri)))


def outside(bed: Settings, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", hostbed.outside_netns(bed), *argv],
                          capture_output=True, text=True, timeout=timeout)


def reach_from_outside(bed: Settings, ip: str) -> dict[str, str]:
    ping = outside(bed, "busybox", "ping", "-c", "2", "-W", "2", ip).returncode == 0
    found = {"ping": "OK" if ping else "BLOCKED"}
    for port in ("22", "8080"):
        r = subprocess.run(["ip", "netns", "exec", hostbed.outside_netns(bed), "busybox",
                            "nc", "-w", "3", ip, port], input="\n", capture_output=True,
                           text=True, timeout=30)
        found[f"tcp{port}"] = "OK" if r.stdout.strip() == HOSTNAME else "BLOCKED"
    return found


def seen_source(bed: Settings, server_id: str, port: int) -> str:
    """The source address a listener in the outside sees for the guest's connection."""
    listener = subprocess.Popen(
        ["ip", "netns", "exec", hostbed.outside_netns(bed), "python3", "-c",
         "import socket\ns = socket.socket()\n"
         "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
         f"s.bind(('0.0.0.0', {port}))\ns.listen(1)\ns.settimeout(25)\n"
         "print('listening', flush=True)\nc, a = s.accept()\nprint(a[0], flush=True)\n"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert listener.stdout is not None
        assert listener.stdout.readline().strip() == "listening"
        target = hostbed.outside_address(bed).ip
        guest.sh(server_id, f"echo hi | nc -w 3 {target} {port}")
        out, err = listener.communicate(timeout=30)
        assert listener.returncode == 0, err
        return out.strip()
    finally:
        if listener.poll() is None:
            listener.kill()
            listener.wait()


def conntrack_entries(bed: Settings, host: str, ip: str) -> str:
    netns = hostbed.host(bed, host).netns
    lines = []
    for flag in ("-d", "--reply-dst"):
        r = subprocess.run(["ip", "netns", "exec", netns, "conntrack", "-L", flag, ip],
                           capture_output=True, text=True, timeout=30)
        lines += [line for line in r.stdout.splitlines() if line.strip()]
    return "\n".join(lines)


def wait_fip(api: httpx.Client, fip_id: str, status: str, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fip: dict[str, Any] = api.get(f"/v1/floating-ips/{fip_id}").json()
        if fip["status"] == status:
            return fip
        time.sleep(0.5)
    raise AssertionError(f"floating IP {fip_id} not {status} after {timeout}s: {fip}")


def wait_cleared(bed: Settings, hosts: list[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(fip_acts(bed, h).list_floating_ips(HostRef(h)) == HostFloatingIps(h, [], [])
               for h in hosts):
            return
        time.sleep(0.5)
    raise AssertionError({h: fip_acts(bed, h).list_floating_ips(HostRef(h)) for h in hosts})


@pytest.fixture(scope="module")
def external(bed: Settings, api: httpx.Client) -> Iterator[str]:
    """The admin's external network over the outside link's range (its pool clear of
    the outside's and the hosts' addresses)."""
    ext_range = hostbed.external_network(bed)
    ext = api.post("/v1/networks", json={"name": "public-fip", "router:external": True})
    assert ext.status_code == 201, ext.text
    ext_id = ext.json()["id"]
    try:
        r = api.post("/v1/subnets", json={
            "network_id": ext_id, "cidr": str(ext_range), "gateway_ip": str(ext_range[1]),
            "allocation_pools": [{"start": str(ext_range[100]),
                                  "end": str(ext_range[150])}]})
        assert r.status_code == 201, r.text
        yield ext_id
    finally:
        api.delete(f"/v1/networks/{ext_id}")


@pytest.fixture(scope="module")
def open_group(api: httpx.Client) -> Iterator[str]:
    """A group that lets everything in and out: the database's view of OPEN, so the
    security-group sync (started when a port is made) writes the same filter."""
    group = api.post("/v1/security-groups", json={"name": "fip-open"})
    assert group.status_code == 201, group.text
    gid = group.json()["id"]
    try:
        r = api.post("/v1/security-group-rules", json={
            "security_group_id": gid, "direction": "ingress",
            "remote_ip_prefix": "0.0.0.0/0"})
        assert r.status_code == 201, r.text
        yield gid
    finally:
        api.delete(f"/v1/security-groups/{gid}")


def test_floating_ip_reaches_the_guest_from_the_outside(
        bed: Settings, api: httpx.Client, hosts: list[str], external: str, open_group: str,
        net_acts: Callable[[str], Any]) -> None:
    ext_range, ext_id = hostbed.external_network(bed), external
    net = api.post("/v1/networks", json={"name": "fip-net"}).json()
    r = api.post("/v1/subnets", json={"network_id": net["id"], "cidr": CIDR,
                                      "gateway_ip": GATEWAY})
    assert r.status_code == 201, r.text
    vni = api.get(f"/v1/networks/{net['id']}").json()["provider:segmentation_id"]
    server = launch(api, "fip-a")
    sid, host = server["id"], server["host"]
    (other,) = set(hosts) - {host}
    r = api.post("/v1/ports", json={"network_id": net["id"], "device_id": sid,
                                    "device_owner": "compute:nova",
                                    "security_groups": [open_group]})
    assert r.status_code == 201, r.text
    port = r.json()
    fixed = port["fixed_ips"][0]["ip_address"]
    spec = NetworkSpec(net["id"], vni, CIDR, GATEWAY, mtu=1450)
    pspec = PortSpec(port["id"], net["id"], port["mac_address"], fixed, OPEN)
    acts = net_acts(host)
    fip_id = None
    try:
        acts.ensure_network(spec)
        acts.attach_port(AttachPort(sid, pspec))
        wait_bound(sid, "eth0", fixed)

        # no floating IP: the outside cannot reach in; the guest gets out as its host
        assert reach_from_outside(bed, str(ext_range[100])) == {
            "ping": "BLOCKED", "tcp22": "BLOCKED", "tcp8080": "BLOCKED"}
        host_ext = str(hostbed.external_address(bed, hostbed.host(bed, host)).ip)
        assert seen_source(bed, sid, 9100) == host_ext

        r = api.post("/v1/floating-ips", json={"floating_network_id": ext_id,
                                               "port_id": port["id"]})
        assert r.status_code == 201, r.text
        fip_id, fip_ip = r.json()["id"], r.json()["floating_ip_address"]
        t0 = time.monotonic()
        wait_fip(api, fip_id, "ACTIVE")
        print(f"floating IP {fip_ip} ACTIVE {time.monotonic() - t0:.1f} s after the request")
        assert fip_acts(bed, host).list_floating_ips(HostRef(host)) == HostFloatingIps(
            host, [FloatingIpSpec(fip_ip, fixed, vni)], [fip_ip])
        assert fip_acts(bed, other).list_floating_ips(HostRef(other)) == HostFloatingIps(
            other, [], [])

        assert reach_from_outside(bed, fip_ip) == {"ping": "OK", "tcp22": "OK",
                                                   "tcp8080": "OK"}
        assert seen_source(bed, sid, 9101) == fip_ip
        # nothing of it in the machine's own namespace
        root = subprocess.run(["ip", "-j", "addr"], capture_output=True, text=True,
                              check=True).stdout
        assert fip_ip not in root and str(ext_range) not in root
        ruleset = subprocess.run(["nft", "list", "tables"], capture_output=True,
                                 text=True).stdout
        assert "vmflow_nat" not in ruleset

        r = api.put(f"/v1/floating-ips/{fip_id}", json={"port_id": None})
        assert r.status_code == 200 and r.json()["status"] == "DOWN"
        wait_cleared(bed, hosts)
        assert conntrack_entries(bed, host, fip_ip) == ""  # flushed with the NAT
        assert reach_from_outside(bed, fip_ip) == {
            "ping": "BLOCKED", "tcp22": "BLOCKED", "tcp8080": "BLOCKED"}
        # (the outside's ARP cache still sends to the host, which only routes the probes
        # back: none of their connections is NATed to the guest)
        assert fixed not in conntrack_entries(bed, host, fip_ip)
        assert seen_source(bed, sid, 9102) == host_ext  # back to the host's address

        # the host activities again, directly: each ensures a state, any number of times
        fa = fip_acts(bed, host)
        fa.ensure_floating_ip(FloatingIpSpec(fip_ip, fixed, vni))
        fa.ensure_floating_ip(FloatingIpSpec(fip_ip, fixed, vni))
        assert fa.list_floating_ips(HostRef(host)).nat == [FloatingIpSpec(fip_ip, fixed, vni)]
        assert reach_from_outside(bed, fip_ip)["tcp22"] == "OK"
        fa.remove_floating_ip(FloatingIpRef(fip_ip))
        assert conntrack_entries(bed, host, fip_ip) == ""
        fa.remove_floating_ip(FloatingIpRef(fip_ip))
        assert fa.list_floating_ips(HostRef(host)) == HostFloatingIps(host, [], [])
        table = in_netns(hostbed.host(bed, host).netns, "nft", "-j", "list", "table", "ip",
                         "vmflow_nat")
        rules = [i["rule"] for i in json.loads(table)["nftables"] if "rule" in i]
        # the masquerade and the guard only
        assert [r["chain"] for r in rules] == ["egress", "forward", "forward"]

        assert api.delete(f"/v1/floating-ips/{fip_id}").status_code == 204
        fip_id = None
        acts.detach_port(DetachPort(sid, PortRef(port["id"], net["id"], port["mac_address"])))
    finally:  # the server first: its NIC holds the port's filter
        if fip_id is not None:
            api.delete(f"/v1/floating-ips/{fip_id}")
        assert delete_server(api, sid)["status"] == "succeeded"
        remove_port_once_unplugged(acts, PortRef(port["id"], net["id"], port["mac_address"]))
        acts.remove_network(NetworkRef(net["id"], vni))
        api.delete(f"/v1/ports/{port['id']}")
        api.delete(f"/v1/networks/{net['id']}")
    wait_cleared(bed, hosts)
    for h in hosts:
        assert fixed not in conntrack_entries(bed, h, str(ext_range[100]))


def test_bad_floating_ip_input_changes_nothing(bed: Settings, hosts: list[str]) -> None:
    """Refused before any command runs: not an address, not on the external link."""
    from temporalio.exceptions import ApplicationError

    h = hosts[0]
    fa = fip_acts(bed, h)
    for spec in (FloatingIpSpec("203.0.113.77; nft flush ruleset", "10.94.0.5", 5),
                 FloatingIpSpec("192.0.2.10", "10.94.0.5", 5),  # not the external range
                 FloatingIpSpec(str(hostbed.external_address(bed, hostbed.host(bed, h)).ip),
                                "10.94.0.5", 5),  # the host's own address
                 FloatingIpSpec(str(hostbed.external_network(bed)[130]), "10.94.0.5", 0)):
        with pytest.raises(ApplicationError):
            fa.ensure_floating_ip(spec)
    with pytest.raises(ApplicationError):
        fa.remove_floating_ip(FloatingIpRef("not-an-address"))
    assert fa.list_floating_ips(HostRef(h)) == HostFloatingIps(h, [], [])


STREAM_CLIENT = """
import socket, sys, time
s = socket.create_connection((sys.argv[1], 7000), timeout=10)
print('connected', flush=True)
n, end = 0, time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    s.sendall(b'%d\\n' % n)
    n += 1
    time.sleep(0.1)
s.close()
print(n, flush=True)
"""


def test_floating_ip_follows_a_live_migration(
        bed: Settings, api: httpx.Client, hosts: list[str], external: str, open_group: str,
        net_acts: Callable[[str], Any]) -> None:
    """One TCP connection from the outside to the guest's floating IP carries a line
    every 0.1 s while the guest live-migrates; the guest receives every line, in
    order, on the same connection, and the floating IP is NATed by the destination."""
    ext_id = external
    net = api.post("/v1/networks", json={"name": "fip-lm-net"}).json()
    assert api.post("/v1/subnets", json={"network_id": net["id"], "cidr": CIDR_LM,
                                         "gateway_ip": GATEWAY_LM}).status_code == 201
    vni = api.get(f"/v1/networks/{net['id']}").json()["provider:segmentation_id"]
    server = launch(api, "fip-lm")
    sid, src = server["id"], server["host"]
    (dest,) = set(hosts) - {src}
    port = api.post("/v1/ports", json={"network_id": net["id"], "device_id": sid,
                                       "device_owner": "compute:nova",
                                       "security_groups": [open_group]}).json()
    fixed = port["fixed_ips"][0]["ip_address"]
    spec = NetworkSpec(net["id"], vni, CIDR_LM, GATEWAY_LM, mtu=1450,
                       peers=[hostbed.host(bed, h).address for h in hosts])
    pspec = PortSpec(port["id"], net["id"], port["mac_address"], fixed, OPEN)
    ref = PortRef(port["id"], net["id"], port["mac_address"])
    fip_id = None
    try:
        for h in hosts:  # the network on both; the port's filter on the destination first
            net_acts(h).ensure_network(spec)
        net_acts(dest).ensure_port(pspec)
        net_acts(src).attach_port(AttachPort(sid, pspec))
        wait_bound(sid, "eth0", fixed)
        r = api.post("/v1/floating-ips", json={"floating_network_id": ext_id,
                                               "port_id": port["id"]})
        fip_id, fip_ip = r.json()["id"], r.json()["floating_ip_address"]
        wait_fip(api, fip_id, "ACTIVE")
        # detached from guest-exec's pipes, or the agent waits for it to end
        guest.sh(sid, "(tail -f /dev/null | nc -l -p 7000 > /tmp/stream 2>&1) "
                      "</dev/null >/dev/null 2>&1 &")
        time.sleep(1)
        client = subprocess.Popen(
            ["ip", "netns", "exec", hostbed.outside_netns(bed), "python3", "-c",
             STREAM_CLIENT, fip_ip, "40"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
        assert client.stdout is not None and client.stdout.readline().strip() == "connected"
        r = action(api, sid, {"os-migrateLive": {"host": dest}})
        assert r.status_code == 202, r.text
        op = wait_operation(api, r.json()["operation"]["id"], timeout=300)
        assert op["status"] == "succeeded", op["last_error"]
        assert api.get(f"/v1/servers/{sid}").json()["host"] == dest
        assert fip_acts(bed, dest).list_floating_ips(HostRef(dest)).nat == [
            FloatingIpSpec(fip_ip, fixed, vni)]
        assert fip_acts(bed, src).list_floating_ips(HostRef(src)) == HostFloatingIps(
            src, [], [])
        out, err = client.communicate(timeout=120)
        assert client.returncode == 0, f"the connection broke: {err}"
        sent = int(out.split()[-1])
        time.sleep(2)
        _rc, got = guest.sh(sid, "cat /tmp/stream")
        assert got.split() == [str(i) for i in range(sent)], (sent, got[-200:])
        print(f"{sent} lines over one connection across the live migration, none lost")
        assert reach_from_outside(bed, fip_ip)["tcp22"] == "OK"
        assert api.delete(f"/v1/floating-ips/{fip_id}").status_code == 204
        fip_id = None
        wait_cleared(bed, hosts)
        net_acts(dest).detach_port(DetachPort(sid, ref))
    finally:
        if fip_id is not None:
            api.delete(f"/v1/floating-ips/{fip_id}")
        assert delete_server(api, sid)["status"] == "succeeded"
        for h in hosts:
            remove_port_once_unplugged(net_acts(h), ref)
            net_acts(h).remove_network(NetworkRef(net["id"], vni))
        api.delete(f"/v1/ports/{port['id']}")
        api.delete(f"/v1/networks/{net['id']}")
    wait_cleared(bed, hosts)
