"""Security groups and rules: the project's `default` group with Neutron's default
rules, made once; rules checked and normalized, duplicates 409; a group in use 409;
scoping across projects."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.api.conftest import World
from tests.api.net_support import make_net, make_port, net_counts


async def default_group(api: httpx.AsyncClient, who: Any) -> dict[str, Any]:
    r = await api.get("/v1/security-groups", headers=who.h, params={"name": "default"})
    groups = r.json()["security_groups"]
    assert len(groups) == 1, groups
    group: dict[str, Any] = groups[0]
    return group


async def test_default_group_has_neutrons_rules_and_is_made_once(
        api: httpx.AsyncClient, world: World) -> None:
    lists = await asyncio.gather(*(api.get("/v1/security-groups", headers=world.carol.h)
                                   for _ in range(4)))
    assert all(r.status_code == 200 for r in lists)
    group = await default_group(api, world.carol)  # carol shares p1 with alice
    rules = {(r["direction"], r["ethertype"], r["protocol"], r["remote_group_id"],
              r["remote_ip_prefix"]) for r in group["security_group_rules"]}
    assert rules == {("egress", "IPv4", None, None, None), ("egress", "IPv6", None, None, None),
                     ("ingress", "IPv4", None, group["id"], None),
                     ("ingress", "IPv6", None, group["id"], None)}
    before = net_counts()
    r = await api.post("/v1/security-groups", headers=world.alice.h, json={"name": "default"})
    assert r.status_code == 409 and r.json()["error"]["type"] == \
        "SecurityGroupDefaultAlreadyExists"
    r = await api.delete(f"/v1/security-groups/{group['id']}", headers=world.alice.h)
    assert r.status_code == 409
    assert net_counts() == before
    assert (await default_group(api, world.bob))["id"] != group["id"]


async def test_a_new_group_has_egress_rules_and_takes_rules(
        api: httpx.AsyncClient, world: World) -> None:
    r = await api.post("/v1/security-groups", headers=world.alice.h,
                       json={"name": "web", "description": "http"})
    assert r.status_code == 201, r.text
    group = r.json()
    assert {(x["direction"], x["ethertype"]) for x in group["security_group_rules"]} == {
        ("egress", "IPv4"), ("egress", "IPv6")}
    body = {"security_group_id": group["id"], "direction": "ingress", "protocol": "tcp",
            "port_range_min": 80, "port_range_max": 80, "remote_ip_prefix": "192.0.2.7/24"}
    r = await api.post("/v1/security-group-rules", headers=world.alice.h, json=body)
    assert r.status_code == 201, r.text
    rule = r.json()
    assert (rule["ethertype"], rule["remote_ip_prefix"], rule["protocol"]) == (
        "IPv4", "192.0.2.0/24", "tcp")  # normalized as Neutron does
    before = net_counts()
    # the same rule again, also written as protocol number 6 and the host address
    for dup in (body, {**body, "protocol": "6"}, {**body, "protocol": 6}):
        r = await api.post("/v1/security-group-rules", headers=world.alice.h, json=dup)
        assert r.status_code == 409 and r.json()["error"]["type"] == "SecurityGroupRuleExists"
    assert net_counts() == before
    r = await api.get("/v1/security-group-rules", headers=world.alice.h,
                      params={"security_group_id": group["id"]})
    assert rule["id"] in {x["id"] for x in r.json()["security_group_rules"]}
    assert (await api.get(f"/v1/security-group-rules/{rule['id']}", headers=world.bob.h)
            ).status_code == 404
    r = await api.delete(f"/v1/security-group-rules/{rule['id']}", headers=world.alice.h)
    assert r.status_code == 204
    icmp = {"security_group_id": group["id"], "direction": "ingress", "protocol": "icmp",
            "port_range_min": 8, "port_range_max": 0, "remote_group_id": group["id"]}
    r = await api.post("/v1/security-group-rules", headers=world.alice.h, json=icmp)
    assert r.status_code == 201, r.text


BAD_RULES: list[dict[str, Any]] = [
    {"direction": "sideways"},
    {"direction": "ingress", "ethertype": "IPv5"},
    {"direction": "ingress", "protocol": "banana"},
    {"direction": "ingress", "protocol": 256},
    {"direction": "ingress", "protocol": "tcp", "port_range_min": 90, "port_range_max": 80},
    {"direction": "ingress", "protocol": "tcp", "port_range_min": 0, "port_range_max": 80},
    {"direction": "ingress", "protocol": "udp", "port_range_min": 53},
    {"direction": "ingress", "protocol": None, "port_range_min": 1, "port_range_max": 2},
    {"direction": "ingress", "protocol": "47", "port_range_min": 1, "port_range_max": 2},
    {"direction": "ingress", "protocol": "icmp", "port_range_max": 0},
    {"direction": "ingress", "protocol": "icmp", "port_range_min": 300},
    {"direction": "ingress", "remote_ip_prefix": "10.0.0.0/8", "remote_group_id": "x"},
    {"direction": "ingress", "remote_ip_prefix": "not-a-cidr"},
    {"direction": "ingress", "ethertype": "IPv6", "remote_ip_prefix": "10.0.0.0/8"},
    {"direction": "ingress", "description": "a\x00b"},
]


@pytest.mark.parametrize("fields", BAD_RULES)
async def test_bad_rules_are_400_and_change_nothing(
        api: httpx.AsyncClient, world: World, fields: dict[str, Any]) -> None:
    group = await default_group(api, world.alice)
    before = net_counts()
    r = await api.post("/v1/security-group-rules", headers=world.alice.h,
                       json={"security_group_id": group["id"], **fields})
    assert r.status_code == 400, r.text
    assert net_counts() == before


async def test_a_group_in_use_is_409_and_projects_are_apart(
        api: httpx.AsyncClient, world: World) -> None:
    r = await api.post("/v1/security-groups", headers=world.alice.h, json={"name": "db"})
    group = r.json()
    net, _ = await make_net(api, world.alice, "10.40.0.0/24")
    port = await make_port(api, world.alice, net["id"], security_groups=[group["id"]])
    before = net_counts()
    r = await api.delete(f"/v1/security-groups/{group['id']}", headers=world.alice.h)
    assert r.status_code == 409 and r.json()["error"]["type"] == "SecurityGroupInUse"
    assert (await api.get(f"/v1/security-groups/{group['id']}", headers=world.bob.h)
            ).status_code == 404
    # bob may not add a rule to it, nor name it as the remote group of his own
    bobs = await default_group(api, world.bob)
    for body in ({"security_group_id": group["id"], "direction": "ingress"},
                 {"security_group_id": bobs["id"], "direction": "ingress",
                  "remote_group_id": group["id"]}):
        r = await api.post("/v1/security-group-rules", headers=world.bob.h, json=body)
        assert r.status_code == 404, r.text
    assert (await api.post("/v1/security-groups", headers=world.rita.h, json={"name": "r"})
            ).status_code == 403
    assert net_counts() == before
    assert (await api.delete(f"/v1/ports/{port['id']}", headers=world.alice.h)).status_code == 204
    r = await api.delete(f"/v1/security-groups/{group['id']}", headers=world.alice.h)
    assert r.status_code == 204
    # an admin sees every project's groups
    r = await api.get("/v1/security-groups", headers=world.admin.h)
    projects = {g["project_id"] for g in r.json()["security_groups"]}
    assert {world.alice.project_id, world.bob.project_id} <= projects
