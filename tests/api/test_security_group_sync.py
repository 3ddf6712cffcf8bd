"""A security-group change starts (or signals) its group's SyncSecurityGroup
(secgroup-<group id>) on the real Temporal dev server: a rule made or deleted, a port
joining a group that another group's rule names, a group deleted whose id other
rules named. Bad input starts nothing and changes nothing. (No worker polls
`control` here, so a started sync stays Running and its signals are countable.)"""

from __future__ import annotations

from typing import Any

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from tests.api.conftest import World
from tests.api.net_support import make_net, make_port, net_counts
from vmflow.names import security_group_workflow_id


async def sync_state(temporal: Client, group_id: str) -> tuple[str, int] | None:
    """(workflow type, signals received) of the group's sync; None if none was started."""
    handle = temporal.get_workflow_handle(security_group_workflow_id(group_id))
    try:
        desc = await handle.describe()
    except RPCError as e:
        assert e.status == RPCStatusCode.NOT_FOUND, e
        return None
    assert desc.status == WorkflowExecutionStatus.RUNNING
    signals = 0
    async for event in handle.fetch_history_events():
        signals += event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    return desc.workflow_type, signals


async def group(api: httpx.AsyncClient, world: World, name: str) -> dict[str, Any]:
    r = await api.post("/v1/security-groups", headers=world.alice.h, json={"name": name})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def web_rule(group_id: str, **more: Any) -> dict[str, Any]:
    return {"security_group_id": group_id, "direction": "ingress", "protocol": "tcp",
            "port_range_min": 8080, "port_range_max": 8080, **more}


async def test_a_rule_made_or_deleted_signals_its_groups_sync(
        api: httpx.AsyncClient, world: World, temporal: Client) -> None:
    g = await group(api, world, "sync-web")
    assert await sync_state(temporal, g["id"]) is None  # a new group has no port yet
    r = await api.post("/v1/security-group-rules", headers=world.alice.h,
                       json=web_rule(g["id"], remote_ip_prefix="10.0.0.0/24"))
    assert r.status_code == 201, r.text
    assert await sync_state(temporal, g["id"]) == ("SyncSecurityGroup", 1)
    r = await api.post("/v1/security-group-rules", headers=world.alice.h,
                       json=web_rule(g["id"], remote_ip_prefix="10.9.0.0/24"))
    assert r.status_code == 201, r.text
    assert await sync_state(temporal, g["id"]) == ("SyncSecurityGroup", 2)  # the same run
    r = await api.delete(f"/v1/security-group-rules/{r.json()['id']}", headers=world.alice.h)
    assert r.status_code == 204, r.text
    assert await sync_state(temporal, g["id"]) == ("SyncSecurityGroup", 3)


async def test_bad_rules_start_nothing_and_change_nothing(
        api: httpx.AsyncClient, world: World, temporal: Client) -> None:
    g = await group(api, world, "sync-bad")
    before = net_counts()
    bad = [web_rule(g["id"], port_range_min=9000),  # min > max
           web_rule(g["id"], remote_ip_prefix="10.0.0.0/33"),
           web_rule(g["id"], protocol="gre-ish"),
           web_rule(g["id"], remote_ip_prefix="10.0.0.0/24", remote_group_id=g["id"])]
    for body in bad:
        r = await api.post("/v1/security-group-rules", headers=world.alice.h, json=body)
        assert r.status_code == 400, (body, r.text)
    r = await api.post("/v1/security-group-rules", headers=world.bob.h, json=web_rule(g["id"]))
    assert r.status_code == 404  # another project's group
    r = await api.post("/v1/security-group-rules", headers=world.rita.h, json=web_rule(g["id"]))
    assert r.status_code == 403  # a reader
    r = await api.delete("/v1/security-group-rules/no-such-rule", headers=world.alice.h)
    assert r.status_code == 404
    assert net_counts() == before
    assert await sync_state(temporal, g["id"]) is None


async def test_a_duplicate_rule_is_409_and_signals_nothing_more(
        api: httpx.AsyncClient, world: World, temporal: Client) -> None:
    g = await group(api, world, "sync-dup")
    body = web_rule(g["id"], remote_ip_prefix="10.0.0.0/24")
    assert (await api.post("/v1/security-group-rules", headers=world.alice.h,
                           json=body)).status_code == 201
    before = net_counts()
    r = await api.post("/v1/security-group-rules", headers=world.alice.h, json=body)
    assert r.status_code == 409 and r.json()["error"]["type"] == "SecurityGroupRuleExists"
    assert net_counts() == before
    assert await sync_state(temporal, g["id"]) == ("SyncSecurityGroup", 1)


async def test_membership_changes_sync_the_groups_other_rules_name(
        api: httpx.AsyncClient, world: World, temporal: Client) -> None:
    """A port joining or leaving `db` changes the filters of `app`'s members, whose rule
    names `db` as its remote group: db's sync runs (its plan covers app's members). A
    group no rule names is not synced for a port."""
    app, dbg, plain = [await group(api, world, n) for n in ("sync-app", "sync-db", "sync-x")]
    r = await api.post("/v1/security-group-rules", headers=world.alice.h,
                       json=web_rule(app["id"], remote_group_id=dbg["id"]))
    assert r.status_code == 201, r.text
    assert await sync_state(temporal, dbg["id"]) is None
    net, _ = await make_net(api, world.alice, "10.66.0.0/24")
    port = await make_port(api, world.alice, net["id"], security_groups=[dbg["id"]])
    assert await sync_state(temporal, dbg["id"]) == ("SyncSecurityGroup", 1)
    await make_port(api, world.alice, net["id"], security_groups=[plain["id"]])
    assert await sync_state(temporal, plain["id"]) is None
    r = await api.delete(f"/v1/ports/{port['id']}", headers=world.alice.h)
    assert r.status_code == 204
    assert await sync_state(temporal, dbg["id"]) == ("SyncSecurityGroup", 2)


async def test_a_deleted_group_syncs_the_groups_whose_rules_named_it(
        api: httpx.AsyncClient, world: World, temporal: Client) -> None:
    app, gone = [await group(api, world, n) for n in ("sync-app2", "sync-gone")]
    r = await api.post("/v1/security-group-rules", headers=world.alice.h,
                       json=web_rule(app["id"], remote_group_id=gone["id"]))
    assert r.status_code == 201, r.text
    assert await sync_state(temporal, app["id"]) == ("SyncSecurityGroup", 1)
    r = await api.delete(f"/v1/security-groups/{gone['id']}", headers=world.alice.h)
    assert r.status_code == 204, r.text
    assert await sync_state(temporal, app["id"]) == ("SyncSecurityGroup", 2)
    assert await sync_state(temporal, gone["id"]) is None
