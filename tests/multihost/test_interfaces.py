"""Interface attach/detach on real guests (issue 12): a NIC attached to a running
server through the API gets its DHCP address in the guest, and a detach takes it out
again with nothing left on the host (no filter, DHCP reservation or lease) and no
port; an attach whose host step never ran (its worker stopped) and that is cancelled
after its port was made leaves no port either; kill -9 of the hypervisor worker in the
middle of an attach: the workflow ends on the restarted worker, and once detached
nothing of the port is left."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any
from xml.etree import ElementTree

import httpx
import libvirt
import pytest

from activities.hypervisor.network.activities import NetworkActivities
from tests.integration import guest
from tests.integration.conftest import delete_server, wait_operation
from tests.multihost.conftest import launch, wait_hosts_up
from tests.multihost.test_guest_network import wait_bound
from tests.multihost.test_server_networks import host_leftovers, ports_of
from vmflow import hostbed, stack
from vmflow.names import instance_workflow_id
from vmflow.settings import Settings
from vmflow.temporal import connect

pytestmark = pytest.mark.guest

NET_NAME, CIDR = "mh-ifaces", "10.94.0.0/24"
CLEAN: dict[str, list[str]] = {"filters": [], "reservations": [], "leases": []}


@pytest.fixture
def server(api: httpx.Client) -> Iterator[dict[str, Any]]:
    """A running server without NICs: the attached one is its eth0."""
    s = launch(api, "ifaces")
    try:
        yield s
    finally:
        if api.get(f"/v1/servers/{s['id']}").status_code == 200:
            assert delete_server(api, s["id"])["status"] == "succeeded"


def attach(api: httpx.Client, sid: str, net_id: str) -> dict[str, Any]:
    r = api.post(f"/v1/servers/{sid}/os-interface",
                 json={"interfaceAttachment": {"net_id": net_id}})
    assert r.status_code == 202, r.text
    body: dict[str, Any] = r.json()
    return body


def detach(api: httpx.Client, sid: str, port_id: str) -> dict[str, Any]:
    r = api.delete(f"/v1/servers/{sid}/os-interface/{port_id}")
    assert r.status_code == 202, r.text
    return wait_operation(api, r.json()["operation"]["id"])


def domain_macs(conn: libvirt.virConnect, sid: str, flags: int = 0) -> set[str]:
    xml = ElementTree.fromstring(conn.lookupByUUIDString(sid).XMLDesc(flags))
    return {m.get("address", "") for m in xml.iterfind("./devices/interface/mac")}


def wait_step(api: httpx.Client, op_id: str, steps: set[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while (op := api.get(f"/v1/operations/{op_id}").json())["step"] not in steps:
        assert op["status"] == "running", op
        assert time.monotonic() < deadline, op
        time.sleep(0.02)


def assert_gone(api: httpx.Client, acts: NetworkActivities, host: str, network_id: str,
                sid: str, port_id: str, mac: str, conn: libvirt.virConnect) -> None:
    assert api.get(f"/v1/ports/{port_id}").status_code == 404
    assert api.get(f"/v1/servers/{sid}/os-interface").json() == {"interfaceAttachments": []}
    assert host_leftovers(acts, host, network_id, {port_id}, {mac}) == CLEAN
    assert mac not in domain_macs(conn, sid)
    assert mac not in domain_macs(conn, sid, libvirt.VIR_DOMAIN_XML_INACTIVE)


def test_attach_then_detach_on_a_running_guest(
        api: httpx.Client, hosts: list[str], network: dict[str, Any], server: dict[str, Any],
        net_acts: Callable[[str], NetworkActivities],
        conn: Callable[[str], libvirt.virConnect]) -> None:
    sid, host = server["id"], server["host"]
    accepted = attach(api, sid, network["id"])
    port_id = accepted["interfaceAttachment"]["port_id"]
    assert wait_operation(api, accepted["operation"]["id"])["status"] == "succeeded"
    (shown,) = api.get(f"/v1/servers/{sid}/os-interface").json()["interfaceAttachments"]
    assert (shown["port_id"], shown["port_state"]) == (port_id, "ACTIVE")
    ip, mac = shown["fixed_ips"][0]["ip_address"], shown["mac_addr"]
    (port,) = ports_of(api, sid)
    assert port["binding:host_id"] == host
    assert mac in domain_macs(conn(host), sid)  # live
    assert mac in domain_macs(conn(host), sid, libvirt.VIR_DOMAIN_XML_INACTIVE)  # and kept
    print(wait_bound(sid, "eth0", ip, timeout=90))
    rc, out = guest.sh(sid, "ping -c 2 -W 2 10.94.0.1", timeout=30)  # the gateway
    assert rc == 0, out
    assert api.get(f"/v1/servers/{sid}").json()["addresses"][NET_NAME][0]["addr"] == ip

    assert detach(api, sid, port_id)["status"] == "succeeded"
    assert_gone(api, net_acts(host), host, network["id"], sid, port_id, mac, conn(host))
    rc, out = guest.sh(sid, "ip -o link show eth0")
    assert rc != 0, out  # the NIC is out of the guest
    server_now = api.get(f"/v1/servers/{sid}").json()
    assert (server_now["status"], server_now["addresses"]) == ("ACTIVE", {})


def test_cancelled_attach_leaves_no_port(
        api: httpx.Client, bed: Settings, network: dict[str, Any], server: dict[str, Any],
        net_acts: Callable[[str], NetworkActivities],
        conn: Callable[[str], libvirt.virConnect]) -> None:
    """The host's worker frozen (SIGSTOP): the port is made, the plug waits; cancelled
    there, the undo (on the thawed worker) takes the port and anything on the host."""
    sid, host = server["id"], server["host"]
    worker = stack.hypervisor_component(bed, host)
    assert stack.kill_component(bed, worker, signal.SIGSTOP) is not None
    try:
        accepted = attach(api, sid, network["id"])
        op_id, port_id = accepted["operation"]["id"], accepted["interfaceAttachment"]["port_id"]
        wait_step(api, op_id, {"plugging the port"})
        made = api.get(f"/v1/ports/{port_id}")
        assert made.status_code == 200 and made.json()["device_id"] == sid  # it was made
        mac = made.json()["mac_address"]

        async def cancel() -> None:
            client = await connect(bed)
            await client.get_workflow_handle(instance_workflow_id(sid)).cancel()

        asyncio.run(cancel())
    finally:
        stack.kill_component(bed, worker, signal.SIGCONT)
        wait_hosts_up(api, hostbed.host_names(bed))
    op = wait_operation(api, op_id)
    assert op["status"] == "compensated", op
    assert_gone(api, net_acts(host), host, network["id"], sid, port_id, mac, conn(host))
    shown = api.get(f"/v1/servers/{sid}").json()
    assert (shown["status"], shown["task_state"]) == ("ACTIVE", None)


def test_kill_9_of_the_worker_mid_attach(
        api: httpx.Client, bed: Settings, network: dict[str, Any], server: dict[str, Any],
        net_acts: Callable[[str], NetworkActivities],
        conn: Callable[[str], libvirt.virConnect]) -> None:
    """Frozen as the NIC's hot-plug step starts, then kill -9: the step is retried on the
    restarted worker (or undone), and the port either works or is gone; after a
    detach nothing of it is left on the host."""
    sid, host = server["id"], server["host"]
    worker = stack.hypervisor_component(bed, host)
    accepted = attach(api, sid, network["id"])
    op_id, port_id = accepted["operation"]["id"], accepted["interfaceAttachment"]["port_id"]
    try:
        wait_step(api, op_id, {"attaching the NIC"})
        stack.kill_component(bed, worker, signal.SIGSTOP)
        print("killed during:", api.get(f"/v1/operations/{op_id}").json()["step"])
        mac = api.get(f"/v1/ports/{port_id}").json()["mac_address"]
        assert stack.kill_component(bed, worker) is not None
    finally:
        stack.ensure_component(bed, worker)
        wait_hosts_up(api, hostbed.host_names(bed))
    op = wait_operation(api, op_id, timeout=300)
    assert op["status"] in ("succeeded", "compensated"), op
    if op["status"] == "succeeded":
        (shown,) = api.get(f"/v1/servers/{sid}/os-interface").json()["interfaceAttachments"]
        assert shown["mac_addr"] == mac
        ip = shown["fixed_ips"][0]["ip_address"]
        assert domain_macs(conn(host), sid) == {mac}  # one NIC, not two
        wait_bound(sid, "eth0", ip, timeout=90)
        assert detach(api, sid, port_id)["status"] == "succeeded"
    assert_gone(api, net_acts(host), host, network["id"], sid, port_id, mac, conn(host))
    assert api.get(f"/v1/servers/{sid}").json()["task_state"] is None
