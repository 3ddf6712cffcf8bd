"""api/services/nics.resolve_nics, the helper the launch will call: "none", "auto"
(Nova's get-me-a-network: the project's one network, else one made once from the
pool, 409 when several), and lists of {uuid} and {port} checked against the DB."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from api.auth import AuthContext
from api.errors import ApiError
from api.services.nics import resolve_nics
from tests.api.conftest import Caller, World, make_caller, session
from tests.api.net_support import make_net, make_port, net_counts
from vmflow.nic_requests import AUTO_NETWORK_NAME, NicRequest

POOL = "10.100.0.0/16"


def auth_of(c: Caller) -> AuthContext:
    return AuthContext(user_id=c.user_id, project_id=c.project_id, role="member")


def resolve(c: Caller, value: object, pool: str = POOL) -> list[NicRequest]:
    with session() as s:
        return resolve_nics(s, auth_of(c), value, pool)


async def new_member(api: httpx.AsyncClient, world: World, name: str) -> Caller:
    r = await api.post("/v1/projects", headers=world.admin.h, json={"name": name})
    assert r.status_code == 201, r.text
    return await make_caller(api, world.admin.h, f"u-{name}", name, "member")


async def test_auto_makes_the_project_network_once(api: httpx.AsyncClient,
                                                   world: World) -> None:
    dora = await new_member(api, world, "auto-a")
    with ThreadPoolExecutor(4) as ex:  # four first uses at once: one network
        results = list(ex.map(lambda _: resolve(dora, "auto"), range(4)))
    assert len({r[0].network_id for r in results}) == 1
    net_id = results[0][0].network_id
    net = (await api.get(f"/v1/networks/{net_id}", headers=dora.h)).json()
    assert net["name"] == AUTO_NETWORK_NAME and net["project_id"] == dora.project_id
    subnet = (await api.get(f"/v1/subnets/{net['subnets'][0]}", headers=dora.h)).json()
    assert subnet["cidr"].startswith("10.100.") and subnet["cidr"].endswith("/24")
    assert resolve(dora, "auto") == [NicRequest(network_id=net_id)]
    # another project gets the next /24 of the pool
    eve = await new_member(api, world, "auto-b")
    other = resolve(eve, "auto")[0].network_id
    other_net = (await api.get(f"/v1/networks/{other}", headers=eve.h)).json()
    other_subnet = (await api.get(f"/v1/subnets/{other_net['subnets'][0]}",
                                  headers=eve.h)).json()
    assert other_subnet["cidr"] != subnet["cidr"]


async def test_auto_uses_the_one_network_and_refuses_several(
        api: httpx.AsyncClient, world: World) -> None:
    fay = await new_member(api, world, "auto-c")
    net, _ = await make_net(api, fay, "10.60.0.0/24")
    assert resolve(fay, "auto") == [NicRequest(network_id=net["id"])]
    await make_net(api, fay, "10.61.0.0/24")
    before = net_counts()
    with pytest.raises(ApiError) as e:
        resolve(fay, "auto")
    assert (e.value.status, e.value.type) == (409, "NetworkAmbiguous")
    assert resolve(fay, "none") == [] and net_counts() == before


async def test_lists_of_networks_and_ports_are_checked(
        api: httpx.AsyncClient, world: World) -> None:
    net, _ = await make_net(api, world.alice, "10.62.0.0/24")
    free = await make_port(api, world.alice, net["id"])
    used = await make_port(api, world.alice, net["id"], device_id="vm-1",
                           device_owner="compute:nova")
    assert resolve(world.alice, [{"uuid": net["id"], "fixed_ip": "10.62.0.9"},
                                 {"port": free["id"]}]) == [
        NicRequest(network_id=net["id"], fixed_ip="10.62.0.9"),
        NicRequest(network_id=net["id"], port_id=free["id"])]
    for value, status in (([{"port": used["id"]}], 409), ([{"port": free["id"]}], None),
                          ([{"uuid": "no-such-network"}], 404), ("sometimes", 400)):
        if status is None:  # bob may not use alice's port
            with pytest.raises(ApiError) as e:
                resolve(world.bob, value)
            assert e.value.status == 404
            continue
        with pytest.raises(ApiError) as e:
            resolve(world.alice, value)
        assert e.value.status == status, value


async def test_an_exhausted_auto_pool_is_409(api: httpx.AsyncClient, world: World) -> None:
    """A pool with no /24 left for a project without a network: 409, nothing made."""
    first = await new_member(api, world, "auto-d")
    second = await new_member(api, world, "auto-e")
    assert resolve(first, "auto", pool="10.99.0.0/24")
    before = net_counts()
    with pytest.raises(ApiError) as e:
        resolve(second, "auto", pool="10.99.0.0/24")
    assert (e.value.status, e.value.type) == (409, "AutoAllocationFailure")
    assert net_counts() == before


async def test_auto_skips_a_range_another_network_took(api: httpx.AsyncClient,
                                                       world: World) -> None:
    pool = "10.103.0.0/23"  # two /24s; a user network holds the first
    taken, _ = await make_net(api, world.alice, "10.103.0.0/24")
    gus = await new_member(api, world, "auto-skip")
    (nic,) = resolve(gus, "auto", pool)
    net = (await api.get(f"/v1/networks/{nic.network_id}", headers=gus.h)).json()
    subnet = (await api.get(f"/v1/subnets/{net['subnets'][0]}", headers=gus.h)).json()
    assert subnet["cidr"] == "10.103.1.0/24"
    assert (await api.delete(f"/v1/networks/{taken['id']}", headers=world.alice.h)
            ).status_code == 204
