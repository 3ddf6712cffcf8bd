"""The metadata service and floating IPs follow a server launched through the API
(issue 12, items 4 and 5), on the two-host bed, with one guest for every check:

- launched with networks=[{uuid}]: it reads its own meta_data.json from
  169.254.169.254 (served by its host only), and its config drive's
  network_data.json lists its port (the drive is built after the port is made);
- a floating IP associated to it is NATed by its host; after a cold migration and
  confirm the destination NATs it (reached from the outside namespace), the guest
  reads its own documents there (public-ipv4 now the floating IP), the source serves
  nothing of it and NATs nothing; a revert before that brings both back;
- a live migration back: the documents follow again;
- shelved (offloaded) and unshelved onto the other host: NATed and served there only;
- deleted: no document of it on either host, its floating IP DOWN and NATed nowhere.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from activities.hypervisor.network import metadata, metadata_server
from activities.hypervisor.network.activities import NetworkActivities
from tests.integration import guest
from tests.integration.conftest import act, action, delete_server, wait_operation
from tests.multihost.test_floating_ip import (  # noqa: F401 (fixtures)
    external,
    fip_acts,
    reach_from_outside,
    wait_fip,
)
from tests.multihost.test_guest_network import wait_bound
from tests.multihost.test_metadata import fetch
from tests.multihost.test_server_networks import ports_of
from vmflow.contracts.networks import FloatingIpSpec, HostFloatingIps
from vmflow.contracts.reconcile import HostRef
from vmflow.settings import Settings

pytestmark = pytest.mark.guest

NET_NAME, CIDR = "md-servers", "10.96.0.0/24"  # the `network` fixture's
OPEN_PORT = 8080  # the tiny guest's nc server


@pytest.fixture
def open_group(api: httpx.Client) -> Iterator[str]:
    """A group that lets the outside in on the guest's TCP port (the default group
    lets only its members in)."""
    r = api.post("/v1/security-groups", json={"name": "md-open"})
    assert r.status_code == 201, r.text
    gid: str = r.json()["id"]
    r = api.post("/v1/security-group-rules", json={
        "security_group_id": gid, "direction": "ingress", "protocol": "tcp",
        "port_range_min": OPEN_PORT, "port_range_max": OPEN_PORT,
        "remote_ip_prefix": "0.0.0.0/0"})
    assert r.status_code == 201, r.text
    yield gid
    api.delete(f"/v1/security-groups/{gid}")


def doc_file(net_acts: Callable[[str], NetworkActivities], host: str,
             network_id: str, ip: str) -> Path:
    root = metadata.networks_root(net_acts(host).settings)
    return Path(metadata_server.doc_path(root, network_id, ip))


def reads_own(sid: str, ip: str) -> None:
    status, body = fetch(sid, "/openstack/latest/meta_data.json")
    assert status == 200, body
    assert json.loads(body)["uuid"] == sid
    assert fetch(sid, "/latest/meta-data/local-ipv4") == (200, ip)


def migrate(api: httpx.Client, sid: str, dest: str) -> None:
    r = action(api, sid, {"migrate": {"host": dest}})
    assert r.status_code == 202, r.text
    assert wait_operation(api, r.json()["operation"]["id"], timeout=300)[
        "status"] == "succeeded"


def nat(bed: Settings, host: str) -> list[FloatingIpSpec]:
    return fip_acts(bed, host).list_floating_ips(HostRef(host)).nat


def test_documents_and_floating_ip_follow_the_server(
        api: httpx.Client, hosts: list[str], bed: Settings, network: dict[str, Any],
        external: str, open_group: str,  # noqa: F811 (external)
        net_acts: Callable[[str], NetworkActivities]) -> None:
    nid, vni = network["id"], network["provider:segmentation_id"]
    r = api.post("/v1/servers", json={
        "name": "md-a", "image": "tiny", "flavor": "t1.micro", "networks": [{"uuid": nid}],
        "security_groups": [{"name": "md-open"}]})
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    fip_id = None
    try:
        assert wait_operation(api, r.json()["operation"]["id"])["status"] == "succeeded"
        (port,) = ports_of(api, sid)
        ip, mac = port["fixed_ips"][0]["ip_address"], port["mac_address"]
        src = api.get(f"/v1/servers/{sid}").json()["host"]
        (dest,) = set(hosts) - {src}
        wait_bound(sid, "eth0", ip, timeout=90)

        # launch: its host serves its documents, the other host nothing of it
        reads_own(sid, ip)
        assert doc_file(net_acts, src, nid, ip).exists()
        assert not doc_file(net_acts, dest, nid, ip).exists()
        rc, out = guest.sh(sid, "cat /mnt/config/openstack/latest/network_data.json")
        assert rc == 0, out
        (link,) = json.loads(out)["links"]
        assert (link["vif_id"], link["ethernet_mac_address"]) == (port["id"], mac)
        status, body = fetch(sid, "/openstack/latest/network_data.json")
        assert status == 200 and json.loads(body)["links"][0]["vif_id"] == port["id"]

        r = api.post("/v1/floating-ips", json={"floating_network_id": external,
                                               "port_id": port["id"]})
        assert r.status_code == 201, r.text
        fip_id, fip_ip = r.json()["id"], r.json()["floating_ip_address"]
        wait_fip(api, fip_id, "ACTIVE")
        spec = FloatingIpSpec(fip_ip, ip, vni)
        assert nat(bed, src) == [spec]

        # cold migration + revert: back on the source, both with it
        migrate(api, sid, dest)
        assert (nat(bed, dest), nat(bed, src)) == ([spec], [])
        r = action(api, sid, {"revertResize": None})
        assert r.status_code == 202, r.text
        assert wait_operation(api, r.json()["operation"]["id"])["status"] == "succeeded"
        assert (nat(bed, src), nat(bed, dest)) == ([spec], [])
        wait_bound(sid, "eth0", ip, timeout=90)
        reads_own(sid, ip)
        assert not doc_file(net_acts, dest, nid, ip).exists()

        # cold migration + confirm: the floating IP and the documents follow
        migrate(api, sid, dest)
        r = action(api, sid, {"confirmResize": None})
        assert r.status_code == 202, r.text
        assert wait_operation(api, r.json()["operation"]["id"])["status"] == "succeeded"
        assert api.get(f"/v1/servers/{sid}").json()["host"] == dest
        assert (nat(bed, dest), nat(bed, src)) == ([spec], [])
        wait_bound(sid, "eth0", ip, timeout=90)
        reads_own(sid, ip)
        assert fetch(sid, "/latest/meta-data/public-ipv4") == (200, fip_ip)
        assert doc_file(net_acts, dest, nid, ip).exists()
        assert not doc_file(net_acts, src, nid, ip).exists()
        assert reach_from_outside(bed, fip_ip)[f"tcp{OPEN_PORT}"] == "OK"

        # a live migration back: the documents follow again
        r = action(api, sid, {"os-migrateLive": {"host": src}})
        assert r.status_code == 202, r.text
        assert wait_operation(api, r.json()["operation"]["id"], timeout=300)[
            "status"] == "succeeded"
        assert api.get(f"/v1/servers/{sid}").json()["host"] == src
        reads_own(sid, ip)
        assert doc_file(net_acts, src, nid, ip).exists()
        assert not doc_file(net_acts, dest, nid, ip).exists()
        assert (nat(bed, src), nat(bed, dest)) == ([spec], [])

        # shelved (offloaded at once on this bed), unshelved onto the other host: its
        # floating IP NATed by that host only, its documents served there only
        assert act(api, sid, {"shelve": None})["status"] == "succeeded"
        assert (nat(bed, src), nat(bed, dest)) == ([], [])
        assert act(api, sid, {"unshelve": {"host": dest}})["status"] == "succeeded"
        assert (nat(bed, dest), nat(bed, src)) == ([spec], [])
        wait_bound(sid, "eth0", ip, timeout=90)
        reads_own(sid, ip)
        assert not doc_file(net_acts, src, nid, ip).exists()
        assert reach_from_outside(bed, fip_ip)[f"tcp{OPEN_PORT}"] == "OK"

        # delete: nothing of it served or NATed anywhere; its floating IP DOWN
        assert delete_server(api, sid)["status"] == "succeeded"
        for h in hosts:
            assert not doc_file(net_acts, h, nid, ip).exists()
            assert fip_acts(bed, h).list_floating_ips(HostRef(h)) == HostFloatingIps(h, [], [])
        fip = api.get(f"/v1/floating-ips/{fip_id}").json()
        assert (fip["status"], fip["port_id"]) == ("DOWN", None)
    finally:
        if fip_id is not None:
            api.delete(f"/v1/floating-ips/{fip_id}")
        if api.get(f"/v1/servers/{sid}").status_code == 200:
            delete_server(api, sid)
        time.sleep(0.5)
