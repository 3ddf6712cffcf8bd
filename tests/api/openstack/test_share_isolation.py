"""Project isolation of the share facade, generated from its sub-application's routes.

Every route of api.openstack.share is classified in MATRIX by its path below the
prefix (each resource route is served under /v2 and /v2/{project_id}, and both are
walked): SCOPED (names a resource of project A: B's member gets 404 as for a missing
id, A's reader 403 on mutations), LISTS (B's list shows none of A's ids; readers may
not create), ADMIN (members 403), OPEN (with the reason). A route missing from MATRIX,
or listed but gone, fails test_every_route_is_classified."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from sqlalchemy import func
from sqlmodel import SQLModel, select

from api.openstack import share
from tests.api.conftest import Caller, World, session
from tests.api.openstack.share_support import h
from tests.api.test_shares import add_share, add_snapshot

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MISSING = "00000000-0000-4000-8000-00000000dead"
PREFIXES = ("/v2/{project_id}", "/v2")
PARAM = re.compile(r"{(\w+)}")
VERSION_PATHS = ("/", "/v2", "/v2/")


@dataclass(frozen=True)
class Route:
    kind: str  # SCOPED, LISTS, ADMIN, OPEN
    body: Any = None
    query: str = ""  # a query naming the resource (share-access-rules?share_id=)
    reason: str = ""
    values: dict[str, str] = field(default_factory=dict)


def scoped(body: Any = None, query: str = "") -> Route:
    return Route("SCOPED", body, query)


def lists(body: Any = None) -> Route:
    return Route("LISTS", body)


def admin(body: Any = None) -> Route:
    return Route("ADMIN", body)


def open_(reason: str) -> Route:
    return Route("OPEN", reason=reason)


TYPES = "share types are global (public, or admin-only when private: test_share_resources)"
S, SN, T = "/shares/{share_id}", "/snapshots/{snapshot_id}", "/types/{type_id}"
MATRIX: dict[tuple[str, str], Route] = {
    ("GET", "/"): open_("version document"),
    ("GET", "/v2/"): open_("version document"),
    ("GET", "/v2"): open_("version document"),
    ("GET", "/shares"): lists(),
    ("GET", "/shares/detail"): lists(),
    ("POST", "/shares"): lists({"share": {"share_proto": "NFS", "size": 1}}),
    ("GET", S): scoped(),
    ("PUT", S): scoped({"share": {"name": "iso-renamed"}}),
    ("DELETE", S): scoped(),
    ("POST", f"{S}/action"): scoped({"extend": {"new_size": 5}}),
    ("GET", f"{S}/export_locations"): scoped(),
    ("GET", f"{S}/export_locations/{{export_location_id}}"): scoped(),
    ("GET", f"{S}/instances"): admin(),
    ("GET", f"{S}/metadata"): scoped(),
    ("POST", f"{S}/metadata"): scoped({"metadata": {"iso-b": "x"}}),
    ("PUT", f"{S}/metadata"): scoped({"metadata": {"iso-b": "x"}}),
    ("GET", f"{S}/metadata/{{key}}"): scoped(),
    ("PUT", f"{S}/metadata/{{key}}"): scoped({"meta": {"iso-key": "x"}}),
    ("DELETE", f"{S}/metadata/{{key}}"): scoped(),
    ("GET", "/share-access-rules"): scoped(query="?share_id={share_id}"),
    ("GET", "/share-access-rules/{access_id}"): scoped(),
    ("GET", "/snapshots"): lists(),
    ("GET", "/snapshots/detail"): lists(),
    ("POST", "/snapshots"): lists({"snapshot": {"share_id": MISSING}}),
    ("GET", SN): scoped(),
    ("PUT", SN): scoped({"snapshot": {"name": "iso-renamed"}}),
    ("DELETE", SN): scoped(),
    ("POST", f"{SN}/action"): admin({"reset_status": {"status": "error"}}),
    ("GET", "/types"): open_(TYPES),
    ("GET", "/types/default"): open_(TYPES),
    ("GET", T): open_(TYPES),
    ("GET", f"{T}/extra_specs"): open_(TYPES),
    ("GET", f"{T}/extra_specs/{{key}}"): Route("OPEN", reason=TYPES,
                                                values={"key": "snapshot_support"}),
    ("POST", "/types"): admin({"share_type": {"name": "iso-never", "extra_specs": {
        "driver_handles_share_servers": "False"}}}),
    ("DELETE", T): admin(),
    ("POST", f"{T}/extra_specs"): admin({"extra_specs": {"k": "v"}}),
    ("DELETE", f"{T}/extra_specs/{{key}}"): admin(),
    ("GET", "/availability-zones"): open_("the one zone of the deployment"),
    ("GET", "/os-availability-zone"): open_("the one zone of the deployment"),
    ("GET", "/share-replicas"): open_("always empty: vmflow has no replicas"),
    ("GET", "/share-replicas/detail"): open_("always empty: vmflow has no replicas"),
    ("GET", "/limits"): open_("the caller's own project's limits"),
    ("GET", "/quota-sets/{quota_project_id}"): scoped(),
}


def share_routes() -> set[tuple[str, str]]:
    """(method, path below the prefix) of every route, each resource route checked
    to be served under both prefixes."""
    full: set[tuple[str, str]] = set()

    def walk(routes: list[Any], prefix: str) -> None:
        for r in routes:
            if isinstance(r, APIRoute):
                full.update((m, prefix + r.path) for m in r.methods or ())
            elif hasattr(r, "original_router"):  # an included router (FastAPI >= 0.16x)
                walk(r.original_router.routes, prefix + r.include_context.prefix)
    walk(share.create().routes, "")
    found: set[tuple[str, str]] = set()
    for m, path in full:
        if path in VERSION_PATHS:
            found.add((m, path))
            continue
        for prefix in PREFIXES:
            if path.startswith(prefix + "/"):
                rest = path[len(prefix):]
                assert all((m, p + rest) in full for p in PREFIXES), f"{m} {path}: one prefix"
                found.add((m, rest))
                break
        else:
            found.add((m, path))
    return found


def cases(*kinds: str, mutating: bool | None = None) -> list[Any]:
    return [pytest.param(m, p, id=f"{m} {p}") for (m, p), route in MATRIX.items()
            if route.kind in kinds and (mutating is None or (m in MUTATING) == mutating)]


async def call(api: httpx.AsyncClient, who: Caller, method: str, path: str,
               values: dict[str, str], project_in_url: bool = True) -> httpx.Response:
    route = MATRIX[(method, path)]
    values = {**values, **route.values}
    filled = PARAM.sub(lambda m: values[m.group(1)], path + route.query)
    if path.startswith("/v2") or path == "/":
        url = f"/share{filled}"
    else:
        url = f"/share/v2/{who.project_id}{filled}" if project_in_url else f"/share/v2{filled}"
    if route.body is None:
        return await api.request(method, url, headers=h(who))
    return await api.request(method, url, headers=h(who), json=route.body)


def row_counts() -> dict[str, int]:
    with session() as s:
        return {name: s.exec(select(func.count()).select_from(table)).one()
                for name, table in SQLModel.metadata.tables.items()}


@pytest.fixture(scope="module")
async def a_ids(api: httpx.AsyncClient, world: World) -> dict[str, str]:
    a = world.alice
    sh = add_share(a, name="iso-os-share", meta={"iso-key": "v"})
    snap = add_snapshot(sh)
    r = await api.post(f"/share/v2/{a.project_id}/shares/{sh.id}/action", headers=h(a),
                       json={"allow_access": {"access_type": "ip", "access_to": "10.9.0.1"}})
    assert r.status_code == 200, r.text
    r = await api.get(f"/share/v2/{a.project_id}/shares/{sh.id}/export_locations",
                      headers=h(a))
    r2 = await api.get(f"/share/v2/{a.project_id}/types/default", headers=h(a))
    return {"share_id": sh.id, "snapshot_id": snap.id, "access_id": r.json() and
            (await api.get(f"/share/v2/{a.project_id}/share-access-rules?share_id={sh.id}",
                           headers=h(a))).json()["access_list"][0]["id"],
            "export_location_id": r.json()["export_locations"][0]["id"], "key": "iso-key",
            "quota_project_id": a.project_id, "type_id": r2.json()["share_type"]["id"]}


def test_every_route_is_classified() -> None:
    routes = share_routes()
    assert len(routes) > 35, "the route walk found too few routes"
    assert sorted(routes - MATRIX.keys()) == [], "new routes: classify them in MATRIX"
    assert sorted(MATRIX.keys() - routes) == [], "MATRIX lists routes the app lacks"
    for (m, p), route in MATRIX.items():
        if route.kind == "SCOPED":
            assert PARAM.search(p + route.query), f"{m} {p} is SCOPED but names no resource"
        if route.kind == "OPEN":
            assert route.reason and m == "GET", f"{m} {p}: OPEN must be a read with a reason"


@pytest.mark.parametrize(("method", "path"), cases("SCOPED", mutating=False))
@pytest.mark.parametrize("project_in_url", [True, False])
async def test_project_a_reads_its_own(api: httpx.AsyncClient, world: World,
                                       a_ids: dict[str, str], method: str, path: str,
                                       project_in_url: bool) -> None:
    r = await call(api, world.alice, method, path, a_ids, project_in_url)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(("method", "path"), cases("SCOPED"))
@pytest.mark.parametrize("project_in_url", [True, False])
async def test_project_b_gets_404_like_a_missing_id(
        api: httpx.AsyncClient, world: World, a_ids: dict[str, str], method: str,
        path: str, project_in_url: bool) -> None:
    before = row_counts()
    r = await call(api, world.bob, method, path, a_ids, project_in_url)
    missing = await call(api, world.bob, method, path,
                         {**dict.fromkeys(a_ids, MISSING), "key": "iso-key"}, project_in_url)
    assert r.status_code == 404, f"project B reached A's resource: {r.status_code} {r.text}"
    assert missing.status_code == 404, missing.text
    assert list(r.json()) == list(missing.json()) == ["itemNotFound"]
    assert row_counts() == before


@pytest.mark.parametrize(("method", "path"), cases("SCOPED", "LISTS", "ADMIN", mutating=True))
async def test_reader_may_not_mutate(api: httpx.AsyncClient, world: World,
                                     a_ids: dict[str, str], method: str, path: str) -> None:
    before = row_counts()
    r = await call(api, world.rita, method, path, a_ids)
    assert r.status_code == 403, r.text
    assert list(r.json()) == ["forbidden"]
    assert row_counts() == before


@pytest.mark.parametrize(("method", "path"), cases("ADMIN"))
async def test_admin_only_refuses_members(api: httpx.AsyncClient, world: World,
                                          a_ids: dict[str, str], method: str, path: str) -> None:
    before = row_counts()
    for who in (world.alice, world.bob):
        r = await call(api, who, method, path, a_ids)
        assert r.status_code == 403, r.text
        assert list(r.json()) == ["forbidden"]
    assert row_counts() == before


@pytest.mark.parametrize(("method", "path"), cases("ADMIN", mutating=False))
async def test_admin_reads_admin_routes(api: httpx.AsyncClient, world: World,
                                        a_ids: dict[str, str], method: str, path: str) -> None:
    r = await call(api, world.admin, method, path, a_ids)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(("method", "path"), cases("LISTS", mutating=False))
async def test_project_b_lists_none_of_a(api: httpx.AsyncClient, world: World,
                                         a_ids: dict[str, str], method: str, path: str) -> None:
    a_only = {a_ids["share_id"], a_ids["snapshot_id"]}
    mine = await call(api, world.alice, method, path, a_ids)
    assert a_only & set(re.findall(r"[0-9a-f-]{32,}", mine.text)), "A's list lacks its own"
    for query in ("", "?all_tenants=1", "?is_public=true"):
        r = await api.get(f"/share/v2{path}{query}", headers=h(world.bob))
        assert r.status_code == 200, r.text
        assert not a_only & set(re.findall(r"[0-9a-f-]{32,}", r.text)), r.text


@pytest.mark.parametrize(("method", "path"), cases("OPEN"))
async def test_open_routes_answer_everybody(api: httpx.AsyncClient, world: World,
                                            a_ids: dict[str, str], method: str,
                                            path: str) -> None:
    for who in (world.alice, world.bob, world.rita):
        r = await call(api, who, method, path, a_ids)
        assert r.status_code in (200, 300), r.text
