"""GET /servers/{id}/os-instance-actions[/{request_id}]: the request id a create or an
action answered with finds its action; shapes per microversion against Tempest's
schemas (2.1, 2.51 events, 2.58 updated_at and paging, 2.62 event hosts, 2.79)."""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import World, add_instance
from tests.api.openstack.test_compute_servers_support import (
    C,
    h,
    post_action,
    schemas,
    validate,
)


async def _history(api: httpx.AsyncClient, world: World) -> tuple[str, list[str]]:
    """A server with two actions (a reboot, then a lock): their request ids."""
    inst = add_instance(world, name="history")
    rids = []
    for body in ({"reboot": {"type": "HARD"}}, {"lock": None}):
        r = await post_action(api, world.alice, inst.id, body)
        assert r.status_code == 202, r.text
        rids.append(r.headers["X-OpenStack-Request-Id"])
    return inst.id, rids


@pytest.mark.parametrize("version", ["2.1", "2.50", "2.51", "2.58", "2.62", "2.66", "2.79"])
async def test_list_and_show_match_tempest(api: httpx.AsyncClient, world: World,
                                           version: str) -> None:
    sid, rids = await _history(api, world)
    schema = schemas(version)
    for who in (world.alice, world.admin):
        r = await api.get(f"{C}/servers/{sid}/os-instance-actions", headers=h(who, version))
        actions = validate(schema.list_instance_actions, r)["instanceActions"]
        assert [a["action"] for a in actions] == ["lock", "reboot"]  # newest first
        assert [a["request_id"] for a in actions] == rids[::-1]
        for rid, name in zip(rids, ("reboot", "lock"), strict=True):
            r = await api.get(f"{C}/servers/{sid}/os-instance-actions/{rid}",
                              headers=h(who, version))
            action = validate(schema.show_instance_action, r)["instanceAction"]
            assert (action["action"], action["instance_uuid"]) == (name, sid)
            if "events" in action:
                (event,) = action["events"]
                assert event["result"] == ("Success" if name == "lock" else None)


async def test_paging_from_258(api: httpx.AsyncClient, world: World) -> None:
    sid, rids = await _history(api, world)
    url = f"{C}/servers/{sid}/os-instance-actions"
    r = await api.get(f"{url}?limit=1", headers=h(world.alice, "2.58"))
    body = validate(schemas("2.58").list_instance_actions, r)
    assert [a["request_id"] for a in body["instanceActions"]] == [rids[1]]
    assert body["links"][0]["rel"] == "next"
    r = await api.get(f"{url}?limit=1&marker={rids[1]}", headers=h(world.alice, "2.58"))
    assert [a["request_id"] for a in r.json()["instanceActions"]] == [rids[0]]
    for query in ("marker=req-nope", "limit=x", "changes-since=nope"):
        assert (await api.get(f"{url}?{query}", headers=h(world.alice, "2.58"))
                ).status_code == 400, query
    r = await api.get(f"{url}?changes-since=2999-01-01T00:00:00Z",
                      headers=h(world.alice, "2.58"))
    assert r.json()["instanceActions"] == []


async def test_unknown_request_foreign_or_missing_server_404(api: httpx.AsyncClient,
                                                             world: World) -> None:
    sid, rids = await _history(api, world)
    r = await api.get(f"{C}/servers/{sid}/os-instance-actions/req-unknown",
                      headers=h(world.alice))
    assert r.status_code == 404 and "itemNotFound" in r.json()
    for path in (f"{sid}/os-instance-actions", f"{sid}/os-instance-actions/{rids[0]}"):
        assert (await api.get(f"{C}/servers/{path}", headers=h(world.bob))).status_code == 404
    # a reader may read the history
    r = await api.get(f"{C}/servers/{sid}/os-instance-actions", headers=h(world.rita))
    assert r.status_code == 200
