"""Project isolation of /networking, generated from the network sub-application's own
routes (the pattern of tests/api/test_isolation_matrix.py, in Neutron's bodies):

- SCOPED: the path names project A's resource: B's member gets 404 exactly as for a
  missing id (same NeutronError type), A's reader gets 403 on every mutation.
- LISTS: lists and creates: B's list shows none of A's ids, A's reader may not create.
- OPEN: discovery, with the reason.
A route of the sub-app missing from MATRIX (or listed but gone) fails the first test.
Also: B naming A's resources in a request body is refused as naming missing ones, and
the admin-only attributes (shared, router:external, binding:host_id) refuse members.
Nothing refused changes a row."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from sqlalchemy import func
from sqlmodel import SQLModel, select

from api.openstack import network
from tests.api.conftest import Caller, World, session
from tests.api.isolation_support import fill, params_of
from tests.api.openstack.test_network_resources import N, ok, os_h, os_network, os_subnet

MUTATING = frozenset({"POST", "PUT", "DELETE"})
MISSING = "00000000-0000-4000-8000-00000000dead"
V = "/networking/v2.0"

# (method, path) -> (kind, body or reason)
MATRIX: dict[tuple[str, str], tuple[str, Any]] = {
    ("GET", "/networking/"): ("OPEN", "the version list, unauthenticated as Neutron's"),
    ("GET", f"{V}"): ("OPEN", "the resource list: the same for every caller"),
    ("GET", f"{V}/"): ("OPEN", "the resource list: the same for every caller"),
    ("GET", f"{V}/extensions"): ("OPEN", "the extension list: the same for every caller"),
    ("GET", f"{V}/extensions/{{alias}}"): ("OPEN", "one extension: the same for all"),
    ("GET", f"{V}/networks"): ("LISTS", None),
    ("POST", f"{V}/networks"): ("LISTS", {"network": {"name": "iso-x"}}),
    ("GET", f"{V}/networks/{{network_id}}"): ("SCOPED", None),
    ("PUT", f"{V}/networks/{{network_id}}"): ("SCOPED", {"network": {"name": "iso-y"}}),
    ("DELETE", f"{V}/networks/{{network_id}}"): ("SCOPED", None),
    ("GET", f"{V}/subnets"): ("LISTS", None),
    ("POST", f"{V}/subnets"): ("LISTS", {"subnet": {
        "network_id": "{network_id}", "cidr": "10.240.29.0/24", "ip_version": 4}}),
    ("GET", f"{V}/subnets/{{subnet_id}}"): ("SCOPED", None),
    ("PUT", f"{V}/subnets/{{subnet_id}}"): ("SCOPED", {"subnet": {"name": "iso-y"}}),
    ("DELETE", f"{V}/subnets/{{subnet_id}}"): ("SCOPED", None),
    ("GET", f"{V}/ports"): ("LISTS", None),
    ("POST", f"{V}/ports"): ("LISTS", {"port": {"network_id": "{network_id}"}}),
    ("GET", f"{V}/ports/{{port_id}}"): ("SCOPED", None),
    ("PUT", f"{V}/ports/{{port_id}}"): ("SCOPED", {"port": {"name": "iso-y"}}),
    ("DELETE", f"{V}/ports/{{port_id}}"): ("SCOPED", None),
    ("GET", f"{V}/security-groups"): ("LISTS", None),
    ("POST", f"{V}/security-groups"): ("LISTS", {"security_group": {"name": "iso-x"}}),
    ("GET", f"{V}/security-groups/{{group_id}}"): ("SCOPED", None),
    ("PUT", f"{V}/security-groups/{{group_id}}"): ("SCOPED", {"security_group": {
        "name": "iso-y"}}),
    ("DELETE", f"{V}/security-groups/{{group_id}}"): ("SCOPED", None),
    ("GET", f"{V}/security-group-rules"): ("LISTS", None),
    ("POST", f"{V}/security-group-rules"): ("LISTS", {"security_group_rule": {
        "security_group_id": "{group_id}", "direction": "egress", "protocol": "udp"}}),
    ("GET", f"{V}/security-group-rules/{{rule_id}}"): ("SCOPED", None),
    ("DELETE", f"{V}/security-group-rules/{{rule_id}}"): ("SCOPED", None),
    ("GET", f"{V}/floatingips"): ("LISTS", None),
    ("POST", f"{V}/floatingips"): ("LISTS", {"floatingip": {
        "floating_network_id": "{external_network_id}"}}),
    ("GET", f"{V}/floatingips/{{fip_id}}"): ("SCOPED", None),
    ("PUT", f"{V}/floatingips/{{fip_id}}"): ("SCOPED", {"floatingip": {"port_id": None}}),
    ("DELETE", f"{V}/floatingips/{{fip_id}}"): ("SCOPED", None),
}


def sub_app_routes() -> set[tuple[str, str]]:
    """(method, path) of every route of the sub-app, included routers walked."""
    found: set[tuple[str, str]] = set()

    def walk(routes: list[Any], prefix: str) -> None:
        for r in routes:
            if isinstance(r, APIRoute):
                found.update((m, prefix + r.path) for m in r.methods or ())
            elif hasattr(r, "original_router"):  # an included router
                walk(r.original_router.routes, prefix + r.include_context.prefix)
    walk(network.create().routes, "/networking")
    return found


def cases(*kinds: str, mutating: bool | None = None) -> list[Any]:
    return [pytest.param(m, p, id=f"{m} {p}") for (m, p), (kind, _) in MATRIX.items()
            if kind in kinds and (mutating is None or (m in MUTATING) == mutating)]


def with_ids(body: Any, values: dict[str, str]) -> Any:
    if isinstance(body, str):
        return fill(body, values)
    if isinstance(body, list):
        return [with_ids(v, values) for v in body]
    if isinstance(body, dict):
        return {k: with_ids(v, values) for k, v in body.items()}
    return body


async def call(api: httpx.AsyncClient, who: Caller, method: str, path: str,
               values: dict[str, str]) -> httpx.Response:
    kind, body = MATRIX[(method, path)]
    url = fill(path, values)
    if body is None or kind == "OPEN":
        return await api.request(method, url, headers=os_h(who))
    return await api.request(method, url, headers=os_h(who), json=with_ids(body, values))


def row_counts() -> dict[str, int]:
    with session() as s:
        return {name: s.exec(select(func.count()).select_from(table)).one()
                for name, table in SQLModel.metadata.tables.items()}


@pytest.fixture(scope="module")
async def a_ids(api: httpx.AsyncClient, world: World) -> dict[str, str]:
    """Project A's (p1, alice's) resource of each kind, made through /networking."""
    a = world.alice
    net = await os_network(api, a, "iso-os-net")
    subnet = await os_subnet(api, a, net["id"], "10.240.20.0/24")
    port = (await ok(await api.post(f"{N}/ports", headers=os_h(a), json={
        "port": {"network_id": net["id"]}}), 201))["port"]
    group = (await ok(await api.post(f"{N}/security-groups", headers=os_h(a), json={
        "security_group": {"name": "iso-os-sg", "description": ""}}), 201))["security_group"]
    rule = (await ok(await api.post(f"{N}/security-group-rules", headers=os_h(a), json={
        "security_group_rule": {"security_group_id": group["id"], "direction": "ingress",
                                "protocol": "tcp", "port_range_min": 80,
                                "port_range_max": 80}}), 201))["security_group_rule"]
    ext = await os_network(api, world.admin, "iso-os-public", **{"router:external": True})
    await os_subnet(api, world.admin, ext["id"], "198.18.240.16/28")
    fip = (await ok(await api.post(f"{N}/floatingips", headers=os_h(a), json={
        "floatingip": {"floating_network_id": ext["id"], "port_id": port["id"]}}), 201))
    return {"network_id": net["id"], "subnet_id": subnet["id"], "port_id": port["id"],
            "group_id": group["id"], "rule_id": rule["id"],
            "fip_id": fip["floatingip"]["id"], "external_network_id": ext["id"],
            "alias": "security-group"}


def test_every_route_is_classified() -> None:
    routes = sub_app_routes()
    assert len(routes) >= 30, "the route walk found too few routes"
    assert sorted(routes - MATRIX.keys()) == [], "new routes: classify them in MATRIX"
    assert sorted(MATRIX.keys() - routes) == [], "MATRIX lists routes the sub-app lacks"
    for (m, p), (kind, body) in MATRIX.items():
        named = [x for x in params_of(p) if x != "alias"]
        assert (kind == "SCOPED") == bool(named), f"{m} {p}: {kind} but names {named}"
        if kind == "OPEN":
            assert body, f"{m} {p}: say why it is not resource-scoped"


@pytest.mark.parametrize(("method", "path"), cases("SCOPED", "OPEN", mutating=False))
async def test_project_a_reads_its_own(api: httpx.AsyncClient, world: World,
                                       a_ids: dict[str, str], method: str, path: str) -> None:
    """The fixture really names A's resources: so B's 404 below is about B."""
    r = await call(api, world.alice, method, path, a_ids)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(("method", "path"), cases("SCOPED"))
async def test_project_b_gets_404_like_a_missing_id(
        api: httpx.AsyncClient, world: World, a_ids: dict[str, str],
        method: str, path: str) -> None:
    before = row_counts()
    r = await call(api, world.bob, method, path, a_ids)
    missing = await call(api, world.bob, method, path, {
        **dict.fromkeys(a_ids, MISSING), "external_network_id": a_ids["external_network_id"]})
    assert r.status_code == 404, f"project B reached A's resource: {r.status_code} {r.text}"
    assert missing.status_code == 404, missing.text
    assert r.json()["NeutronError"]["type"] == missing.json()["NeutronError"]["type"]
    assert row_counts() == before


@pytest.mark.parametrize(("method", "path"), cases("SCOPED", "LISTS", mutating=True))
async def test_reader_may_not_mutate(api: httpx.AsyncClient, world: World,
                                     a_ids: dict[str, str], method: str, path: str) -> None:
    before = row_counts()
    r = await call(api, world.rita, method, path, a_ids)
    assert r.status_code == 403, r.text
    assert r.json()["NeutronError"]["type"] == "PolicyNotAuthorized"
    assert row_counts() == before


@pytest.mark.parametrize(("method", "path"), cases("LISTS", mutating=False))
async def test_project_b_lists_none_of_a(api: httpx.AsyncClient, world: World,
                                         a_ids: dict[str, str], method: str, path: str) -> None:
    a_only = set(a_ids.values()) - {a_ids["external_network_id"], a_ids["alias"]}
    mine = await call(api, world.alice, method, path, a_ids)
    r = await call(api, world.bob, method, path, a_ids)
    assert mine.status_code == r.status_code == 200, (mine.text, r.text)
    assert any(i in mine.text for i in a_only), "A's own list shows none of A's ids"
    leaked = sorted(i for i in a_only if i in r.text)
    assert leaked == [], f"{path} shows project B ids of project A: {leaked}"


# B naming A's resource in a body is refused exactly as naming a missing one
BODY_REFERENCES: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", f"{V}/subnets", {"subnet": {"network_id": "{network_id}",
                                          "cidr": "10.240.28.0/24", "ip_version": 4}}),
    ("POST", f"{V}/ports", {"port": {"network_id": "{network_id}"}}),
    ("POST", f"{V}/ports", {"port": {"network_id": "{external_network_id}",
                                     "security_groups": ["{group_id}"]}}),
    ("POST", f"{V}/security-group-rules", {"security_group_rule": {
        "security_group_id": "{group_id}", "direction": "ingress"}}),
    ("POST", f"{V}/floatingips", {"floatingip": {
        "floating_network_id": "{external_network_id}", "port_id": "{port_id}"}}),
]


@pytest.mark.parametrize(("method", "path", "body"), BODY_REFERENCES,
                         ids=[f"{m} {p} {b}" for m, p, b in BODY_REFERENCES])
async def test_project_b_may_not_name_a_resource_of_a_in_a_body(
        api: httpx.AsyncClient, world: World, a_ids: dict[str, str], method: str, path: str,
        body: dict[str, Any]) -> None:
    before = row_counts()
    keep = {"external_network_id": a_ids["external_network_id"]}  # usable by all
    r = await api.request(method, path, headers=os_h(world.bob), json=with_ids(body, a_ids))
    missing = await api.request(method, path, headers=os_h(world.bob), json=with_ids(
        body, {**dict.fromkeys(a_ids, MISSING), **keep}))
    assert r.status_code >= 400, f"project B used A's resource: {r.text}"
    assert (r.status_code, r.json()["NeutronError"]["type"]) == (
        missing.status_code, missing.json()["NeutronError"]["type"]), (r.text, missing.text)
    assert row_counts() == before


# Neutron's admin-only attributes: a member's request naming them is 403, nothing made
ADMIN_ATTRIBUTES: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", f"{V}/networks", {"network": {"name": "iso-z", "shared": True}}),
    ("POST", f"{V}/networks", {"network": {"name": "iso-z", "router:external": True}}),
    ("PUT", f"{V}/networks/{{network_id}}", {"network": {"shared": True}}),
    ("PUT", f"{V}/networks/{{network_id}}", {"network": {"router:external": True}}),
    ("POST", f"{V}/ports", {"port": {"network_id": "{network_id}",
                                     "binding:host_id": "h1"}}),
    ("PUT", f"{V}/ports/{{port_id}}", {"port": {"binding:host_id": "h1"}}),
]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ATTRIBUTES,
                         ids=[f"{m} {p} {b}" for m, p, b in ADMIN_ATTRIBUTES])
async def test_admin_only_attributes_refuse_members(
        api: httpx.AsyncClient, world: World, a_ids: dict[str, str], method: str, path: str,
        body: dict[str, Any]) -> None:
    before = row_counts()
    r = await api.request(method, fill(path, a_ids), headers=os_h(world.alice),
                          json=with_ids(body, a_ids))
    assert r.status_code == 403, r.text
    assert r.json()["NeutronError"]["type"] == "PolicyNotAuthorized"
    assert row_counts() == before
