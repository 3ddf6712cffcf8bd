"""Neutron v2.0 ports, security groups and rules, floating IPs at /networking with the
bodies python-openstackclient sends (openstackclient/network/v2/port.py,
security_group.py, security_group_rule.py, floating_ip.py): `openstack security group
rule create --protocol tcp --dst-port 22 default` and `openstack floating ip create
<ext>` / `set --port` included; the sync workflows /v1 starts start here too."""

from __future__ import annotations

from typing import Any

import httpx
from temporalio.client import Client

from tests.api.conftest import World
from tests.api.net_support import net_counts
from tests.api.openstack.test_network_resources import (
    N,
    neutron_error,
    ok,
    os_h,
    os_network,
    os_subnet,
)
from tests.api.test_floating_ip_sync import signals
from tests.api.test_security_group_sync import sync_state
from vmflow.names import floating_ip_workflow_id


async def test_port_lifecycle_with_openstackclient_bodies(
        api: httpx.AsyncClient, world: World) -> None:
    a, admin = world.alice, world.admin
    net = await os_network(api, a, "os-ports")
    sub = await os_subnet(api, a, net["id"], "10.240.10.0/24")
    group = (await ok(await api.post(f"{N}/security-groups", headers=os_h(a), json={
        "security_group": {"name": "os-port-sg", "description": "os-port-sg"}}), 201))
    sg_id = group["security_group"]["id"]
    # openstack port create --network N --fixed-ip subnet=S,ip-address=A --security-group G
    r = await api.post(f"{N}/ports", headers=os_h(a), json={"port": {
        "name": "os-p1", "network_id": net["id"], "admin_state_up": True,
        "fixed_ips": [{"subnet_id": sub["id"], "ip_address": "10.240.10.50"}],
        "security_groups": [sg_id]}})
    port = (await ok(r, 201))["port"]
    assert {k: port[k] for k in ("name", "network_id", "fixed_ips", "security_groups",
                                 "status", "device_id", "device_owner", "admin_state_up",
                                 "port_security_enabled", "binding:vnic_type")} == {
        "name": "os-p1", "network_id": net["id"],
        "fixed_ips": [{"subnet_id": sub["id"], "ip_address": "10.240.10.50"}],
        "security_groups": [sg_id], "status": "DOWN", "device_id": "", "device_owner": "",
        "admin_state_up": True, "port_security_enabled": True, "binding:vnic_type": "normal"}
    assert port["mac_address"].count(":") == 5
    assert "binding:host_id" not in port  # admins only
    shown = await ok(await api.get(f"{N}/ports/{port['id']}", headers=os_h(admin)))
    assert shown["port"]["binding:host_id"] == ""
    # the sdk's filters: network_id, fixed_ips=ip_address=..., device_id
    for params in ({"network_id": net["id"]}, {"fixed_ips": "ip_address=10.240.10.50"},
                   {"device_id": "", "network_id": net["id"]}):
        found = await ok(await api.get(f"{N}/ports", headers=os_h(a), params=params))
        assert [p["id"] for p in found["ports"]] == [port["id"]], params
    # the project's default group when none is named; the next free address
    second = (await ok(await api.post(f"{N}/ports", headers=os_h(a), json={
        "port": {"network_id": net["id"]}}), 201))["port"]
    default = await ok(await api.get(f"{N}/security-groups", headers=os_h(a),
                                     params={"name": "default"}))
    assert second["security_groups"] == [default["security_groups"][0]["id"]]
    assert second["fixed_ips"][0]["ip_address"] != "10.240.10.50"
    renamed = await ok(await api.put(f"{N}/ports/{port['id']}", headers=os_h(a), json={
        "port": {"name": "os-p1b", "security_groups": [sg_id]}}))
    assert renamed["port"]["name"] == "os-p1b"
    before = net_counts()
    neutron_error(await api.post(f"{N}/ports", headers=os_h(a), json={"port": {
        "network_id": net["id"], "fixed_ips": [{"ip_address": "10.240.10.50"}]}}), 409,
        "IpAddressAlreadyAllocated")
    for change, code in (({"device_id": "somewhere"}, 400), ({"security_groups": []}, 400),
                         ({"mac_address": "fa:16:3e:00:00:01"}, 400),
                         ({"binding:host_id": "h1"}, 403)):
        neutron_error(await api.put(f"{N}/ports/{port['id']}", headers=os_h(a),
                                    json={"port": change}), code)
    for attrs, code in (({"binding:host_id": "h1"}, 403), ({"mac_address": "fa:16:3e:0:0:1"},
                                                           400),
                        ({"admin_state_up": False}, 400),
                        ({"allowed_address_pairs": [{"ip_address": "1.2.3.4"}]}, 400),
                        ({"fixed_ips": [{"ip_address": "10.250.0.1"}]}, 400)):
        neutron_error(await api.post(f"{N}/ports", headers=os_h(a), json={
            "port": {"network_id": net["id"], **attrs}}), code)
    assert net_counts() == before
    for p in (port, second):
        await ok(await api.delete(f"{N}/ports/{p['id']}", headers=os_h(a)), 204)
    neutron_error(await api.get(f"{N}/ports/{port['id']}", headers=os_h(a)), 404,
                  "PortNotFound")
    await ok(await api.delete(f"{N}/security-groups/{sg_id}", headers=os_h(a)), 204)
    await ok(await api.delete(f"{N}/networks/{net['id']}", headers=os_h(a)), 204)


