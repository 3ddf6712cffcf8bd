"""A launch's NICs (issue 12): the API checks `networks` and `security_groups` and
writes the requests (bad input: 4xx and nothing made); the launch's control step
(activities/control/ports.py, run here in-process on the same database, as the
control worker runs it) makes the ports, binds given ones, describes what a host
needs, and releases them; the server view shows Nova's `addresses`."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlmodel import select
from temporalio.exceptions import ApplicationError

from activities.control.ports import PortActivities
from tests.api.conftest import Caller, World, counts, make_caller, session
from tests.api.net_support import make_net, make_port, net_counts
from vmflow import settings
from vmflow.contracts.instances import InstanceRef
from vmflow.contracts.networks import SecurityGroupRule
from vmflow.contracts.ports import GroupRefs, PortBinding
from vmflow.network_models import InstanceNic, IpAllocation, Port, PortSecurityGroup


@pytest.fixture
def ports_acts(vmflow_home: settings.Settings) -> PortActivities:
    return PortActivities(vmflow_home)


async def member(api: httpx.AsyncClient, world: World, name: str) -> Caller:
    r = await api.post("/v1/projects", headers=world.admin.h, json={"name": name})
    assert r.status_code == 201, r.text
    return await make_caller(api, world.admin.h, f"u-{name}", name, "member")


async def launch(api: httpx.AsyncClient, who: Caller, **body: Any) -> httpx.Response:
    return await api.post("/v1/servers", headers=who.h, json={
        "name": "nic-vm", "image": "cirros", "flavor": "m1.tiny", **body})


def nic_rows(instance_id: str) -> list[InstanceNic]:
    with session() as s:
        return list(s.exec(select(InstanceNic).where(InstanceNic.instance_id == instance_id)))


def all_nic_rows() -> int:
    with session() as s:
        return len(list(s.exec(select(InstanceNic))))


async def test_launch_makes_binds_shows_and_releases_ports(
        api: httpx.AsyncClient, world: World, ports_acts: PortActivities) -> None:
    who = await member(api, world, "nics-a")
    net, _ = await make_net(api, who, "172.21.0.0/24", name="front")
    r = await launch(api, who, networks=[{"uuid": net["id"]}, {"uuid": net["id"],
                                                             "fixed_ip": "172.21.0.50"}])
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    assert r.json()["server"]["addresses"] == {}  # no port yet: the launch makes them
    rows = sorted(nic_rows(sid), key=lambda n: n.position)
    assert [(n.network_id, n.fixed_ip, n.port_id, n.preserve_on_delete) for n in rows] == [
        (net["id"], None, None, False), (net["id"], "172.21.0.50", None, False)]
    groups = (await api.get("/v1/security-groups", headers=who.h)).json()["security_groups"]
    (default,) = [g["id"] for g in groups if g["name"] == "default"]
    assert all(n.security_group_ids == [default] for n in rows)

    ref = InstanceRef(sid)
    ports_acts.create_instance_ports(ref)
    ports_acts.create_instance_ports(ref)  # again (a retried activity): nothing doubles
    with session() as s:
        ports = list(s.exec(select(Port).where(Port.device_id == sid)))
        assert len(ports) == 2
        assert {p.device_owner for p in ports} == {"compute:nova"}
        assert {g for p in ports for g in s.exec(select(PortSecurityGroup.security_group_id)
                .where(PortSecurityGroup.port_id == p.id))} == {default}
    view = (await api.get(f"/v1/servers/{sid}", headers=who.h)).json()
    entries = view["addresses"]["front"]
    assert [e["addr"] for e in entries] == ["172.21.0.2", "172.21.0.50"]
    assert all(e["version"] == 4 and e["OS-EXT-IPS:TYPE"] == "fixed" for e in entries)
    assert {e["OS-EXT-IPS-MAC:mac_addr"] for e in entries} == {p.mac_address for p in ports}
    listed = (await api.get("/v1/servers", headers=who.h)).json()["servers"]
    assert [s["addresses"] for s in listed if s["id"] == sid] == [view["addresses"]]

    net_view = ports_acts.instance_networking(ref)
    assert [n.network_id for n in net_view.networks] == [net["id"]]
    assert net_view.networks[0].cidr == "172.21.0.0/24"
    assert [p.ip for p in net_view.ports] == ["172.21.0.2", "172.21.0.50"]
    assert [n.ip for n in net_view.nics] == ["172.21.0.2", "172.21.0.50"]
    # the default group: any egress; ingress from its members, expanded to their /32s
    rules = net_view.ports[0].security_group_rules
    assert SecurityGroupRule("egress", "IPv4") in rules
    assert {r.remote_ip_prefix for r in rules if r.direction == "ingress"
            and r.ethertype == "IPv4"} == {"172.21.0.2/32", "172.21.0.50/32"}

    ports_acts.bind_instance_ports(PortBinding(sid, "hv-x"))
    port = (await api.get(f"/v1/ports/{ports[0].id}", headers=who.h)).json()
    assert (port["status"], port["binding:host_id"]) == ("ACTIVE", "hv-x")
    # a member came or went: the plugged ports whose rules name the group as remote
    assert ports_acts.instance_groups(ref) == GroupRefs([default])
    peers = ports_acts.remote_group_ports(GroupRefs([default])).ports
    assert sorted((p.host, p.port.ip) for p in peers) == [("hv-x", "172.21.0.2"),
                                                          ("hv-x", "172.21.0.50")]
    assert ports_acts.remote_group_ports(GroupRefs(["no-such-group"])).ports == []
    ports_acts.bind_instance_ports(PortBinding(sid, ""))
    assert ports_acts.remote_group_ports(GroupRefs([default])).ports == []  # unplugged
    port = (await api.get(f"/v1/ports/{ports[0].id}", headers=who.h)).json()
    assert (port["status"], port["binding:host_id"]) == ("DOWN", "")

    ports_acts.release_instance_ports(ref)
    ports_acts.release_instance_ports(ref)  # again: nothing left to do
    with session() as s:
        assert list(s.exec(select(Port).where(Port.device_id == sid))) == []
        assert list(s.exec(select(IpAllocation).where(
            IpAllocation.network_id == net["id"]))) == []  # addresses freed
    assert nic_rows(sid) == []
    assert (await api.get(f"/v1/servers/{sid}", headers=who.h)).json()["addresses"] == {}


async def test_a_given_port_is_bound_then_unbound_not_deleted(
        api: httpx.AsyncClient, world: World, ports_acts: PortActivities) -> None:
    who = await member(api, world, "nics-b")
    net, _ = await make_net(api, who, "172.22.0.0/24")
    port = await make_port(api, who, net["id"])
    first = await launch(api, who, networks=[{"port": port["id"]}])
    second = await launch(api, who, networks=[{"port": port["id"]}])  # not bound yet
    assert first.status_code == second.status_code == 202
    a, b = first.json()["server"]["id"], second.json()["server"]["id"]
    assert [n.preserve_on_delete for n in nic_rows(a)] == [True]
    ports_acts.create_instance_ports(InstanceRef(a))
    ports_acts.create_instance_ports(InstanceRef(a))  # again: still its own
    shown = (await api.get(f"/v1/ports/{port['id']}", headers=who.h)).json()
    assert (shown["device_id"], shown["device_owner"]) == (a, "compute:nova")
    # the other launch checked before the bind; its control step finds it taken
    with pytest.raises(ApplicationError) as e:
        ports_acts.create_instance_ports(InstanceRef(b))
    assert e.value.type == "PortInUse" and e.value.non_retryable
    ports_acts.release_instance_ports(InstanceRef(b))  # its undo: a's port untouched
    assert (await api.get(f"/v1/ports/{port['id']}", headers=who.h)).json()["device_id"] == a
    # now the API sees it in use
    third = await launch(api, who, networks=[{"port": port["id"]}])
    assert third.status_code == 409 and third.json()["error"]["type"] == "PortInUse"

    ports_acts.release_instance_ports(InstanceRef(a))
    shown = (await api.get(f"/v1/ports/{port['id']}", headers=who.h)).json()
    assert (shown["device_id"], shown["device_owner"], shown["status"]) == ("", "", "DOWN")
    assert shown["fixed_ips"] == port["fixed_ips"]  # kept, with its address


async def test_bad_networks_make_nothing(api: httpx.AsyncClient, world: World) -> None:
    who = await member(api, world, "nics-c")
    other = await member(api, world, "nics-d")
    net, _ = await make_net(api, who, "172.23.0.0/29",  # pool: .2-.6
                            allocation_pools=[{"start": "172.23.0.2", "end": "172.23.0.3"}])
    bare, _ = await make_net(api, who, None)
    theirs, _ = await make_net(api, other, "172.24.0.0/24")
    await make_port(api, who, net["id"])  # takes 172.23.0.2: one address left
    used = await make_port(api, who, net["id"], device_id="x", device_owner="compute:nova")
    r = await api.post("/v1/ports", headers=who.h, json={"network_id": net["id"]})
    assert r.status_code == 409  # the pool is exhausted
    before, nets, nics = counts(), net_counts(), all_nic_rows()
    cases: list[tuple[Any, int, str | None]] = [
        ("everything", 400, None),
        ([{"uuid": "no-such-net"}], 404, "NetworkNotFound"),
        ([{"uuid": theirs["id"]}], 404, "NetworkNotFound"),
        ([{"uuid": net["id"], "port": used["id"]}], 400, None),
        ([{"port": used["id"]}], 409, "PortInUse"),
        ([{"uuid": bare["id"]}], 400, "NetworkWithoutSubnet"),
        ([{"uuid": net["id"]}], 409, "IpAddressGenerationFailure"),
        ([{"uuid": net["id"], "fixed_ip": "172.23.0.5"}], 400, None),  # outside the pool
        ([{"uuid": net["id"], "fixed_ip": "172.23.0.2"}], 409, "IpAddressAlreadyAllocated"),
        ([{"uuid": net["id"], "fixed_ip": "not-an-ip"}], 400, None),
    ]
    for networks, code, kind in cases:
        r = await launch(api, who, networks=networks)
        assert r.status_code == code, (networks, r.text)
        if kind:
            assert r.json()["error"]["type"] == kind, r.text
    big, _ = await make_net(api, who, "172.25.0.0/29",
                            allocation_pools=[{"start": "172.25.0.2", "end": "172.25.0.2"}])
    r = await launch(api, who, networks=[{"uuid": big["id"]}, {"uuid": big["id"]}])
    assert r.status_code == 409 and r.json()["error"]["type"] == "IpAddressGenerationFailure"
    nets_now = net_counts()
    r = await launch(api, who, networks=[{"uuid": big["id"]}],
                     security_groups=[{"name": "no-such-group"}])
    assert r.status_code == 400 and r.json()["error"]["type"] == "SecurityGroupNotFound"
    r = await launch(api, who, networks="none", security_groups=[{"name": "default"}])
    assert r.status_code == 400
    r = await launch(api, who, networks=[{"uuid": big["id"]}], security_groups=[])
    assert r.status_code == 400  # an empty list of groups: refused by the schema
    assert counts() == before and all_nic_rows() == nics
    assert net_counts() == nets_now  # the last cases made nothing either
    assert nets_now["Port"] == nets["Port"]


async def test_security_groups_by_name_and_no_networks(
        api: httpx.AsyncClient, world: World) -> None:
    who = await member(api, world, "nics-e")
    net, _ = await make_net(api, who, "172.26.0.0/24")
    web = (await api.post("/v1/security-groups", headers=who.h,
                          json={"name": "web"})).json()
    r = await launch(api, who, networks=[{"uuid": net["id"]}],
                     security_groups=[{"name": "web"}, {"name": web["id"]}])
    assert r.status_code == 202, r.text
    assert [n.security_group_ids for n in nic_rows(r.json()["server"]["id"])] == [[web["id"]]]
    # networks absent is "none", whatever networks the project has
    r = await launch(api, who)
    assert r.status_code == 202 and nic_rows(r.json()["server"]["id"]) == []
    r = await launch(api, who, networks="none")
    assert r.status_code == 202 and nic_rows(r.json()["server"]["id"]) == []


async def test_addresses_show_an_associated_floating_ip(
        api: httpx.AsyncClient, world: World, ports_acts: PortActivities) -> None:
    who = await member(api, world, "nics-f")
    public, _ = await make_net(api, world.admin, "100.64.77.0/29",
                               **{"router:external": True, "name": "public-nics"})
    net, _ = await make_net(api, who, "172.27.0.0/24", name="inside")
    r = await launch(api, who, networks=[{"uuid": net["id"]}])
    sid = r.json()["server"]["id"]
    ports_acts.create_instance_ports(InstanceRef(sid))
    (port,) = (await api.get("/v1/ports", headers=who.h,
                             params={"device_id": sid})).json()["ports"]
    fip = (await api.post("/v1/floating-ips", headers=who.h,
                          json={"floating_network_id": public["id"]})).json()
    r = await api.put(f"/v1/floating-ips/{fip['id']}", headers=who.h,
                      json={"port_id": port["id"]})
    assert r.status_code == 200, r.text
    shown = (await api.get(f"/v1/servers/{sid}", headers=who.h)).json()["addresses"]
    mac = port["mac_address"]
    assert shown == {"inside": [
        {"version": 4, "addr": "172.27.0.2", "OS-EXT-IPS:TYPE": "fixed",
         "OS-EXT-IPS-MAC:mac_addr": mac},
        {"version": 4, "addr": fip["floating_ip_address"], "OS-EXT-IPS:TYPE": "floating",
         "OS-EXT-IPS-MAC:mac_addr": mac}]}
    ports_acts.release_instance_ports(InstanceRef(sid))  # disassociates, as Neutron
    fip_now = (await api.get(f"/v1/floating-ips/{fip['id']}", headers=who.h)).json()
    assert fip_now["port_id"] is None
