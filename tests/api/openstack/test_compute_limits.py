"""GET /limits and os-server-groups through the compute facade: Nova's keys per
microversion against Tempest's schemas, usage from vmflow's quotas."""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import World, add_instance
from tests.api.openstack.nova_support import C, check, fault, nova


@pytest.mark.parametrize(("version", "module"), [("2.1", "v2_1.limits"), ("2.35", "v2_1.limits"),
                                                 ("2.36", "v2_36.limits"),
                                                 ("2.39", "v2_39.limits"),
                                                 ("2.57", "v2_57.limits"),
                                                 ("2.79", "v2_57.limits")])
async def test_limits(api: httpx.AsyncClient, world: World, version: str, module: str) -> None:
    add_instance(world, owner=world.bob, name="counted")
    r = await api.get(f"{C}/limits", headers=nova(world.bob, version))
    absolute = check(r, module, "get_limit")["limits"]["absolute"]
    assert absolute["totalInstancesUsed"] >= 1 and absolute["totalRAMUsed"] >= 512
    assert ("maxImageMeta" in absolute) == (version <= "2.38")
    assert ("maxTotalFloatingIps" in absolute) == (version <= "2.35")


async def test_other_projects_limits(api: httpx.AsyncClient, world: World) -> None:
    q = f"?tenant_id={world.bob.project_id}"
    fault(await api.get(f"{C}/limits{q}", headers=nova(world.alice)), 403)
    r = await api.get(f"{C}/limits{q}", headers=nova(world.admin))
    check(r, "v2_1.limits", "get_limit")
    fault(await api.get(f"{C}/limits?tenant_id=nope", headers=nova(world.admin)), 404)


async def test_server_groups_are_empty(api: httpx.AsyncClient, world: World) -> None:
    for version, module in (("2.1", "v2_1"), ("2.13", "v2_13"), ("2.64", "v2_64")):
        r = await api.get(f"{C}/os-server-groups", headers=nova(world.alice, version))
        assert check(r, f"{module}.server_groups", "list_server_groups") == {"server_groups": []}
    fault(await api.post(f"{C}/os-server-groups", headers=nova(world.alice),
                         json={"server_group": {"name": "g", "policies": ["affinity"]}}), 403)
    fault(await api.get(f"{C}/os-server-groups/x", headers=nova(world.alice)), 404)
    fault(await api.delete(f"{C}/os-server-groups/x", headers=nova(world.alice)), 404)
    fault(await api.post(f"{C}/os-server-groups", headers=nova(world.rita), json={}), 403)