async def test_security_group_rule_create_as_openstackclient_does(
        api: httpx.AsyncClient, world: World, temporal: Client) -> None:
    """`openstack security group rule create --protocol tcp --dst-port 22 default`."""
    a = world.carol  # p1's member: "default" names p1's one default group
    neutron_error(await api.get(f"{N}/security-groups/default", headers=os_h(a)), 404,
                  "SecurityGroupNotFound")
    found = await ok(await api.get(f"{N}/security-groups", headers=os_h(a),
                                   params={"name": "default"}))
    assert len(found["security_groups"]) == 1
    default = found["security_groups"][0]
    assert default["stateful"] is True
    assert {(r["direction"], r["ethertype"], r["remote_group_id"])
            for r in default["security_group_rules"]} == {
        ("ingress", "IPv4", default["id"]), ("ingress", "IPv6", default["id"]),
        ("egress", "IPv4", None), ("egress", "IPv6", None)}
    ssh = {"protocol": "tcp", "direction": "ingress", "ethertype": "IPv4",
           "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "0.0.0.0/0",
           "security_group_id": default["id"]}
    synced = await sync_state(temporal, default["id"])
    signalled = 0 if synced is None else synced[1]  # p1's earlier ports joined it
    rule = (await ok(await api.post(f"{N}/security-group-rules", headers=os_h(a),
                                    json={"security_group_rule": ssh}), 201))
    made = rule["security_group_rule"]
    assert {k: made[k] for k in ssh} == ssh
    assert await sync_state(temporal, default["id"]) == ("SyncSecurityGroup", signalled + 1)
    before = net_counts()
    neutron_error(await api.post(f"{N}/security-group-rules", headers=os_h(a),
                                 json={"security_group_rule": ssh}), 409,
                  "SecurityGroupRuleExists")
    for bad in ({"direction": "sideways"}, {"protocol": "tcp", "port_range_min": 99999},
                {"remote_address_group_id": "ag"}, {"security_group_id": "nope"}):
        neutron_error(await api.post(f"{N}/security-group-rules", headers=os_h(a),
                                     json={"security_group_rule": {**ssh, **bad}}),
                      404 if bad.get("security_group_id") else 400)
    assert net_counts() == before
    group = await ok(await api.get(f"{N}/security-groups/{default['id']}", headers=os_h(a)))
    assert made["id"] in {r["id"] for r in group["security_group"]["security_group_rules"]}
    listed = await ok(await api.get(f"{N}/security-group-rules", headers=os_h(a), params={
        "security_group_id": default["id"], "protocol": "tcp"}))
    assert [r["id"] for r in listed["security_group_rules"]] == [made["id"]]
    shown = await ok(await api.get(f"{N}/security-group-rules/{made['id']}", headers=os_h(a)))
    assert shown["security_group_rule"]["port_range_max"] == 22
    await ok(await api.delete(f"{N}/security-group-rules/{made['id']}", headers=os_h(a)), 204)
    assert await sync_state(temporal, default["id"]) == ("SyncSecurityGroup", signalled + 2)
    neutron_error(await api.get(f"{N}/security-group-rules/{made['id']}", headers=os_h(a)),
                  404, "SecurityGroupRuleNotFound")


