"""Servers on a network through the API (issue 12): two servers launched with
networks=[{uuid}] of a network made through the API land on the two hosts, get their
allocated addresses by DHCP from their own host, reach each other (the default group
lets members in), and `addresses` shows them; deleting them leaves no port, filter
or DHCP reservation. A launch cancelled after its ports were made and plugged leaves
none either."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from activities.hypervisor.network import dhcp
from activities.hypervisor.network.activities import NetworkActivities
from tests.integration import guest
from tests.integration.conftest import delete_server, wait_operation
from tests.multihost.test_guest_network import wait_bound
from vmflow.contracts.reconcile import HostRef
from vmflow.names import instance_workflow_id
from vmflow.settings import Settings
from vmflow.temporal import connect

pytestmark = pytest.mark.guest

NET_NAME, CIDR = "mh-servers", "10.93.0.0/24"


def launch_on(api: httpx.Client, name: str, network_id: str) -> tuple[str, str]:
    r = api.post("/v1/servers", json={"name": name, "image": "tiny", "flavor": "t1.micro",
                                      "networks": [{"uuid": network_id}]})
    assert r.status_code == 202, r.text
    return r.json()["server"]["id"], r.json()["operation"]["id"]


def ports_of(api: httpx.Client, server_id: str) -> list[dict[str, Any]]:
    ports: list[dict[str, Any]] = api.get("/v1/ports", params={"device_id": server_id}
                                          ).json()["ports"]
    return ports


def host_leftovers(acts: NetworkActivities, host: str, network_id: str,
                   port_ids: set[str], macs: set[str]) -> dict[str, Any]:
    """What of these ports is still on the host: filters, DHCP hosts files, leases."""
    listed = acts.list_networks(HostRef(host))
    d = dhcp.state_dir(acts.settings, network_id)
    return {
        "filters": sorted(set(listed.port_filters) & port_ids),
        "reservations": sorted(set(dhcp.port_ids(d)) & port_ids) if d.is_dir() else [],
        "leases": [le for n in listed.networks for le in n.leases
                   if le.split()[0] in macs],
    }


def test_two_servers_on_one_network(api: httpx.Client, hosts: list[str],
                                    bed: Settings, network: dict[str, Any],
                                    net_acts: Callable[[str], NetworkActivities]
                                    ) -> None:
    ids: list[str] = []
    try:
        for i in range(2):  # one after the other: the weigher then sees the first's claim
            sid, op = launch_on(api, f"nic-{i}", network["id"])
            ids.append(sid)
            assert wait_operation(api, op)["status"] == "succeeded"
        servers = {sid: api.get(f"/v1/servers/{sid}").json() for sid in ids}
        assert {s["host"] for s in servers.values()} == set(hosts)  # the weigher spreads
        ip, mac = {}, {}
        for sid, s in servers.items():
            (entry,) = s["addresses"][NET_NAME]
            assert entry["version"] == 4 and entry["OS-EXT-IPS:TYPE"] == "fixed"
            ip[sid], mac[sid] = entry["addr"], entry["OS-EXT-IPS-MAC:mac_addr"]
            (port,) = ports_of(api, sid)
            assert port["device_owner"] == "compute:nova" and port["mac_address"] == mac[sid]
            assert port["fixed_ips"][0]["ip_address"] == ip[sid]
            assert (port["status"], port["binding:host_id"]) == ("ACTIVE", s["host"])
        for sid in ids:
            print(wait_bound(sid, "eth0", ip[sid], timeout=90))
        a, b = ids
        for src, dst in ((a, ip[b]), (b, ip[a])):  # across the hosts; the default group
            rc, out = guest.sh(src, f"ping -c 3 -W 2 {dst}", timeout=30)
            assert rc == 0, out
            rc, out = guest.sh(src, f"echo | nc -w 3 {dst} 8080")
            assert out.strip() == "vmflow-tiny", (rc, out)
        port_ids = {p["id"] for sid in ids for p in ports_of(api, sid)}
        for sid in ids:
            assert delete_server(api, sid)["status"] == "succeeded"
        assert all(ports_of(api, sid) == [] for sid in ids)
        left = api.get("/v1/ports", params={"network_id": network["id"]}).json()["ports"]
        assert [p for p in left if p["id"] in port_ids] == []
        for h in hosts:
            assert host_leftovers(net_acts(h), h, network["id"], port_ids,
                                  set(mac.values())) == {
                "filters": [], "reservations": [], "leases": []}
    finally:
        for sid in ids:
            if api.get(f"/v1/servers/{sid}").status_code == 200:
                delete_server(api, sid)


def test_cancelled_launch_leaves_no_port(api: httpx.Client, hosts: list[str],
                                         bed: Settings, network: dict[str, Any],
                                         net_acts: Callable[[str], NetworkActivities]
                                         ) -> None:
    """Cancelled while it waits for the guest agent: its port was made, plugged on the
    host and in the domain; compensation takes all of it away."""
    sid, op_id = launch_on(api, "nic-cancel", network["id"])
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            op = api.get(f"/v1/operations/{op_id}").json()
            if op["step"] == "waiting for the guest agent" or op["status"] != "running":
                break
            time.sleep(0.2)
        assert op["step"] == "waiting for the guest agent", op
        (port,) = ports_of(api, sid)
        host = api.get(f"/v1/servers/{sid}").json()["host"]
        assert host_leftovers(net_acts(host), host, network["id"], {port["id"]}, set())[
            "filters"] == [port["id"]]

        async def cancel() -> None:
            client = await connect(bed)
            await client.get_workflow_handle(instance_workflow_id(sid)).cancel()

        asyncio.run(cancel())
        assert wait_operation(api, op_id)["status"] == "compensated"
        server = api.get(f"/v1/servers/{sid}").json()
        assert server["status"] == "ERROR" and server["addresses"] == {}
        assert ports_of(api, sid) == []
        assert api.get(f"/v1/ports/{port['id']}").status_code == 404
        for h in hosts:
            assert host_leftovers(net_acts(h), h, network["id"], {port["id"]},
                                  {port["mac_address"]}) == {
                "filters": [], "reservations": [], "leases": []}
    finally:
        assert delete_server(api, sid)["status"] == "succeeded"


def test_live_migration_keeps_the_nic(api: httpx.Client, hosts: list[str], bed: Settings,
                                      network: dict[str, Any],
                                      net_acts: Callable[[str], NetworkActivities]
                                      ) -> None:
    """The destination has the network and the port's filter before the guest comes;
    after the move the port is bound there, the guest keeps its address and is reached
    from the other guest, and the source keeps no filter or reservation of it."""
    ids: list[str] = []
    try:
        for i in range(2):
            sid, op = launch_on(api, f"nic-lm-{i}", network["id"])
            ids.append(sid)
            assert wait_operation(api, op)["status"] == "succeeded"
        a, b = ids
        (pa,) = ports_of(api, a)
        (pb,) = ports_of(api, b)
        ip_a, ip_b = pa["fixed_ips"][0]["ip_address"], pb["fixed_ips"][0]["ip_address"]
        wait_bound(a, "eth0", ip_a, timeout=90)
        wait_bound(b, "eth0", ip_b, timeout=90)
        src = api.get(f"/v1/servers/{a}").json()["host"]
        (dest,) = set(hosts) - {src}
        r = api.post(f"/v1/servers/{a}/action", json={"os-migrateLive": {"host": dest}})
        assert r.status_code == 202, r.text
        assert wait_operation(api, r.json()["operation"]["id"])["status"] == "succeeded"
        assert api.get(f"/v1/servers/{a}").json()["host"] == dest
        (moved,) = ports_of(api, a)
        assert (moved["status"], moved["binding:host_id"]) == ("ACTIVE", dest)
        rc, out = guest.sh(b, f"ping -c 3 -W 2 {ip_a}", timeout=30)
        assert rc == 0, out
        rc, out = guest.sh(a, f"echo | nc -w 3 {ip_b} 8080")
        assert out.strip() == "vmflow-tiny", (rc, out)
        assert host_leftovers(net_acts(src), src, network["id"], {pa["id"]}, set())[
            "filters"] == []
        assert host_leftovers(net_acts(dest), dest, network["id"], {pa["id"]}, set())[
            "filters"] == [pa["id"]]
    finally:
        for sid in ids:
            assert delete_server(api, sid)["status"] == "succeeded"
