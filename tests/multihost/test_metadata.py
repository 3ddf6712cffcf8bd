"""The metadata service on the two-host bed (issue 12, item 5): two guests on one
network, one on each host (launched through the API, given a NIC by hotplug with the
in-process host activities, as tests/multihost/test_guest_network.py does). Each
host serves both guests' documents (as a host does in the middle of a move), yet
each guest reading 169.254.169.254 gets its own and never the other's; withdrawn, it
gets 404; removing the network leaves no server, no nft table and no file behind.
"""

from __future__ import annotations

import base64
import json
import random
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from activities.hypervisor.network import metadata
from activities.hypervisor.network.activities import NetworkActivities
from tests.integration import guest
from tests.multihost.test_guest_network import (
    DEFAULT_SG,
    in_netns,
    remove_port_once_unplugged,
    wait_bound,
)
from vmflow import hostbed
from vmflow.contracts.metadata import InstanceMetadata, MetadataRef
from vmflow.contracts.networks import (
    AttachPort,
    DetachPort,
    NetworkRef,
    NetworkSpec,
    PortRef,
    PortSpec,
)
from vmflow.settings import Settings

pytestmark = pytest.mark.guest

CIDR, GATEWAY = "10.93.0.0/24", "10.93.0.1"


def fetch(server_id: str, path: str) -> tuple[int, str]:
    """What the guest gets for `path` from 169.254.169.254 (nc: busybox wget
    segfaults): (HTTP status, body); status 0 when nothing answered."""
    _rc, out = guest.sh(server_id, f"printf 'GET {path} HTTP/1.0\\r\\n\\r\\n' | "
                                   "nc -w 3 169.254.169.254 80", timeout=30)
    head, _, body = out.partition("\r\n\r\n")
    parts = head.split()
    return (int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0), body


def documents(server_id: str, name: str, spec: NetworkSpec, port: PortSpec) -> InstanceMetadata:
    return InstanceMetadata(
        instance_id=server_id, network_id=spec.network_id, vni=spec.vni, fixed_ip=port.ip,
        port_id=port.port_id,
        meta_data_json=json.dumps({"uuid": server_id, "name": name, "hostname": name}),
        network_data_json=json.dumps({"links": [{"id": "tap0", "ethernet_mac_address":
                                                 port.mac}], "networks": [], "services": []}),
        user_data_b64=base64.b64encode(f"#!/bin/sh\necho {name}\n".encode()).decode(),
        hostname=name, instance_type="t1.micro")


def netns_processes(netns: str, marker: bytes) -> list[str]:
    pids = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True,
                          check=True).stdout.split()
    out = []
    for p in pids:
        try:
            if marker in Path(f"/proc/{p}/cmdline").read_bytes():
                out.append(p)
        except FileNotFoundError:
            continue
    return out


def test_each_guest_reads_its_own_metadata(bed: Settings, hosts: list[str],
                                           two_guests: dict[str, str],
                                           net_acts: Callable[[str], NetworkActivities],
                                           ) -> None:
    nid, vni = str(uuid.uuid4()), random.randint(1000, 900000)
    spec = NetworkSpec(nid, vni, CIDR, GATEWAY, mtu=1450,
                       peers=[hostbed.host(bed, h).address for h in hosts])
    ports = {h: PortSpec(str(uuid.uuid4()), nid, f"fa:16:3e:93:00:{i:02x}",
                         f"10.93.0.{10 + i}", DEFAULT_SG) for i, h in enumerate(hosts, start=1)}
    md_acts = {h: metadata.MetadataActivities(net_acts(h).settings) for h in hosts}
    netns = {h: hostbed.host(bed, h).netns for h in hosts}
    docs = {h: documents(two_guests[h], f"md-{h}", spec, ports[h]) for h in hosts}
    server_pids: list[int] = []
    try:
        for h in hosts:
            net_acts(h).ensure_network(spec)
            net_acts(h).attach_port(AttachPort(two_guests[h], ports[h]))
        for h in hosts:
            wait_bound(two_guests[h], "eth0", ports[h].ip)
            assert fetch(two_guests[h], "/openstack/latest/meta_data.json")[0] == 0  # no route

        for h in hosts:  # both guests' documents on both hosts
            for d in docs.values():
                md_acts[h].publish_metadata(d)
            md_acts[h].publish_metadata(docs[h])  # again: replaced, nothing doubles
            pid = metadata.server_pid(md_acts[h].settings)
            assert pid is not None
            server_pids.append(pid)
            assert metadata.route_vnis(md_acts[h].settings) == [vni]
            assert netns_processes(netns[h], b"metadata_server") == [str(pid)]
            uid = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                       if line.startswith("Uid:")).split()[1]
            assert uid == "65534"  # it runs as nobody

        for h in hosts:
            sid = two_guests[h]
            (other,) = set(hosts) - {h}
            status, body = fetch(sid, "/openstack/latest/meta_data.json")
            assert status == 200, body
            assert json.loads(body)["uuid"] == sid and two_guests[other] not in body
            assert fetch(sid, "/latest/meta-data/instance-id") == (200, sid)
            assert fetch(sid, "/latest/meta-data/local-ipv4") == (200, ports[h].ip)
            assert fetch(sid, "/openstack/latest/user_data") == (200, f"#!/bin/sh\necho md-{h}\n")
            status, body = fetch(sid, "/openstack/latest/network_data.json")
            assert status == 200 and ports[h].mac in body and ports[other].mac not in body
            assert fetch(sid, "/openstack")[0] == 200

        # a guest that takes another's address gets nothing: nwfilter drops the packet
        (ha, hb) = hosts
        a, b = two_guests[ha], two_guests[hb]
        rc, out = guest.sh(b, f"ip addr add {ports[ha].ip}/24 dev eth0; printf 'GET "
                              "/latest/meta-data/instance-id HTTP/1.0\\r\\n\\r\\n' | nc -w 3 -s "
                              f"{ports[ha].ip} 169.254.169.254 80; ip addr del "
                              f"{ports[ha].ip}/24 dev eth0", timeout=30)
        assert a not in out, out

        # withdrawn on a's host: a gets 404 there; b still its own on its host
        md_acts[ha].withdraw_metadata(MetadataRef(a, nid, ports[ha].ip))
        assert fetch(a, "/openstack/latest/meta_data.json")[0] == 404
        assert fetch(a, "/latest/meta-data/instance-id")[0] == 404
        assert fetch(b, "/latest/meta-data/instance-id") == (200, b)

        # the server dies: the next publish starts it again
        subprocess.run(["kill", "-9", str(server_pids[1])], check=True)
        md_acts[hb].publish_metadata(docs[hb])
        assert metadata.server_pid(md_acts[hb].settings) not in (None, server_pids[1])
        assert fetch(b, "/latest/meta-data/instance-id") == (200, b)

    finally:
        for h in hosts:
            net_acts(h).detach_port(DetachPort(two_guests[h], PortRef(
                ports[h].port_id, nid, ports[h].mac)))
            remove_port_once_unplugged(net_acts(h), PortRef(ports[h].port_id, nid,
                                                            ports[h].mac))
            net_acts(h).remove_network(NetworkRef(nid, vni))

    for h in hosts:  # no server, no nft table, no file left
        s = md_acts[h].settings
        assert netns_processes(netns[h], b"metadata_server") == []
        assert metadata.server_pid(s) is None
        assert metadata.TABLE not in in_netns(netns[h], "nft", "list", "tables")
        assert not metadata.server_dir(s).exists()
        assert not list(metadata.networks_root(s).glob("*/metadata"))
    assert not [p for p in server_pids if Path(f"/proc/{p}").exists()]
