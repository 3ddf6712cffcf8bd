"""Ports: generated MACs, addresses from the pools or requested, the default security
group, atomic allocation under concurrency on the real SQLite file (through the API
and with threads straight at vmflow.ip_allocation), exhaustion and a taken address
as Neutron's 409s that change nothing, and deletion freeing the address."""

from __future__ import annotations

import asyncio
import ipaddress
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
from sqlmodel import select

from tests.api.conftest import World, session
from tests.api.net_support import make_net, make_port, net_counts
from vmflow.ip_allocation import PortSpec, add_port
from vmflow.ipam import IpamError
from vmflow.network_models import IpAllocation

RACERS = 12


async def test_a_port_gets_a_mac_an_address_and_the_default_group(
        api: httpx.AsyncClient, world: World) -> None:
    net, subnet = await make_net(api, world.alice, "10.30.0.0/24")
    assert subnet is not None
    port = await make_port(api, world.alice, net["id"], name="eth0", device_id="dev-1",
                           device_owner="compute:nova")
    mac = port["mac_address"]
    assert mac.startswith("fa:16:3e:") and int(mac[:2], 16) & 0b10  # locally administered
    assert port["fixed_ips"] == [{"subnet_id": subnet["id"], "ip_address": "10.30.0.2"}]
    assert port["status"] == "DOWN" and port["binding:host_id"] == ""
    groups = (await api.get("/v1/security-groups", headers=world.alice.h,
                            params={"name": "default"})).json()["security_groups"]
    assert port["security_groups"] == [groups[0]["id"]]
    second = await make_port(api, world.alice, net["id"])
    assert second["fixed_ips"][0]["ip_address"] == "10.30.0.3"
    assert second["mac_address"] != mac
    r = await api.get("/v1/ports", headers=world.alice.h, params={"device_id": "dev-1"})
    assert [p["id"] for p in r.json()["ports"]] == [port["id"]]
    assert (await api.get(f"/v1/ports/{port['id']}", headers=world.bob.h)).status_code == 404
    assert (await api.delete(f"/v1/ports/{port['id']}", headers=world.rita.h)).status_code == 403


async def test_requested_address_must_be_free_and_in_a_pool(
        api: httpx.AsyncClient, world: World) -> None:
    net, subnet = await make_net(api, world.alice, "10.31.0.0/24")
    assert subnet is not None
    want = [{"ip_address": "10.31.0.50"}]
    port = await make_port(api, world.alice, net["id"], fixed_ips=want)
    assert port["fixed_ips"][0]["ip_address"] == "10.31.0.50"
    before = net_counts()
    r = await api.post("/v1/ports", headers=world.alice.h,
                       json={"network_id": net["id"], "fixed_ips": want})
    assert r.status_code == 409 and r.json()["error"]["type"] == "IpAddressAlreadyAllocated"
    for ip in ("10.31.0.1", "10.31.1.5", "10.31.0.255", "fe80::1", "nonsense"):  # gateway, ...
        r = await api.post("/v1/ports", headers=world.alice.h,
                           json={"network_id": net["id"], "fixed_ips": [{"ip_address": ip}]})
        assert r.status_code == 400, (ip, r.text)
    r = await api.post("/v1/ports", headers=world.alice.h, json={
        "network_id": net["id"], "fixed_ips": [{"subnet_id": "not-this-one"}]})
    assert r.status_code == 400
    assert net_counts() == before
    # deleting the port frees its address for the next one
    assert (await api.delete(f"/v1/ports/{port['id']}", headers=world.alice.h)).status_code == 204
    again = await make_port(api, world.alice, net["id"], fixed_ips=want)
    assert again["fixed_ips"][0]["ip_address"] == "10.31.0.50"


async def test_an_exhausted_pool_is_409_and_changes_nothing(
        api: httpx.AsyncClient, world: World) -> None:
    net, _ = await make_net(api, world.alice, "10.32.0.0/30")  # one address: .2
    await make_port(api, world.alice, net["id"])
    before = net_counts()
    r = await api.post("/v1/ports", headers=world.alice.h, json={"network_id": net["id"]})
    assert r.status_code == 409 and r.json()["error"]["type"] == "IpAddressGenerationFailure"
    assert net_counts() == before


async def test_concurrent_api_creates_never_share_an_address(
        api: httpx.AsyncClient, world: World) -> None:
    """Twelve requests at once for a pool of five: five ports, five distinct addresses,
    seven 409s (the API runs each request in its own thread, against one SQLite file)."""
    net, _ = await make_net(api, world.alice, "10.33.0.0/29", allocation_pools=[
        {"start": "10.33.0.2", "end": "10.33.0.6"}])
    results = await asyncio.gather(*(
        api.post("/v1/ports", headers=world.alice.h, json={"network_id": net["id"]})
        for _ in range(RACERS)))
    ok = [r.json()["fixed_ips"][0]["ip_address"] for r in results if r.status_code == 201]
    refused = [r.json()["error"]["type"] for r in results if r.status_code != 201]
    assert sorted(ok) == [f"10.33.0.{i}" for i in range(2, 7)]
    assert refused == ["IpAddressGenerationFailure"] * (RACERS - 5)


def race_for_addresses(network_id: str, project_id: str, racers: int) -> list[str]:
    """`racers` threads, each in its own session, all let go at once to allocate a port
    on the network: the addresses the winners got ("refused" for each loser)."""
    start = threading.Barrier(racers)

    def one(_: int) -> str:
        with session() as s:
            start.wait()
            try:
                _, ips = add_port(s, PortSpec(network_id=network_id, project_id=project_id))
                s.commit()
                return ips[0].ip_address
            except IpamError as e:
                s.rollback()
                assert e.type == "IpAddressGenerationFailure", e
                return "refused"

    with ThreadPoolExecutor(racers) as ex:
        return list(ex.map(one, range(racers)))


async def test_threads_racing_on_the_sqlite_file_never_share_an_address(
        api: httpx.AsyncClient, world: World) -> None:
    net, _ = await make_net(api, world.alice, "10.34.0.0/28")  # .2-.14: 13 addresses
    results = race_for_addresses(net["id"], world.alice.project_id, 16)
    won = [r for r in results if r != "refused"]
    assert len(won) == 13 and len(set(won)) == 13 and results.count("refused") == 3
    assert all(ipaddress.ip_address(ip) in ipaddress.ip_network("10.34.0.0/28") for ip in won)
    with session() as s:
        stored = s.exec(select(IpAllocation.ip_address).where(
            IpAllocation.network_id == net["id"])).all()
    assert sorted(stored) == sorted(won)


async def test_security_groups_of_a_port_must_be_the_projects(
        api: httpx.AsyncClient, world: World) -> None:
    net, _ = await make_net(api, world.alice, "10.35.0.0/24")
    r = await api.post("/v1/security-groups", headers=world.bob.h, json={"name": "bobs"})
    assert r.status_code == 201
    before = net_counts()
    r = await api.post("/v1/ports", headers=world.alice.h,
                       json={"network_id": net["id"], "security_groups": [r.json()["id"]]})
    assert r.status_code == 404
    r = await api.post("/v1/ports", headers=world.alice.h,
                       json={"network_id": net["id"], "binding:host_id": "h1"})
    assert r.status_code == 403
    assert net_counts() == before
    port = await make_port(api, world.alice, net["id"], security_groups=[])
    assert port["security_groups"] == []