async def test_security_group_lifecycle(api: httpx.AsyncClient, world: World) -> None:
    a = world.alice
    made = await ok(await api.post(f"{N}/security-groups", headers=os_h(a), json={
        "security_group": {"name": "os-web", "description": "os-web"}}), 201)
    group = made["security_group"]
    assert {(r["direction"], r["ethertype"]) for r in group["security_group_rules"]} == {
        ("egress", "IPv4"), ("egress", "IPv6")}
    updated = await ok(await api.put(f"{N}/security-groups/{group['id']}", headers=os_h(a),
                                     json={"security_group": {"name": "os-web2",
                                                              "description": "front"}}))
    assert (updated["security_group"]["name"], updated["security_group"]["description"]) == (
        "os-web2", "front")
    default = (await ok(await api.get(f"{N}/security-groups", headers=os_h(a),
                                      params={"name": "default"})))["security_groups"][0]
    before = net_counts()
    neutron_error(await api.put(f"{N}/security-groups/{default['id']}", headers=os_h(a),
                                json={"security_group": {"name": "other"}}), 409,
                  "SecurityGroupCannotUpdateDefault")
    neutron_error(await api.post(f"{N}/security-groups", headers=os_h(a), json={
        "security_group": {"name": "x", "stateful": False}}), 400, "InvalidInput")
    neutron_error(await api.post(f"{N}/security-groups", headers=os_h(a), json={
        "security_group": {"name": ""}}), 400)
    net = await os_network(api, a, "os-sg-use")
    await os_subnet(api, a, net["id"], "10.240.11.0/24")
    before = net_counts()
    port = (await ok(await api.post(f"{N}/ports", headers=os_h(a), json={"port": {
        "network_id": net["id"], "security_groups": [group["id"]]}}), 201))["port"]
    neutron_error(await api.delete(f"{N}/security-groups/{group['id']}", headers=os_h(a)),
                  409, "SecurityGroupInUse")
    await ok(await api.delete(f"{N}/ports/{port['id']}", headers=os_h(a)), 204)
    assert net_counts() == before
    await ok(await api.delete(f"{N}/security-groups/{group['id']}", headers=os_h(a)), 204)
    neutron_error(await api.get(f"{N}/security-groups/{group['id']}", headers=os_h(a)), 404,
                  "SecurityGroupNotFound")
    await ok(await api.delete(f"{N}/networks/{net['id']}", headers=os_h(a)), 204)


async def external_network(api: httpx.AsyncClient, world: World, name: str,
                           cidr: str) -> dict[str, Any]:
    """`openstack network create --external` and its subnet, by the admin."""
    net = await os_network(api, world.admin, name, **{"router:external": True})
    await os_subnet(api, world.admin, net["id"], cidr, gateway_ip=None)
    return net


