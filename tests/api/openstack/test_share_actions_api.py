"""POST /share/v2/.../shares/{id}/action (and the os- names), /share-access-rules."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.conftest import World
from tests.api.openstack.share_support import fault, h, running_ops, url
from tests.api.test_shares import add_share, share_counts, share_row

ALLOW = {"access_type": "ip", "access_to": "10.0.0.0/24"}


async def act(api: httpx.AsyncClient, who: Any, share_id: str, body: Any,
              version: str = "2.80") -> httpx.Response:
    return await api.post(url(who, f"/shares/{share_id}/action"), headers=h(who, version),
                          json=body)


@pytest.mark.parametrize("name", ["allow_access", "os-allow_access"])
async def test_allow_list_show_and_deny_access(api: httpx.AsyncClient, world: World,
                                               name: str) -> None:
    a = world.alice
    share = add_share(a, name=f"acc-{name}")
    r = await act(api, a, share.id, {name: ALLOW})
    assert r.status_code == 200, r.text
    rule = r.json()["access"]
    assert set(rule) == {"id", "share_id", "access_type", "access_to", "access_level",
                         "state", "access_key", "created_at", "updated_at", "metadata"}
    assert (rule["access_level"], rule["state"]) == ("rw", "queued_to_apply")
    r = await api.get(url(a, f"/share-access-rules?share_id={share.id}"), headers=h(a))
    assert [x["id"] for x in r.json()["access_list"]] == [rule["id"]]
    r = await api.get(url(a, f"/share-access-rules/{rule['id']}"), headers=h(a))
    assert r.json()["access"]["share_id"] == share.id
    r = await act(api, a, share.id, {"access_list": None}, "2.27")
    (old,) = r.json()["access_list"]
    assert old["state"] == "new" and "created_at" not in old  # the names before 2.28/2.33
    r = await act(api, a, share.id, {name.replace("allow", "deny"): {"access_id": rule["id"]}})
    assert r.status_code == 202 and r.content == b""
    r = await api.get(url(a, f"/share-access-rules/{rule['id']}"), headers=h(a))
    assert r.json()["access"]["state"] == "queued_to_deny"


@pytest.mark.parametrize("body", [
    {"allow_access": {"access_type": "ip", "access_to": "not-an-ip"}},
    {"allow_access": {**ALLOW, "access_level": "rx"}},
    {"allow_access": {**ALLOW, "metadata": {"k": "v"}}},
    {"allow_access": {"access_to": "10.0.0.1"}},
    {"deny_access": {}}, {"extend": {"new_size": 1}}, {"shrink": {"new_size": 5}},
    {"extend": {"new_size": "big"}}, {"no_such": None}, {"extend": {}, "shrink": {}},
    {"soft_delete": None}, {"restore": None}])
async def test_bad_action_is_400_and_changes_nothing(api: httpx.AsyncClient, world: World,
                                                     body: dict[str, Any]) -> None:
    share = add_share(world.alice, name="bad-act", size=2)
    before = share_counts()
    r = await act(api, world.alice, share.id, body)
    assert r.status_code == 400, r.text
    assert fault(r.json())[0] == "badRequest"
    assert share_counts() == before


@pytest.mark.parametrize("name", ["extend", "os-extend"])
async def test_extend_starts_and_a_second_is_409(api: httpx.AsyncClient, world: World,
                                                 name: str) -> None:
    a = world.alice
    share = add_share(a, name=f"ext-{name}")
    r = await act(api, a, share.id, {name: {"new_size": 2}})
    assert r.status_code == 202 and r.content == b""
    assert [op.action for op in running_ops(share.id)] == ["extend"]
    r = await act(api, a, share.id, {"shrink": {"new_size": 1}})
    assert r.status_code == 409
    r = await act(api, a, share.id, {"allow_access": ALLOW})
    assert r.status_code == 409
    # reset_status is refused while the operation runs
    r = await act(api, world.admin, share.id, {"reset_status": {"status": "error"}})
    assert r.status_code == 409


async def test_shrink_starts(api: httpx.AsyncClient, world: World) -> None:
    share = add_share(world.alice, name="shr", size=3)
    r = await act(api, world.alice, share.id, {"os-shrink": {"new_size": 2}})
    assert r.status_code == 202
    assert [op.action for op in running_ops(share.id)] == ["shrink"]


@pytest.mark.parametrize("name", ["reset_status", "os-reset_status"])
async def test_reset_status_and_task_state_are_admins(api: httpx.AsyncClient, world: World,
                                                      name: str) -> None:
    share = add_share(world.alice, name=f"rst-{name}", status="error")
    r = await act(api, world.alice, share.id, {name: {"status": "available"}})
    assert r.status_code == 403 and fault(r.json())[0] == "forbidden"
    r = await act(api, world.admin, share.id, {name: {"status": "available"}})
    assert r.status_code == 202, r.text
    row = share_row(share.id)
    assert row is not None and row.status == "available"
    # what `openstack share set --status` always sends next
    r = await act(api, world.admin, share.id, {"reset_task_state": {"task_state": None}})
    assert r.status_code == 202
    r = await act(api, world.alice, share.id, {"reset_task_state": {"task_state": None}})
    assert r.status_code == 403
    r = await act(api, world.admin, share.id, {"reset_task_state": {"task_state": "x"}})
    assert r.status_code == 400
    r = await act(api, world.admin, share.id, {name: {"status": "bogus"}})
    assert r.status_code == 400


@pytest.mark.parametrize("name", ["force_delete", "os-force_delete"])
async def test_force_delete_is_admins(api: httpx.AsyncClient, world: World, name: str) -> None:
    share = add_share(world.alice, name=f"fd-{name}", status="creating")
    r = await act(api, world.alice, share.id, {name: None})
    assert r.status_code == 403
    r = await act(api, world.admin, share.id, {name: None})
    assert r.status_code == 202, r.text
    assert [op.action for op in running_ops(share.id)] == ["force_delete"]


async def test_access_rules_of_other_projects_are_404(api: httpx.AsyncClient,
                                                      world: World) -> None:
    share = add_share(world.alice, name="acc-iso")
    r = await act(api, world.alice, share.id, {"allow_access": ALLOW})
    rule = r.json()["access"]
    b = world.bob
    assert (await api.get(url(b, f"/share-access-rules/{rule['id']}"),
                          headers=h(b))).status_code == 404
    assert (await api.get(url(b, f"/share-access-rules?share_id={share.id}"),
                          headers=h(b))).status_code == 404
    assert (await act(api, b, share.id, {"deny_access": {"access_id": rule["id"]}})
            ).status_code == 404
    assert (await api.get(url(b, "/share-access-rules"), headers=h(b))).status_code == 400
