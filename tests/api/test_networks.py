"""Networks and subnets: Neutron's fields, project scoping (404 across projects,
readers 403, admin sees all, shared/external visible to all), a unique VXLAN id per
network, subnet defaults, and every bad CIDR, gateway or pool a clear 400 that
changes nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.conftest import World
from tests.api.net_support import make_net, make_port, net_counts


async def test_network_and_subnet_have_neutrons_fields_and_defaults(
        api: httpx.AsyncClient, world: World) -> None:
    net, subnet = await make_net(api, world.alice, "10.20.0.0/24", name="web")
    assert subnet is not None
    assert {k: net[k] for k in ("name", "admin_state_up", "shared", "router:external",
                                "status", "subnets", "mtu", "project_id", "tenant_id")} == {
        "name": "web", "admin_state_up": True, "shared": False, "router:external": False,
        "status": "ACTIVE", "subnets": [], "mtu": 1450,
        "project_id": world.alice.project_id, "tenant_id": world.alice.project_id}
    assert "provider:segmentation_id" not in net  # admins only
    assert {k: subnet[k] for k in ("cidr", "gateway_ip", "allocation_pools", "ip_version",
                                   "enable_dhcp", "dns_nameservers", "network_id")} == {
        "cidr": "10.20.0.0/24", "gateway_ip": "10.20.0.1",
        "allocation_pools": [{"start": "10.20.0.2", "end": "10.20.0.254"}], "ip_version": 4,
        "enable_dhcp": True, "dns_nameservers": [], "network_id": net["id"]}
    r = await api.get(f"/v1/networks/{net['id']}", headers=world.alice.h)
    assert r.status_code == 200 and r.json()["subnets"] == [subnet["id"]]
    r = await api.get(f"/v1/networks/{net['id']}", headers=world.admin.h)
    assert r.json()["provider:network_type"] == "vxlan"
    assert isinstance(r.json()["provider:segmentation_id"], int)


async def test_each_network_gets_its_own_vxlan_id(api: httpx.AsyncClient, world: World) -> None:
    nets = [(await make_net(api, world.alice, None))[0] for _ in range(3)]
    r = await api.get("/v1/networks", headers=world.admin.h)
    vnis = [n["provider:segmentation_id"] for n in r.json()["networks"]]
    assert len(set(vnis)) == len(vnis) and all(v >= 1 for v in vnis)
    for n in nets:
        assert (await api.delete(f"/v1/networks/{n['id']}", headers=world.alice.h)
                ).status_code == 204


async def test_gateway_pools_and_dns_as_given(api: httpx.AsyncClient, world: World) -> None:
    _, subnet = await make_net(
        api, world.alice, "10.21.0.0/24", gateway_ip="10.21.0.254",
        allocation_pools=[{"start": "10.21.0.100", "end": "10.21.0.109"},
                          {"start": "10.21.0.10", "end": "10.21.0.19"}],
        dns_nameservers=["9.9.9.9"], enable_dhcp=False)
    assert subnet is not None
    assert subnet["gateway_ip"] == "10.21.0.254" and subnet["enable_dhcp"] is False
    assert subnet["allocation_pools"] == [{"start": "10.21.0.10", "end": "10.21.0.19"},
                                          {"start": "10.21.0.100", "end": "10.21.0.109"}]
    # a gateway in the middle splits the default pool around it; null means none
    _, mid = await make_net(api, world.alice, "10.22.0.0/29", gateway_ip="10.22.0.3")
    assert mid is not None
    assert mid["allocation_pools"] == [{"start": "10.22.0.1", "end": "10.22.0.2"},
                                       {"start": "10.22.0.4", "end": "10.22.0.6"}]
    _, none = await make_net(api, world.alice, "10.23.0.0/30", gateway_ip=None)
    assert none is not None
    assert none["gateway_ip"] is None
    assert none["allocation_pools"] == [{"start": "10.23.0.1", "end": "10.23.0.2"}]


BAD_SUBNETS: list[tuple[dict[str, Any], str]] = [
    ({"cidr": "10.0.0.0"}, "InvalidInput"),
    ({"cidr": "10.0.0.0/33"}, "InvalidInput"),
    ({"cidr": "300.0.0.0/24"}, "InvalidInput"),
    ({"cidr": "banana"}, "InvalidInput"),
    ({"cidr": "fd00::/64"}, "InvalidInput"),
    ({"cidr": "10.0.0.5/24"}, "InvalidInput"),
    ({"cidr": "10.0.0.0/32"}, "InvalidInput"),
    ({"cidr": "10.0.0.0/31"}, "InvalidInput"),
    ({"cidr": "10.0.0.0/24", "gateway_ip": "10.0.1.1"}, "InvalidInput"),
    ({"cidr": "10.0.0.0/24", "gateway_ip": "10.0.0.255"}, "InvalidInput"),
    ({"cidr": "10.0.0.0/24", "gateway_ip": "fe80::1"}, "InvalidInput"),
    ({"cidr": "10.0.0.0/24", "allocation_pools": [{"start": "10.0.1.2", "end": "10.0.1.9"}]},
     "InvalidInput"),
    ({"cidr": "10.0.0.0/24", "allocation_pools": [{"start": "10.0.0.9", "end": "10.0.0.2"}]},
     "InvalidInput"),
    ({"cidr": "10.0.0.0/24", "allocation_pools": [{"start": "10.0.0.2", "end": "10.0.0.20"},
                                                  {"start": "10.0.0.10", "end": "10.0.0.30"}]},
     "OverlappingAllocationPools"),
    ({"cidr": "10.0.0.0/24", "allocation_pools": [{"start": "10.0.0.1", "end": "10.0.0.9"}]},
     "GatewayConflictWithAllocationPools"),
    ({"cidr": "10.0.0.0/24", "allocation_pools": []}, "InvalidInput"),
    ({"cidr": "10.0.0.0/24", "dns_nameservers": ["not-an-ip"]}, "InvalidInput"),
    ({"cidr": "10.0.0.0/24", "ip_version": 6}, "ValidationError"),
    ({"cidr": "10.0.0.0/24", "name": "bad\nname"}, "ValidationError"),
]


@pytest.mark.parametrize(("fields", "error_type"), BAD_SUBNETS)
async def test_bad_subnets_are_400_and_change_nothing(
        api: httpx.AsyncClient, world: World, fields: dict[str, Any], error_type: str) -> None:
    net, _ = await make_net(api, world.alice, None)
    before = net_counts()
    r = await api.post("/v1/subnets", headers=world.alice.h,
                       json={"network_id": net["id"], **fields})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["type"] == error_type, r.text
    assert net_counts() == before
    assert (await api.delete(f"/v1/networks/{net['id']}", headers=world.alice.h)
            ).status_code == 204


async def test_one_subnet_per_network(api: httpx.AsyncClient, world: World) -> None:
    net, _ = await make_net(api, world.alice, "10.24.0.0/24")
    before = net_counts()
    r = await api.post("/v1/subnets", headers=world.alice.h,
                       json={"network_id": net["id"], "cidr": "10.25.0.0/24"})
    assert r.status_code == 409 and r.json()["error"]["type"] == "SubnetExists"
    assert net_counts() == before


async def test_projects_readers_and_admin(api: httpx.AsyncClient, world: World) -> None:
    net, subnet = await make_net(api, world.alice, "10.26.0.0/24", name="private-p1")
    assert subnet is not None
    for path in (f"/v1/networks/{net['id']}", f"/v1/subnets/{subnet['id']}"):
        assert (await api.get(path, headers=world.bob.h)).status_code == 404
        assert (await api.get(path, headers=world.rita.h)).status_code == 200
        assert (await api.get(path, headers=world.admin.h)).status_code == 200
    listed = (await api.get("/v1/networks", headers=world.bob.h)).json()["networks"]
    assert net["id"] not in {n["id"] for n in listed}
    before = net_counts()
    assert (await api.delete(f"/v1/networks/{net['id']}", headers=world.bob.h)
            ).status_code == 404
    for call in (api.post("/v1/networks", headers=world.rita.h, json={}),
                 api.delete(f"/v1/networks/{net['id']}", headers=world.rita.h),
                 api.post("/v1/subnets", headers=world.rita.h,
                          json={"network_id": net["id"], "cidr": "10.9.0.0/24"})):
        assert (await call).status_code == 403
    # bob cannot put a subnet or a port on alice's network
    r = await api.post("/v1/ports", headers=world.bob.h, json={"network_id": net["id"]})
    assert r.status_code == 404
    assert net_counts() == before


async def test_shared_and_external_are_admin_only_and_visible_to_all(
        api: httpx.AsyncClient, world: World) -> None:
    before = net_counts()
    for body in ({"shared": True}, {"router:external": True}):
        r = await api.post("/v1/networks", headers=world.alice.h, json=body)
        assert r.status_code == 403, r.text
    assert net_counts() == before
    shared, _ = await make_net(api, world.admin, "10.27.0.0/24", shared=True)
    ext, _ = await make_net(api, world.admin, "203.0.113.0/24", **{"router:external": True})
    r = await api.get("/v1/networks", headers=world.bob.h)
    ids = {n["id"] for n in r.json()["networks"]}
    assert {shared["id"], ext["id"]} <= ids
    r = await api.get("/v1/networks", headers=world.bob.h, params={"router:external": "true"})
    assert ext["id"] in {n["id"] for n in r.json()["networks"]}
    assert shared["id"] not in {n["id"] for n in r.json()["networks"]}
    # visible, not theirs: bob may not delete it
    assert (await api.delete(f"/v1/networks/{shared['id']}", headers=world.bob.h)
            ).status_code == 403
    # a port on the shared network is bob's; on the external one a user may not make one
    port = await make_port(api, world.bob, shared["id"])
    assert port["project_id"] == world.bob.project_id
    r = await api.post("/v1/ports", headers=world.bob.h, json={"network_id": ext["id"]})
    assert r.status_code == 403
    assert (await api.delete(f"/v1/ports/{port['id']}", headers=world.bob.h)).status_code == 204
    # a shared network would be every project's "auto" choice: not left behind
    for n in (shared, ext):
        assert (await api.delete(f"/v1/networks/{n['id']}", headers=world.admin.h)
                ).status_code == 204


async def test_network_in_use_is_409_then_deleted_with_its_subnet(
        api: httpx.AsyncClient, world: World) -> None:
    net, subnet = await make_net(api, world.alice, "10.28.0.0/24")
    assert subnet is not None
    port = await make_port(api, world.alice, net["id"])
    before = net_counts()
    r = await api.delete(f"/v1/networks/{net['id']}", headers=world.alice.h)
    assert r.status_code == 409 and r.json()["error"]["type"] == "NetworkInUse"
    r = await api.delete(f"/v1/subnets/{subnet['id']}", headers=world.alice.h)
    assert r.status_code == 409 and r.json()["error"]["type"] == "SubnetInUse"
    assert net_counts() == before
    assert (await api.delete(f"/v1/ports/{port['id']}", headers=world.alice.h)).status_code == 204
    assert (await api.delete(f"/v1/networks/{net['id']}", headers=world.alice.h)
            ).status_code == 204
    for path in (f"/v1/networks/{net['id']}", f"/v1/subnets/{subnet['id']}"):
        assert (await api.get(path, headers=world.alice.h)).status_code == 404


async def test_idempotency_key_replays_a_create(api: httpx.AsyncClient, world: World) -> None:
    h = {**world.alice.h, "Idempotency-Key": "net-once"}
    first = await api.post("/v1/networks", headers=h, json={"name": "once"})
    before = net_counts()
    again = await api.post("/v1/networks", headers=h, json={"name": "once"})
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"] and net_counts() == before


async def test_a_subnet_overlapping_any_other_is_400(api: httpx.AsyncClient,
                                                      world: World) -> None:
    """Every host routes every subnet in its one namespace: no overlap, across projects
    too (Neutron allows it behind separate routers; vmflow has none)."""
    first, _ = await make_net(api, world.alice, "10.31.0.0/24")
    other, _ = await make_net(api, world.bob, None)
    before = net_counts()
    for cidr in ("10.31.0.0/24", "10.31.0.128/25", "10.30.0.0/15"):
        r = await api.post("/v1/subnets", headers=world.bob.h,
                           json={"network_id": other["id"], "cidr": cidr})
        assert r.status_code == 400, r.text
        assert r.json()["error"]["type"] == "OverlappingSubnet", r.text
        assert "10.31.0.0/24" in r.json()["error"]["message"]
    assert net_counts() == before
    r = await api.post("/v1/subnets", headers=world.bob.h,
                       json={"network_id": other["id"], "cidr": "10.32.0.0/24"})
    assert r.status_code == 201, r.text
    for net, who in ((first, world.alice), (other, world.bob)):
        assert (await api.delete(f"/v1/networks/{net['id']}", headers=who.h)).status_code == 204
