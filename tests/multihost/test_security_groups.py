"""Security groups through the API on running guests, and the reconciler's network pass,
on the two-host bed (issue 12, items 3 and 8).

Two guests (one per host, launched through the API) get a NIC on one network whose
network, subnet, group and ports are made through the API (ports bound to the guests'
hosts); the hosts' side of the network is set up with the in-process host activities
as tests/multihost/test_guest_network.py does. Then everything goes through vmflow:
a rule POSTed reaches the running guest's filter by SyncSecurityGroup, a DELETE takes
it away; a vxlan, a port filter deleted behind vmflow's back come back with a
reconcile run, and a bridge and a filter vmflow has no row for are removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import subprocess
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import libvirt
import pytest
from sqlmodel import Session

from activities.control.network_reconcile import network_spec
from activities.control.port_rules import port_spec
from activities.hypervisor.libvirt import filter_xml
from activities.hypervisor.network import kernel
from activities.hypervisor.network.activities import NetworkActivities
from tests.multihost.test_guest_network import (
    reach,
    remove_port_once_unplugged,
    wait_bound,
)
from vmflow import db, hostbed
from vmflow.contracts.networks import (
    AttachPort,
    DetachPort,
    NetworkRef,
    NetworkSpec,
    PortRef,
    PortSpec,
)
from vmflow.contracts.reconcile import HostRef, ReconcileLedgerRequest, ReconcileLedgerResult
from vmflow.contracts.security_groups import SecurityGroupSyncResult
from vmflow.names import CONTROL_QUEUE, security_group_workflow_id
from vmflow.network_models import Network, Port
from vmflow.settings import Settings
from vmflow.temporal import connect

pytestmark = pytest.mark.guest

CIDR, GATEWAY = "10.93.0.0/24", "10.93.0.1"


def ok(r: httpx.Response, code: int = 201) -> dict[str, Any]:
    assert r.status_code == code, r.text
    body: dict[str, Any] = r.json() if r.content else {}
    return body


def sync_result(bed: Settings, group_id: str) -> SecurityGroupSyncResult:
    """The last run of the group's sync, once it has ended."""
    async def result() -> SecurityGroupSyncResult:
        client = await connect(bed)
        handle = client.get_workflow_handle(security_group_workflow_id(group_id),
                                            result_type=SecurityGroupSyncResult)
        try:
            return await asyncio.wait_for(handle.result(), 120)
        except TimeoutError:
            desc = await handle.describe()
            pending = [(a.activity_type.name, a.attempt, a.last_failure.message)
                       for a in desc.raw_description.pending_activities]
            raise AssertionError(f"sync of {group_id} still {desc.status}: {pending}") from None
    return asyncio.run(result())


def reconcile(bed: Settings, hosts: list[str]) -> ReconcileLedgerResult:
    """One ReconcileLedger run over the hosts, with no grace: everything is settled."""
    async def run() -> ReconcileLedgerResult:
        client = await connect(bed)
        return await client.execute_workflow(
            "ReconcileLedger", ReconcileLedgerRequest(hosts, 0.0),
            id=f"test-reconcile-{uuid.uuid4()}", task_queue=CONTROL_QUEUE,
            result_type=ReconcileLedgerResult, execution_timeout=timedelta(seconds=600))
    return asyncio.run(run())


def specs(bed: Settings, port_ids: list[str], host: str) -> tuple[NetworkSpec, list[PortSpec]]:
    """The network and the ports as the control side says them (what the sync and the
    reconciler send the hosts)."""
    with Session(db.engine_for(bed.db_url), expire_on_commit=False) as s:
        ports = [s.get(Port, p) for p in port_ids]
        assert all(ports)
        net = s.get(Network, ports[0].network_id)  # type: ignore[union-attr]
        assert net is not None
        spec = network_spec(s, net, host)
        out = [port_spec(s, p) for p in ports]  # type: ignore[arg-type]
    assert spec is not None and all(out)
    return spec, out  # type: ignore[return-value]


