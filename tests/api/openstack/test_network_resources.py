"""Neutron v2.0 at /networking: discovery, networks and subnets with the request bodies
python-openstackclient sends (openstackclient/network/v2/network.py, subnet.py), the
sdk's query filters, NeutronError bodies, and bad input that changes nothing."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.conftest import Caller, World
from tests.api.net_support import net_counts

N = "/networking/v2.0"


def os_h(who: Caller) -> dict[str, str]:
    return {"X-Auth-Token": who.token}


async def ok(r: httpx.Response, code: int = 200) -> dict[str, Any]:
    assert r.status_code == code, r.text
    body: dict[str, Any] = r.json() if r.content else {}
    return body


def neutron_error(r: httpx.Response, code: int, type_: str | None = None) -> dict[str, Any]:
    assert r.status_code == code, r.text
    err: dict[str, Any] = r.json()["NeutronError"]
    assert set(err) == {"type", "message", "detail"}, err
    if type_ is not None:
        assert err["type"] == type_, err
    return err


async def os_network(api: httpx.AsyncClient, who: Caller, name: str,
                     **attrs: Any) -> dict[str, Any]:
    """`openstack network create NAME` (it always sends admin_state_up)."""
    r = await api.post(f"{N}/networks", headers=os_h(who), json={
        "network": {"name": name, "admin_state_up": True, **attrs}})
    return (await ok(r, 201))["network"]


async def os_subnet(api: httpx.AsyncClient, who: Caller, network_id: str, cidr: str,
                    name: str = "sub", **attrs: Any) -> dict[str, Any]:
    """`openstack subnet create --network N --subnet-range CIDR NAME`."""
    r = await api.post(f"{N}/subnets", headers=os_h(who), json={"subnet": {
        "name": name, "network_id": network_id, "cidr": cidr, "ip_version": 4, **attrs}})
    return (await ok(r, 201))["subnet"]


async def test_version_documents(api: httpx.AsyncClient, world: World) -> None:
    r = await api.get("/networking/")  # unauthenticated, as Neutron's root
    body = await ok(r)
    assert [v["id"] for v in body["versions"]] == ["v2.0"]
    assert body["versions"][0]["status"] == "CURRENT"
    assert body["versions"][0]["links"][0]["href"].endswith("/networking/v2.0/")
    assert r.headers["X-OpenStack-Request-Id"].startswith("req-")
    neutron_error(await api.get(f"{N}/"), 401)
    resources = (await ok(await api.get(N, headers=os_h(world.alice))))["resources"]
    assert {x["collection"] for x in resources} == {
        "networks", "subnets", "ports", "security-groups", "security-group-rules",
        "floatingips"}
    assert all(x["links"][0]["href"].endswith(f"/v2.0/{x['collection']}") for x in resources)


async def test_extensions_list_only_what_exists(api: httpx.AsyncClient, world: World) -> None:
    exts = (await ok(await api.get(f"{N}/extensions", headers=os_h(world.alice))))
    aliases = {e["alias"] for e in exts["extensions"]}
    assert {"external-net", "security-group", "binding", "provider"} <= aliases
    assert not aliases & {"router", "quotas", "standard-attr-tag", "l3-ha",
                          "standard-attr-revisions", "network_availability_zone"}
    one = await ok(await api.get(f"{N}/extensions/security-group", headers=os_h(world.alice)))
    assert one["extension"]["alias"] == "security-group"
    # openstackclient's port create asks for this one and goes on without it
    neutron_error(await api.get(f"{N}/extensions/tag-ports-during-bulk-creation",
                                headers=os_h(world.alice)), 404, "ExtensionNotFound")


async def test_network_lifecycle_with_openstackclient_bodies(
        api: httpx.AsyncClient, world: World) -> None:
    a = world.alice
    net = await os_network(api, a, "os-net1")
    assert {k: net[k] for k in ("name", "admin_state_up", "shared", "router:external",
                                "status", "subnets", "mtu", "project_id", "tenant_id",
                                "port_security_enabled")} == {
        "name": "os-net1", "admin_state_up": True, "shared": False, "router:external": False,
        "status": "ACTIVE", "subnets": [], "mtu": 1450, "project_id": a.project_id,
        "tenant_id": a.project_id, "port_security_enabled": True}
    assert net["created_at"].endswith("Z") and "provider:segmentation_id" not in net
    admin_view = await ok(await api.get(f"{N}/networks/{net['id']}", headers=os_h(world.admin)))
    assert admin_view["network"]["provider:network_type"] == "vxlan"
    # the sdk's find: GET by name is 404, then the list filtered by name
    neutron_error(await api.get(f"{N}/networks/os-net1", headers=os_h(a)), 404,
                  "NetworkNotFound")
    found = (await ok(await api.get(f"{N}/networks", headers=os_h(a),
                                    params={"name": "os-net1"})))["networks"]
    assert [n["id"] for n in found] == [net["id"]]
    # `openstack network set --name`
    renamed = await ok(await api.put(f"{N}/networks/{net['id']}", headers=os_h(a),
                                     json={"network": {"name": "os-net1b"}}))
    assert renamed["network"]["name"] == "os-net1b"
    assert (await ok(await api.delete(f"{N}/networks/{net['id']}", headers=os_h(a)), 204)) == {}
    neutron_error(await api.get(f"{N}/networks/{net['id']}", headers=os_h(a)), 404,
                  "NetworkNotFound")


async def test_network_filters_fields_and_paging(api: httpx.AsyncClient, world: World) -> None:
    a = world.alice
    made = [await os_network(api, a, f"os-page-{i}") for i in range(3)]
    ids = [n["id"] for n in made]

    async def listing(**params: Any) -> list[dict[str, Any]]:
        r = await api.get(f"{N}/networks", headers=os_h(a), params=params)
        return list((await ok(r))["networks"])

    assert [n["id"] for n in await listing(id=ids[1])] == [ids[1]]
    assert {n["id"] for n in await listing(id=[ids[0], ids[2]])} == {ids[0], ids[2]}
    mine = await listing(project_id=a.project_id, shared="False")
    assert set(ids) <= {n["id"] for n in mine}
    assert all(n["project_id"] == a.project_id and not n["shared"] for n in mine)
    assert not {n["id"] for n in await listing(**{"router:external": "True"})} & set(ids)
    trimmed = await listing(id=ids[0], fields=["id", "name"])
    assert trimmed == [{"id": ids[0], "name": "os-page-0"}]
    shown = await ok(await api.get(f"{N}/networks/{ids[0]}", headers=os_h(a),
                                   params={"fields": "status"}))
    assert shown == {"network": {"status": "ACTIVE"}}
    everything = [n["id"] for n in await listing()]
    first = everything.index(ids[0])
    assert [n["id"] for n in await listing(limit=1, marker=ids[0])] == [everything[first + 1]]
    neutron_error(await api.get(f"{N}/networks", headers=os_h(a), params={"colour": "red"}),
                  400)
    for n in made:
        await ok(await api.delete(f"{N}/networks/{n['id']}", headers=os_h(a)), 204)


BAD_NETWORKS: list[tuple[Any, str]] = [
    ({"name": "x"}, "HTTPBadRequest"),  # not wrapped in {"network": ...}
    ({"network": {"name": "x", "admin_state_up": False}}, "InvalidInput"),
    ({"network": {"name": "x", "port_security_enabled": False}}, "InvalidInput"),
    ({"network": {"name": "x", "description": "words"}}, "InvalidInput"),
    ({"network": {"name": "x", "mtu": 9000}}, "InvalidInput"),
    ({"network": {"name": "x" * 256}}, "InvalidInput"),
    ({"network": {"name": 7}}, "InvalidInput"),
    ({"network": {"name": "x", "provider:segmentation_id": 5}}, "InvalidInput"),
]


async def test_bad_networks_change_nothing(api: httpx.AsyncClient, world: World) -> None:
    before = net_counts()
    for body, type_ in BAD_NETWORKS:
        neutron_error(await api.post(f"{N}/networks", headers=os_h(world.alice), json=body),
                      400, type_)
    r = await api.post(f"{N}/networks", headers=os_h(world.alice), content=b"{not json",
                       )
    neutron_error(r, 400)
    assert net_counts() == before


async def test_admin_only_network_attributes(api: httpx.AsyncClient, world: World) -> None:
    a, admin = world.alice, world.admin
    before = net_counts()
    for attrs in ({"shared": True}, {"router:external": True}):
        neutron_error(await api.post(f"{N}/networks", headers=os_h(a), json={
            "network": {"name": "x", **attrs}}), 403, "PolicyNotAuthorized")
    neutron_error(await api.post(f"{N}/networks", headers=os_h(a), json={
        "network": {"name": "x", "project_id": world.bob.project_id}}), 403)
    assert net_counts() == before
    net = await os_network(api, a, "os-flags")
    for attrs in ({"shared": True}, {"router:external": True}):
        neutron_error(await api.put(f"{N}/networks/{net['id']}", headers=os_h(a),
                                    json={"network": attrs}), 403, "PolicyNotAuthorized")
    shared = await ok(await api.put(f"{N}/networks/{net['id']}", headers=os_h(admin),
                                    json={"network": {"shared": True}}))
    assert shared["network"]["shared"] is True
    seen = await ok(await api.get(f"{N}/networks", headers=os_h(world.bob),
                                  params={"shared": "True"}))
    assert net["id"] in {n["id"] for n in seen["networks"]}
    # bob sees the shared network but may not change it
    neutron_error(await api.put(f"{N}/networks/{net['id']}", headers=os_h(world.bob),
                                json={"network": {"name": "mine"}}), 403)
    await ok(await api.put(f"{N}/networks/{net['id']}", headers=os_h(admin),
                           json={"network": {"shared": False}}))
    # an admin makes a network for another project (openstack network create --project)
    theirs = await os_network(api, admin, "os-for-bob", project_id=world.bob.project_id)
    assert theirs["project_id"] == world.bob.project_id
    neutron_error(await api.post(f"{N}/networks", headers=os_h(admin), json={
        "network": {"name": "x", "project_id": "no-such-project"}}), 404)
    for n, who in ((net, a), (theirs, world.bob)):
        await ok(await api.delete(f"{N}/networks/{n['id']}", headers=os_h(who)), 204)


async def test_subnet_lifecycle_with_openstackclient_bodies(
        api: httpx.AsyncClient, world: World) -> None:
    a = world.alice
    net = await os_network(api, a, "os-subnetted")
    sub = await os_subnet(api, a, net["id"], "10.240.1.0/24", name="os-sub",
                          gateway_ip="10.240.1.1",
                          allocation_pools=[{"start": "10.240.1.10", "end": "10.240.1.99"}],
                          dns_nameservers=["10.240.1.53"])
    assert {k: sub[k] for k in ("name", "network_id", "cidr", "ip_version", "gateway_ip",
                                "allocation_pools", "dns_nameservers", "enable_dhcp",
                                "host_routes", "project_id")} == {
        "name": "os-sub", "network_id": net["id"], "cidr": "10.240.1.0/24", "ip_version": 4,
        "gateway_ip": "10.240.1.1",
        "allocation_pools": [{"start": "10.240.1.10", "end": "10.240.1.99"}],
        "dns_nameservers": ["10.240.1.53"], "enable_dhcp": True, "host_routes": [],
        "project_id": a.project_id}
    shown = await ok(await api.get(f"{N}/networks/{net['id']}", headers=os_h(a)))
    assert shown["network"]["subnets"] == [sub["id"]]
    listed = await ok(await api.get(f"{N}/subnets", headers=os_h(a),
                                    params={"network_id": net["id"]}))
    assert [s["id"] for s in listed["subnets"]] == [sub["id"]]
    before = net_counts()
    neutron_error(await api.post(f"{N}/subnets", headers=os_h(a), json={"subnet": {
        "network_id": net["id"], "cidr": "10.240.2.0/24", "ip_version": 4}}), 409,
        "SubnetExists")
    # `openstack subnet set --name` (and the same dns again) works; changing addressing not
    renamed = await ok(await api.put(f"{N}/subnets/{sub['id']}", headers=os_h(a), json={
        "subnet": {"name": "os-sub2", "dns_nameservers": ["10.240.1.53"]}}))
    assert renamed["subnet"]["name"] == "os-sub2"
    for change in ({"gateway_ip": "10.240.1.2"}, {"enable_dhcp": False},
                   {"host_routes": [{"destination": "0.0.0.0/0", "nexthop": "10.240.1.3"}]}):
        neutron_error(await api.put(f"{N}/subnets/{sub['id']}", headers=os_h(a),
                                    json={"subnet": change}), 400, "InvalidInput")
    assert net_counts() == before
    await ok(await api.delete(f"{N}/subnets/{sub['id']}", headers=os_h(a)), 204)
    neutron_error(await api.get(f"{N}/subnets/{sub['id']}", headers=os_h(a)), 404,
                  "SubnetNotFound")
    await ok(await api.delete(f"{N}/networks/{net['id']}", headers=os_h(a)), 204)


BAD_SUBNETS: list[dict[str, Any]] = [
    {"cidr": "10.240.3.0/24", "ip_version": 6},
    {"cidr": "fd00::/64", "ip_version": 4},
    {"cidr": "banana"},
    {"cidr": "10.240.3.0/24", "gateway_ip": "10.9.9.9"},
    {"cidr": "10.240.3.0/24", "host_routes": [{"destination": "0.0.0.0/0",
                                               "nexthop": "10.240.3.1"}]},
    {"cidr": "10.240.3.0/24", "subnetpool_id": "pool"},
    {"cidr": "10.240.3.0/24", "allocation_pools": [{"start": "10.240.4.1",
                                                    "end": "10.240.4.9"}]},
]


async def test_bad_subnets_change_nothing(api: httpx.AsyncClient, world: World) -> None:
    net = await os_network(api, world.alice, "os-bad-subnets")
    before = net_counts()
    for attrs in BAD_SUBNETS:
        r = await api.post(f"{N}/subnets", headers=os_h(world.alice),
                           json={"subnet": {"network_id": net["id"], **attrs}})
        neutron_error(r, 400)
    assert net_counts() == before
    await ok(await api.delete(f"{N}/networks/{net['id']}", headers=os_h(world.alice)), 204)


async def test_network_in_use_is_409(api: httpx.AsyncClient, world: World) -> None:
    a = world.alice
    net = await os_network(api, a, "os-busy")
    await os_subnet(api, a, net["id"], "10.240.5.0/24")
    port = (await ok(await api.post(f"{N}/ports", headers=os_h(a), json={
        "port": {"network_id": net["id"]}}), 201))["port"]
    before = net_counts()
    neutron_error(await api.delete(f"{N}/networks/{net['id']}", headers=os_h(a)), 409,
                  "NetworkInUse")
    neutron_error(await api.delete(f"{N}/subnets/{port['fixed_ips'][0]['subnet_id']}",
                                   headers=os_h(a)), 409, "SubnetInUse")
    assert net_counts() == before
    await ok(await api.delete(f"{N}/ports/{port['id']}", headers=os_h(a)), 204)
    await ok(await api.delete(f"{N}/networks/{net['id']}", headers=os_h(a)), 204)