async def test_floating_ip_create_and_set_as_openstackclient_does(
        api: httpx.AsyncClient, world: World, temporal: Client) -> None:
    a = world.alice
    ext = await external_network(api, world, "os-public", "198.18.240.0/28")
    # `openstack floating ip create os-public`: the network found by name first
    found = await ok(await api.get(f"{N}/networks", headers=os_h(a),
                                   params={"name": "os-public"}))
    assert [n["id"] for n in found["networks"]] == [ext["id"]]
    assert found["networks"][0]["router:external"] is True
    fip = (await ok(await api.post(f"{N}/floatingips", headers=os_h(a), json={
        "floatingip": {"floating_network_id": ext["id"]}}), 201))["floatingip"]
    assert {k: fip[k] for k in ("floating_network_id", "port_id", "fixed_ip_address",
                                "router_id", "status", "project_id")} == {
        "floating_network_id": ext["id"], "port_id": None, "fixed_ip_address": None,
        "router_id": None, "status": "DOWN", "project_id": a.project_id}
    address = fip["floating_ip_address"]
    # `openstack floating ip set --port P <address>`: the sdk finds it by address
    neutron_error(await api.get(f"{N}/floatingips/{address}", headers=os_h(a)), 404,
                  "FloatingIPNotFound")
    by_address = await ok(await api.get(f"{N}/floatingips", headers=os_h(a),
                                        params={"floating_ip_address": address}))
    assert [f["id"] for f in by_address["floatingips"]] == [fip["id"]]
    net = await os_network(api, a, "os-fip-inside")
    await os_subnet(api, a, net["id"], "10.240.12.0/24")
    port = (await ok(await api.post(f"{N}/ports", headers=os_h(a), json={
        "port": {"network_id": net["id"]}}), 201))["port"]
    r = await api.put(f"{N}/floatingips/{fip['id']}", headers=os_h(a),
                      json={"floatingip": {"port_id": port["id"]}})
    set_ = (await ok(r))["floatingip"]
    assert (set_["port_id"], set_["fixed_ip_address"]) == (
        port["id"], port["fixed_ips"][0]["ip_address"])
    _, count = await signals(temporal, floating_ip_workflow_id(fip["id"]))
    assert count == 1
    described = await ok(await api.put(f"{N}/floatingips/{fip['id']}", headers=os_h(a),
                                       json={"floatingip": {"description": "web"}}))
    assert described["floatingip"]["description"] == "web"
    assert described["floatingip"]["port_id"] == port["id"]  # kept: no port_id given
    before = net_counts()
    for change in ({"router_id": "r1"}, {"fixed_ip_address": "10.240.12.9"},
                   {"port_id": ext["id"]}):
        neutron_error(await api.put(f"{N}/floatingips/{fip['id']}", headers=os_h(a),
                                    json={"floatingip": change}),
                      404 if change.get("port_id") else 400)
    neutron_error(await api.post(f"{N}/floatingips", headers=os_h(a), json={
        "floatingip": {"floating_network_id": net["id"]}}), 400, "ExternalNetworkNotFound")
    neutron_error(await api.post(f"{N}/floatingips", headers=os_h(a), json={
        "floatingip": {"floating_network_id": ext["id"], "subnet_id": "other"}}), 400)
    assert net_counts() == before
    # `openstack floating ip unset --port`
    unset = await ok(await api.put(f"{N}/floatingips/{fip['id']}", headers=os_h(a),
                                   json={"floatingip": {"port_id": None}}))
    assert unset["floatingip"]["port_id"] is None
    assert (await signals(temporal, floating_ip_workflow_id(fip["id"])))[1] == 2
    listed = await ok(await api.get(f"{N}/floatingips", headers=os_h(a),
                                    params={"port_id": ""}))
    assert fip["id"] in {f["id"] for f in listed["floatingips"]}
    await ok(await api.delete(f"{N}/floatingips/{fip['id']}", headers=os_h(a)), 204)
    neutron_error(await api.get(f"{N}/floatingips/{fip['id']}", headers=os_h(a)), 404,
                  "FloatingIPNotFound")
    await ok(await api.delete(f"{N}/ports/{port['id']}", headers=os_h(a)), 204)
    await ok(await api.delete(f"{N}/networks/{net['id']}", headers=os_h(a)), 204)
    await ok(await api.delete(f"{N}/networks/{ext['id']}", headers=os_h(world.admin)), 204)
