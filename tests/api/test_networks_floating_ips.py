"""Floating IPs: allocated from an admin-made external network's subnet, associated and
disassociated by PUT, never to a port on an external network, one per fixed IP;
exhaustion 409; a port deleted disassociates; release frees the address."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.conftest import World
from tests.api.net_support import make_net, make_port, net_counts


@pytest.fixture(scope="module")
async def external(api: httpx.AsyncClient, world: World) -> dict[str, Any]:
    net, _ = await make_net(api, world.admin, "198.51.100.0/29",
                            allocation_pools=[{"start": "198.51.100.2", "end": "198.51.100.4"}],
                            **{"router:external": True, "name": "public"})
    return net


async def test_allocate_associate_disassociate_release(
        api: httpx.AsyncClient, world: World, external: dict[str, Any]) -> None:
    net, _ = await make_net(api, world.alice, "10.50.0.0/24")
    port = await make_port(api, world.alice, net["id"])
    r = await api.post("/v1/floating-ips", headers=world.alice.h,
                       json={"floating_network_id": external["id"]})
    assert r.status_code == 201, r.text
    fip = r.json()
    assert fip["floating_ip_address"].startswith("198.51.100.")
    assert (fip["port_id"], fip["fixed_ip_address"], fip["status"]) == (None, None, "DOWN")
    r = await api.put(f"/v1/floating-ips/{fip['id']}", headers=world.alice.h,
                      json={"port_id": port["id"]})
    assert r.status_code == 200, r.text
    assert (r.json()["port_id"], r.json()["fixed_ip_address"]) == (
        port["id"], port["fixed_ips"][0]["ip_address"])
    r = await api.get("/v1/floating-ips", headers=world.alice.h, params={"port_id": port["id"]})
    assert [f["id"] for f in r.json()["floatingips"]] == [fip["id"]]
    assert (await api.get(f"/v1/floating-ips/{fip['id']}", headers=world.bob.h)
            ).status_code == 404
    r = await api.put(f"/v1/floating-ips/{fip['id']}", headers=world.alice.h,
                      json={"port_id": None})
    assert r.status_code == 200 and r.json()["port_id"] is None
    # its own port on the external network is not the user's to delete, nor to see
    ports = (await api.get("/v1/ports", headers=world.admin.h,
                           params={"device_id": fip["id"]})).json()["ports"]
    assert ports[0]["device_owner"] == "network:floatingip"
    r = await api.delete(f"/v1/ports/{ports[0]['id']}", headers=world.admin.h)
    assert r.status_code == 409
    assert (await api.delete(f"/v1/floating-ips/{fip['id']}", headers=world.alice.h)
            ).status_code == 204
    assert (await api.get(f"/v1/ports/{ports[0]['id']}", headers=world.admin.h)
            ).status_code == 404


async def test_one_floating_ip_per_fixed_ip_and_bad_targets(
        api: httpx.AsyncClient, world: World, external: dict[str, Any]) -> None:
    net, _ = await make_net(api, world.alice, "10.51.0.0/24")
    port = await make_port(api, world.alice, net["id"])
    r = await api.post("/v1/floating-ips", headers=world.alice.h,
                       json={"floating_network_id": external["id"], "port_id": port["id"]})
    assert r.status_code == 201 and r.json()["port_id"] == port["id"]
    first = r.json()
    before = net_counts()
    r = await api.post("/v1/floating-ips", headers=world.alice.h,
                       json={"floating_network_id": external["id"], "port_id": port["id"]})
    assert r.status_code == 409 and r.json()["error"]["type"] == \
        "FloatingIPPortAlreadyAssociated"
    # not an external network; a port on the external network; bob's floating IP on
    # alice's port; a fixed IP the port does not have; a reader
    ext_port = await make_port(api, world.admin, external["id"])
    before = net_counts()
    bad: list[tuple[Any, dict[str, Any], int]] = [
        (world.alice, {"floating_network_id": net["id"]}, 400),
        (world.admin, {"floating_network_id": external["id"], "port_id": ext_port["id"]}, 400),
        (world.bob, {"floating_network_id": external["id"], "port_id": port["id"]}, 404),
        (world.alice, {"floating_network_id": external["id"], "port_id": port["id"],
                       "fixed_ip_address": "10.51.0.99"}, 400),
        (world.rita, {"floating_network_id": external["id"]}, 403),
        (world.alice, {"floating_network_id": external["id"],
                       "floating_ip_address": first["floating_ip_address"]}, 409),
    ]
    for who, body, code in bad:
        r = await api.post("/v1/floating-ips", headers=who.h, json=body)
        assert r.status_code == code, (body, r.text)
    assert net_counts() == before
    # deleting the port disassociates its floating IP (Neutron)
    assert (await api.delete(f"/v1/ports/{port['id']}", headers=world.alice.h)).status_code == 204
    r = await api.get(f"/v1/floating-ips/{first['id']}", headers=world.alice.h)
    assert r.json()["port_id"] is None and r.json()["fixed_ip_address"] is None
    for fid in (first["id"],):
        assert (await api.delete(f"/v1/floating-ips/{fid}", headers=world.alice.h)
                ).status_code == 204
    assert (await api.delete(f"/v1/ports/{ext_port['id']}", headers=world.admin.h)
            ).status_code == 204


async def test_an_exhausted_external_pool_is_409(
        api: httpx.AsyncClient, world: World, external: dict[str, Any]) -> None:
    made = []
    for _ in range(3):  # the pool holds three addresses
        r = await api.post("/v1/floating-ips", headers=world.bob.h,
                           json={"floating_network_id": external["id"]})
        assert r.status_code == 201, r.text
        made.append(r.json())
    assert len({f["floating_ip_address"] for f in made}) == 3
    before = net_counts()
    r = await api.post("/v1/floating-ips", headers=world.bob.h,
                       json={"floating_network_id": external["id"]})
    assert r.status_code == 409 and r.json()["error"]["type"] == "IpAddressGenerationFailure"
    assert net_counts() == before
    # the external network is in use while it holds floating IPs
    r = await api.delete(f"/v1/networks/{external['id']}", headers=world.admin.h)
    assert r.status_code == 409
    for f in made:
        assert (await api.delete(f"/v1/floating-ips/{f['id']}", headers=world.bob.h)
                ).status_code == 204
