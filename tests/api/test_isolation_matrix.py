"""Project isolation, generated from the app's routes.

Every (method, route) of `app.routes` is classified in MATRIX:
- SCOPED: its path names a resource of a project; the fixture makes one in project A
  (isolation_support). Project B's member gets 404 for it, exactly as for an id that
  does not exist (existence must not leak), and project A's reader gets 403 on every
  mutating method.
- LISTS: project-scoped but without a resource id (lists and creates): B's list shows
  none of A's ids, A's reader may not mutate.
- ADMIN: admin only: members (and readers) get 403; the admin gets past the role check.
- SERVICE: the hosts' service role only: everybody else gets 403 before any lookup.
- OPEN: not resource-scoped, with the reason.
A route missing from MATRIX (or listed but gone) fails test_every_route_is_classified.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from sqlalchemy import func
from sqlmodel import SQLModel, select

from api import openstack
from api.app import create_app
from tests.api.conftest import Caller, World, session
from tests.api.isolation_support import fill, params_of, project_a_resources

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MISSING = "00000000-0000-4000-8000-00000000dead"


@dataclass(frozen=True)
class Route:
    kind: str  # SCOPED, LISTS, ADMIN, SERVICE, OPEN
    body: Any = None  # a valid body, so a refusal is about who asks, not what is sent
    content: bytes | None = None  # a raw body instead of JSON
    reason: str = ""  # OPEN: why the route is not resource-scoped
    owner_status: int = 200  # SCOPED GET: what A's own member gets (proves the fixture)
    values: dict[str, str] = field(default_factory=dict)  # path values overriding the fixture's


def scoped(body: Any = None, **kw: Any) -> Route:
    return Route("SCOPED", body, **kw)


def lists(body: Any = None) -> Route:
    return Route("LISTS", body)


def admin(body: Any = None, **kw: Any) -> Route:
    return Route("ADMIN", body, **kw)


def open_(reason: str) -> Route:
    return Route("OPEN", reason=reason)


S = "/v1/servers/{server_id}"
IMG = "/v1/images/{image_id}"
MATRIX: dict[tuple[str, str], Route] = {
    ("GET", "/healthz"): open_("liveness probe: no project data"),
    ("GET", "/metrics"): open_("process-wide counters, no project data"),
    ("POST", "/v1/tokens"): open_("login: authenticated by password, makes a token"),
    ("GET", "/v1/projects"): admin(),
    ("POST", "/v1/projects"): admin({"name": "iso-never"}),
    ("GET", "/v1/users"): admin(),
    ("POST", "/v1/users"): admin({"name": "iso-never", "password": "pw-iso-never-x",
                                  "project": "p1"}),
    # servers
    ("GET", "/v1/servers"): lists(),
    ("POST", "/v1/servers"): lists({"name": "iso-x", "image": "cirros", "flavor": "m1.tiny"}),
    ("GET", S): scoped(),
    ("DELETE", S): scoped(),
    ("GET", f"{S}/actions"): scoped(),
    ("POST", f"{S}/action"): scoped({"os-stop": None}),
    ("GET", f"{S}/metadata"): scoped(),
    ("PUT", f"{S}/metadata"): scoped({"metadata": {"b": "x"}}),
    ("POST", f"{S}/metadata"): scoped({"metadata": {"b": "x"}}),
    ("GET", S + "/metadata/{key:path}"): scoped(),
    ("PUT", S + "/metadata/{key:path}"): scoped({"meta": {"iso-key": "x"}}),
    ("DELETE", S + "/metadata/{key:path}"): scoped(),
    ("GET", f"{S}/backup-schedules"): scoped(),
    ("POST", f"{S}/backup-schedules"): scoped({"backup_type": "weekly", "rotation": 1,
                                                "every": "7d"}),
    ("GET", S + "/backup-schedules/{sid}"): scoped(),
    ("DELETE", S + "/backup-schedules/{sid}"): scoped(),
    ("POST", S + "/backup-schedules/{sid}/action"): scoped({"pause": None}),
    ("GET", f"{S}/os-interface"): scoped(),
    ("POST", f"{S}/os-interface"): scoped({"interfaceAttachment": {"net_id": MISSING}}),
    ("GET", S + "/os-interface/{port_id}"): scoped(),
    ("DELETE", S + "/os-interface/{port_id}"): scoped(),
    ("GET", f"{S}/migrations"): admin(),
    ("GET", S + "/migrations/{migration_id}"): admin(),
    ("DELETE", S + "/migrations/{migration_id}"): admin(),
    ("POST", S + "/migrations/{migration_id}/action"): admin({"force_complete": None}),
    ("GET", "/v1/os-migrations"): admin(),
    # keypairs belong to a user: another project's user never sees them
    ("GET", "/v1/keypairs"): lists(),
    ("POST", "/v1/keypairs"): lists({"name": "iso-never"}),
    ("GET", "/v1/keypairs/{name}"): scoped(),
    ("DELETE", "/v1/keypairs/{name}"): scoped(),
    ("GET", "/v1/operations"): lists(),
    ("GET", "/v1/operations/{operation_id}"): scoped(),
    # images: A's image is shared with a third project, never with B
    ("GET", "/v1/images"): lists(),
    ("POST", "/v1/images"): lists({"name": "iso-never", "disk_format": "raw",
                                   "container_format": "bare"}),
    ("GET", IMG): scoped(),
    ("PATCH", IMG): scoped({"name": "renamed"}),
    ("DELETE", IMG): scoped(),
    ("PUT", f"{IMG}/file"): scoped(content=b"\0" * 512),
    ("POST", f"{IMG}/import"): Route("SERVICE"),
    ("GET", f"{IMG}/file"): scoped(owner_status=409),  # queued: no data yet
    ("GET", f"{IMG}/members"): scoped(),
    ("POST", f"{IMG}/members"): scoped({"member": "p2"}),
    ("GET", IMG + "/members/{member}"): scoped(),
    ("PUT", IMG + "/members/{member}"): scoped({"status": "accepted"}),
    ("DELETE", IMG + "/members/{member}"): scoped(),
    # flavors: A's is private with access for A only
    ("GET", "/v1/flavors"): lists(),
    ("GET", "/v1/flavors/{flavor_ref}"): scoped(),
    ("POST", "/v1/flavors"): admin({"name": "iso-never", "vcpus": 1, "ram": 64, "disk": 1}),
    ("DELETE", "/v1/flavors/{flavor_ref}"): admin(),
    ("GET", "/v1/flavors/{flavor_ref}/access"): admin(),
    ("POST", "/v1/flavors/{flavor_ref}/access"): admin({"project": "p2"}),
    ("DELETE", "/v1/flavors/{flavor_ref}/access/{project}"): admin(),
    ("GET", "/v1/hosts"): admin(),
    ("GET", "/v1/hosts/{name}"): admin(values={"name": "h1"}),
    ("PUT", "/v1/hosts/{name}"): admin({"status": "enabled"}, values={"name": "h1"}),
    ("GET", "/v1/admin/reconcile-ledger"): admin(),
    ("POST", "/v1/admin/reconcile-ledger"): admin(),
    # shares
    ("GET", "/v1/shares"): lists(),
    ("POST", "/v1/shares"): lists({"share_proto": "NFS", "size": 1}),
    ("GET", "/v1/shares/{share_id}"): scoped(),
    ("DELETE", "/v1/shares/{share_id}"): scoped(),
    ("POST", "/v1/shares/{share_id}/action"): scoped({"extend": {"new_size": 2}}),
    ("GET", "/v1/shares/{share_id}/access-rules"): scoped(),
    ("GET", "/v1/share-snapshots"): lists(),
    ("POST", "/v1/share-snapshots"): lists({"share_id": MISSING, "name": "iso-never"}),
    ("GET", "/v1/share-snapshots/{snapshot_id}"): scoped(),
    ("DELETE", "/v1/share-snapshots/{snapshot_id}"): scoped(),
    # share types: A's is private, which only admins see
    ("GET", "/v1/share-types"): lists(),
    ("GET", "/v1/share-types/{type_ref}"): scoped(owner_status=404),
    ("POST", "/v1/share-types"): admin({"name": "iso-never"}),
    ("DELETE", "/v1/share-types/{type_id}"): admin(),
    ("GET", "/v1/quota-sets"): lists(),
    ("GET", "/v1/quota-sets/{project_id}"): scoped(),
    ("PUT", "/v1/quota-sets/{project_id}"): admin({"shares": 50}),
    # networks
    ("GET", "/v1/networks"): lists(),
    ("POST", "/v1/networks"): lists({"name": "iso-never"}),
    ("GET", "/v1/networks/{network_id}"): scoped(),
    ("DELETE", "/v1/networks/{network_id}"): scoped(),
    ("GET", "/v1/subnets"): lists(),
    ("POST", "/v1/subnets"): lists({"network_id": MISSING, "cidr": "10.99.0.0/24"}),
    ("GET", "/v1/subnets/{subnet_id}"): scoped(),
    ("DELETE", "/v1/subnets/{subnet_id}"): scoped(),
    ("GET", "/v1/ports"): lists(),
    ("POST", "/v1/ports"): lists({"network_id": MISSING}),
    ("GET", "/v1/ports/{port_id}"): scoped(),
    ("DELETE", "/v1/ports/{port_id}"): scoped(),
    ("GET", "/v1/security-groups"): lists(),
    ("POST", "/v1/security-groups"): lists({"name": "iso-never"}),
    ("GET", "/v1/security-groups/{group_id}"): scoped(),
    ("DELETE", "/v1/security-groups/{group_id}"): scoped(),
    ("GET", "/v1/security-group-rules"): lists(),
    ("POST", "/v1/security-group-rules"): lists({"security_group_id": MISSING,
                                                 "direction": "ingress"}),
    ("GET", "/v1/security-group-rules/{rule_id}"): scoped(),
    ("DELETE", "/v1/security-group-rules/{rule_id}"): scoped(),
    ("GET", "/v1/floating-ips"): lists(),
    ("POST", "/v1/floating-ips"): lists({"floating_network_id": MISSING}),
    ("GET", "/v1/floating-ips/{fip_id}"): scoped(),
    ("PUT", "/v1/floating-ips/{fip_id}"): scoped({"port_id": None}),
    ("DELETE", "/v1/floating-ips/{fip_id}"): scoped(),
}


def app_routes() -> set[tuple[str, str]]:
    """(method, path) of every /v1 route of the app, included routers walked (the
    OpenStack facades, mounted under openstack.PREFIXES, have matrices of their own:
    tests/api/openstack/)."""
    found: set[tuple[str, str]] = set()

    def walk(routes: list[Any], prefix: str) -> None:
        for r in routes:
            if isinstance(r, APIRoute):
                found.update((m, prefix + r.path) for m in r.methods or ())
            elif hasattr(r, "original_router"):  # an included router (FastAPI >= 0.16x)
                walk(r.original_router.routes, prefix + r.include_context.prefix)
            elif hasattr(r, "routes") and hasattr(r, "path") \
                    and not (prefix + r.path).startswith(openstack.PREFIXES):  # a mount
                walk(r.routes, prefix + r.path)
    walk(create_app().routes, "")
    return found


def cases(*kinds: str, mutating: bool | None = None) -> list[Any]:
    return [pytest.param(m, p, id=f"{m} {p}") for (m, p), route in MATRIX.items()
            if route.kind in kinds and (mutating is None or (m in MUTATING) == mutating)]


async def call(api: httpx.AsyncClient, who: Caller, method: str, path: str,
               values: dict[str, str]) -> httpx.Response:
    route = MATRIX[(method, path)]
    url = fill(path, {**values, **route.values})
    if route.content is not None:
        return await api.request(method, url, headers={
            **who.h, "Content-Type": "application/octet-stream"}, content=route.content)
    if route.body is None and method in ("GET", "DELETE"):
        return await api.request(method, url, headers=who.h)
    return await api.request(method, url, headers=who.h, json=route.body)


def row_counts() -> dict[str, int]:
    with session() as s:
        return {name: s.exec(select(func.count()).select_from(table)).one()
                for name, table in SQLModel.metadata.tables.items()}


@pytest.fixture(scope="module")
async def a_ids(api: httpx.AsyncClient, world: World) -> dict[str, str]:
    return await project_a_resources(api, world, "iso")


def test_every_route_is_classified() -> None:
    routes = app_routes()
    assert len(routes) > 90, "the route walk found too few routes"
    assert sorted(routes - MATRIX.keys()) == [], "new routes: classify them in MATRIX"
    assert sorted(MATRIX.keys() - routes) == [], "MATRIX lists routes the app lacks"
    for (m, p), route in MATRIX.items():
        if route.kind == "SCOPED":
            assert params_of(p), f"{m} {p} is SCOPED but names no resource"
        if route.kind == "LISTS":
            assert not params_of(p), f"{m} {p} names a resource: make it SCOPED"
        if route.kind == "OPEN":
            assert route.reason, f"{m} {p}: say why it is not resource-scoped"


@pytest.mark.parametrize(("method", "path"), cases("SCOPED", mutating=False))
async def test_project_a_reads_its_own(api: httpx.AsyncClient, world: World,
                                       a_ids: dict[str, str], method: str, path: str) -> None:
    """The fixture really names A's resources: A's member reaches every one, so B's 404
    below is about B."""
    r = await call(api, world.alice, method, path, a_ids)
    assert r.status_code == MATRIX[(method, path)].owner_status, r.text


@pytest.mark.parametrize(("method", "path"), cases("SCOPED"))
async def test_project_b_gets_404_like_a_missing_id(
        api: httpx.AsyncClient, world: World, a_ids: dict[str, str],
        method: str, path: str) -> None:
    before = row_counts()
    r = await call(api, world.bob, method, path, a_ids)
    # a metadata key is not an id (and the PUT body must repeat it)
    missing = await call(api, world.bob, method, path,
                         {**dict.fromkeys(a_ids, MISSING), "key": a_ids["key"]})
    assert r.status_code == 404, f"project B reached A's resource: {r.status_code} {r.text}"
    assert missing.status_code == 404, missing.text
    assert r.json()["error"]["type"] == missing.json()["error"]["type"]
    assert row_counts() == before


@pytest.mark.parametrize(("method", "path"),
                         cases("SCOPED", "LISTS", "ADMIN", "SERVICE", mutating=True))
async def test_reader_may_not_mutate(api: httpx.AsyncClient, world: World,
                                     a_ids: dict[str, str], method: str, path: str) -> None:
    before = row_counts()
    r = await call(api, world.rita, method, path, a_ids)
    assert r.status_code == 403, r.text
    assert r.json()["error"]["type"] == "Forbidden"
    assert row_counts() == before


@pytest.mark.parametrize(("method", "path"), cases("ADMIN"))
async def test_admin_only_refuses_members(api: httpx.AsyncClient, world: World,
                                          a_ids: dict[str, str], method: str, path: str) -> None:
    before = row_counts()
    for who in (world.alice, world.bob):
        r = await call(api, who, method, path, a_ids)
        assert r.status_code == 403, r.text
        assert r.json()["error"]["type"] == "Forbidden"
    assert row_counts() == before


@pytest.mark.parametrize(("method", "path"), cases("ADMIN", mutating=False))
async def test_admin_reads_admin_routes(api: httpx.AsyncClient, world: World,
                                        a_ids: dict[str, str], method: str, path: str) -> None:
    """The 403 above is about the role: the admin's token gets past it (503: the
    reconcile schedule is made by the control worker, which this tier does not run)."""
    r = await call(api, world.admin, method, path, a_ids)
    assert r.status_code not in (403, 500), r.text


@pytest.mark.parametrize(("method", "path"), cases("SERVICE"))
async def test_service_only_refuses_everybody_else(
        api: httpx.AsyncClient, world: World, a_ids: dict[str, str],
        method: str, path: str) -> None:
    before = row_counts()
    for who in (world.admin, world.alice, world.bob):
        for values in (a_ids, dict.fromkeys(a_ids, MISSING)):
            r = await call(api, who, method, path, values)
            assert r.status_code == 403, r.text
    assert row_counts() == before


@pytest.mark.parametrize(("method", "path"), cases("LISTS", mutating=False))
async def test_project_b_lists_none_of_a(api: httpx.AsyncClient, world: World,
                                         a_ids: dict[str, str], method: str, path: str) -> None:
    # ids only (not names, not the migration's small integer); public images name
    # their owner project, so A's project id may show; the external network is admin's
    a_only = {v for v in a_ids.values() if len(v) >= 32} - {
        world.alice.project_id, a_ids["external_network_id"]}
    mine = await call(api, world.alice, method, path, a_ids)
    r = await call(api, world.bob, method, path, a_ids)
    assert mine.status_code == r.status_code == 200, (mine.text, r.text)
    leaked = sorted(i for i in a_only if i in r.text)
    assert leaked == [], f"{path} shows project B ids of project A: {leaked}"


# ids named in a body rather than the path: B naming A's resource is refused exactly as
# B naming a missing one ("{x}" is A's resource of path parameter x)
BODY_REFERENCES: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/v1/ports", {"network_id": "{network_id}"}),
    ("POST", "/v1/ports", {"network_id": "{ext}", "security_groups": ["{group_id}"]}),
    ("POST", "/v1/subnets", {"network_id": "{network_id}", "cidr": "10.98.0.0/24"}),
    ("POST", "/v1/security-group-rules", {"security_group_id": "{group_id}",
                                          "direction": "ingress"}),
    ("POST", "/v1/share-snapshots", {"share_id": "{share_id}", "name": "iso-never"}),
    ("POST", "/v1/shares", {"share_proto": "NFS", "size": 1, "snapshot_id": "{snapshot_id}"}),
    ("POST", "/v1/servers", {"name": "iso-x", "image": "{image_id}", "flavor": "m1.tiny"}),
    ("POST", "/v1/servers", {"name": "iso-x", "image": "cirros", "flavor": "{flavor_ref}"}),
    ("POST", "/v1/servers", {"name": "iso-x", "image": "cirros", "flavor": "m1.tiny",
                             "key_name": "{name}"}),
    ("POST", "/v1/servers", {"name": "iso-x", "image": "cirros", "flavor": "m1.tiny",
                             "networks": [{"port": "{port_id}"}]}),
    ("POST", "/v1/servers", {"name": "iso-x", "image": "cirros", "flavor": "m1.tiny",
                             "networks": [{"uuid": "{network_id}"}]}),
    ("POST", "/v1/floating-ips", {"floating_network_id": "{ext}", "port_id": "{port_id}"}),
]


def with_ids(body: Any, values: dict[str, str]) -> Any:
    if isinstance(body, str):
        return fill(body, values)
    if isinstance(body, list):
        return [with_ids(v, values) for v in body]
    if isinstance(body, dict):
        return {k: with_ids(v, values) for k, v in body.items()}
    return body


@pytest.mark.parametrize(("method", "path", "body"), BODY_REFERENCES,
                         ids=[f"{m} {p} {sorted(b)}" for m, p, b in BODY_REFERENCES])
async def test_project_b_may_not_name_a_resource_of_a_in_a_body(
        api: httpx.AsyncClient, world: World, a_ids: dict[str, str], method: str, path: str,
        body: dict[str, Any]) -> None:
    before = row_counts()
    ext = {"ext": a_ids["external_network_id"]}  # admin's, usable by all: not the point
    r = await api.request(method, path, headers=world.bob.h,
                          json=with_ids(body, {**a_ids, **ext}))
    missing = await api.request(method, path, headers=world.bob.h,
                                json=with_ids(body, {**dict.fromkeys(a_ids, MISSING), **ext}))
    assert r.status_code >= 400, f"project B used A's resource: {r.text}"
    assert (r.status_code, r.json()["error"]["type"]) == (
        missing.status_code, missing.json()["error"]["type"]), (r.text, missing.text)
    assert row_counts() == before