def test_rules_through_the_api_and_the_network_reconciler(
        bed: Settings, api: httpx.Client, hosts: list[str], two_guests: dict[str, str],
        net_acts: Callable[[str], NetworkActivities],
        conn: Callable[[str], libvirt.virConnect]) -> None:
    ha, hb = hosts
    a, b = two_guests[ha], two_guests[hb]
    net = ok(api.post("/v1/networks", json={"name": "sg-net"}))
    ok(api.post("/v1/subnets", json={"network_id": net["id"], "cidr": CIDR,
                                     "gateway_ip": GATEWAY}))
    group = ok(api.post("/v1/security-groups", json={"name": "sg-web"}))  # egress only
    ports = {h: ok(api.post("/v1/ports", json={
        "network_id": net["id"], "security_groups": [group["id"]], "device_id": sid,
        "binding:host_id": h})) for h, sid in ((ha, a), (hb, b))}
    spare = ok(api.post("/v1/ports", json={"network_id": net["id"], "binding:host_id": hb}))
    ip = {h: p["fixed_ips"][0]["ip_address"] for h, p in ports.items()}
    vni: int | None = None
    stray_net = NetworkSpec(str(uuid.uuid4()), random.randint(900001, 990000), "10.94.0.0/24",
                            "10.94.0.1")
    stray_port = str(uuid.uuid4())
    attached: list[tuple[str, str, PortSpec]] = []
    try:
        for h, sid in ((ha, a), (hb, b)):
            spec, (port,) = specs(bed, [ports[h]["id"]], h)
            vni = spec.vni
            net_acts(h).ensure_network(spec)
            net_acts(h).attach_port(AttachPort(sid, port))
            attached.append((h, sid, port))
        _spec, (spare_spec,) = specs(bed, [spare["id"]], hb)
        net_acts(hb).ensure_port(spare_spec)  # bound to hb, on no guest
        wait_bound(a, "eth0", ip[ha])
        wait_bound(b, "eth0", ip[hb])
        assert reach(a, ip[hb])["tcp8080"] == "BLOCKED"  # no ingress rule in the group

        # a rule through the API: the sync redefines both members' filters in place
        t0 = time.monotonic()
        rule = ok(api.post("/v1/security-group-rules", json={
            "security_group_id": group["id"], "direction": "ingress", "protocol": "tcp",
            "port_range_min": 8080, "port_range_max": 8080, "remote_group_id": group["id"]}))
        done = sync_result(bed, group["id"])
        print(f"rule applied by the sync in {time.monotonic() - t0:.2f} s: {done}")
        assert sorted(done.applied) == sorted(f"{ports[h]['id']}@{h}" for h in hosts)
        assert done.failed == []
        assert reach(a, ip[hb])["tcp8080"] == "OK"
        assert reach(b, ip[ha])["tcp8080"] == "OK"
        assert reach(a, ip[hb])["ping"] == "BLOCKED"  # only what the rule allows

        ok(api.delete(f"/v1/security-group-rules/{rule['id']}"), 204)
        done = sync_result(bed, group["id"])
        assert len(done.applied) == 2 and done.failed == []
        assert reach(a, ip[hb])["tcp8080"] == "BLOCKED"

        # behind vmflow's back: hb's vxlan and the spare port's filter deleted; a bridge
        # and a filter vmflow has no row for made on ha
        assert vni is not None
        subprocess.run(["ip", "-n", hostbed.host(bed, hb).netns, "link", "del",
                        kernel.vxlan_name(vni)], check=True)
        conn(hb).nwfilterLookupByName(filter_xml.filter_name(spare["id"])).undefine()
        ok(api.post("/v1/security-group-rules", json={
            "security_group_id": group["id"], "direction": "ingress", "protocol": "icmp",
            "remote_ip_prefix": CIDR}))
        sync_result(bed, group["id"])
        assert reach(a, ip[hb])["ping"] == "BLOCKED"  # no way across the hosts now
        net_acts(ha).ensure_network(stray_net)
        conn(ha).nwfilterDefineXML(filter_xml.build(stray_port, []))

        result = reconcile(bed, hosts)
        print("\n".join(result.details))
        assert result.failed == 0, result.details
        listed = {h: net_acts(h).list_networks(HostRef(h)) for h in hosts}
        assert [(n.network_id, n.bridge, n.vxlan, n.dhcp_running)
                for n in listed[hb].networks] == [(net["id"], True, True, True)]
        assert spare["id"] in listed[hb].port_filters
        assert [n.network_id for n in listed[ha].networks] == [net["id"]]
        assert stray_port not in listed[ha].port_filters
        assert kernel.bridge_name(stray_net.vni) not in kernel.links(net_acts(ha).settings)
        assert reach(a, ip[hb])["ping"] == "OK"  # joined again over the new vxlan
        again = reconcile(bed, hosts)  # whole now: a second run finds nothing to do
        assert not [d for d in again.details if " networks: " in d], again.details
    finally:
        for h, sid, port in attached:
            net_acts(h).detach_port(DetachPort(sid, PortRef(port.port_id, port.network_id,
                                                            port.mac)))
        for h, _sid, port in attached:
            remove_port_once_unplugged(net_acts(h), PortRef(port.port_id, port.network_id,
                                                            port.mac))
        net_acts(hb).remove_port(PortRef(spare["id"], net["id"], spare["mac_address"]))
        net_acts(ha).remove_network(NetworkRef(stray_net.network_id, stray_net.vni))
        with contextlib.suppress(libvirt.libvirtError):
            conn(ha).nwfilterLookupByName(filter_xml.filter_name(stray_port)).undefine()
        for h in hosts:
            if vni is not None:
                net_acts(h).remove_network(NetworkRef(net["id"], vni))
        for p in [*ports.values(), spare]:
            api.delete(f"/v1/ports/{p['id']}")
        api.delete(f"/v1/networks/{net['id']}")
        api.delete(f"/v1/security-groups/{group['id']}")
