"""Project isolation of the compute facade's server routes (versions, servers,
actions, instance actions, metadata), generated from the compute sub-application's
routes of those modules: each is classified, and a route of theirs missing from
MATRIX (or listed but gone) fails test_every_route_is_classified.

- SCOPED: names project A's server: project B's member gets 404 exactly as for an id
  that does not exist, A's reader 403 on a mutating method (nothing changes), A's
  member reaches it.
- LISTS: lists and creates: B's lists show none of A's servers; A's reader may not
  create.
- OPEN: no token needed, no project data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from api.openstack import compute
from tests.api.conftest import World, add_instance, counts, instance_row
from tests.api.isolation_support import fill
from tests.api.openstack.test_compute_servers_support import h

MODULES = {f"api.openstack.compute.{m}" for m in (
    "versions", "servers", "server_actions", "instance_actions", "server_metadata")}
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MISSING = "00000000-0000-4000-8000-00000000dead"


@dataclass(frozen=True)
class Route:
    kind: str  # SCOPED, LISTS, OPEN
    body: Any = None


S = "/v2.1/servers/{server_id}"
MATRIX: dict[tuple[str, str], Route] = {
    ("GET", "/"): Route("OPEN"),
    ("GET", "/v2"): Route("OPEN"),
    ("GET", "/v2/"): Route("OPEN"),
    ("GET", "/v2.1"): Route("OPEN"),
    ("GET", "/v2.1/"): Route("OPEN"),
    ("GET", "/v2.1/servers"): Route("LISTS"),
    ("GET", "/v2.1/servers/detail"): Route("LISTS"),
    ("POST", "/v2.1/servers"): Route("LISTS", {"server": {
        "name": "iso-never", "imageRef": "cirros", "flavorRef": "m1.tiny",
        "networks": "none"}}),
    ("GET", S): Route("SCOPED"),
    ("PUT", S): Route("SCOPED", {"server": {"name": "iso-renamed"}}),
    ("DELETE", S): Route("SCOPED"),
    ("POST", f"{S}/action"): Route("SCOPED", {"os-stop": None}),
    ("GET", f"{S}/os-instance-actions"): Route("SCOPED"),
    ("GET", S + "/os-instance-actions/{request_id}"): Route("SCOPED"),
    ("GET", f"{S}/metadata"): Route("SCOPED"),
    ("PUT", f"{S}/metadata"): Route("SCOPED", {"metadata": {"b": "x"}}),
    ("POST", f"{S}/metadata"): Route("SCOPED", {"metadata": {"b": "x"}}),
    ("GET", S + "/metadata/{key:path}"): Route("SCOPED"),
    ("PUT", S + "/metadata/{key:path}"): Route("SCOPED", {"meta": {"iso": "x"}}),
    ("DELETE", S + "/metadata/{key:path}"): Route("SCOPED"),
}


def routes() -> set[tuple[str, str]]:
    """(method, path) of the compute sub-application's routes served by MODULES."""
    out: set[tuple[str, str]] = set()

    def walk(found: list[Any], prefix: str) -> None:
        for r in found:
            if isinstance(r, APIRoute):
                if r.endpoint.__module__ in MODULES:
                    out.update((m, prefix + r.path) for m in r.methods or ())
            elif hasattr(r, "original_router"):  # an included router (FastAPI >= 0.16x)
                walk(r.original_router.routes, prefix + r.include_context.prefix)
    walk(compute.create().routes, "")
    return out


def test_every_route_is_classified() -> None:
    found = routes()
    assert found - set(MATRIX) == set(), "unclassified routes of the server modules"
    assert set(MATRIX) - found == set(), "classified routes that are gone"


@pytest.fixture(scope="module")
async def resources(api: httpx.AsyncClient, world: World) -> dict[str, str]:
    """Project A's server (with a metadata key and an action), by path parameter."""
    inst = add_instance(world, name="iso-compute", meta={"iso": "v"})
    r = await api.post(f"/compute/v2.1/servers/{inst.id}/action", headers=h(world.alice),
                       json={"lock": None})
    assert r.status_code == 202, r.text
    return {"server_id": inst.id, "key": "iso",
            "request_id": r.headers["X-OpenStack-Request-Id"]}


def _kinds(kind: str) -> list[tuple[str, str]]:
    return sorted(k for k, v in MATRIX.items() if v.kind == kind)


@pytest.mark.parametrize("method,path", _kinds("SCOPED"))
async def test_project_b_gets_404_like_a_missing_id(api: httpx.AsyncClient, world: World,
                                                    resources: dict[str, str], method: str,
                                                    path: str) -> None:
    route = MATRIX[(method, path)]
    url = "/compute" + fill(path, resources)
    missing = "/compute" + fill(path, {**resources, "server_id": MISSING})
    before = counts()
    theirs = await api.request(method, url, headers=h(world.bob), json=route.body)
    absent = await api.request(method, missing, headers=h(world.bob), json=route.body)
    assert theirs.status_code == absent.status_code == 404, (theirs.text, absent.text)
    assert theirs.json().keys() == absent.json().keys() == {"itemNotFound"}
    assert counts() == before
    if method == "GET":
        mine = await api.get(url, headers=h(world.alice))
        assert mine.status_code == 200, mine.text


@pytest.mark.parametrize("method,path", [k for k in _kinds("SCOPED") if k[0] in MUTATING]
                         + [k for k in _kinds("LISTS") if k[0] in MUTATING])
async def test_reader_403_on_every_mutation(api: httpx.AsyncClient, world: World,
                                            resources: dict[str, str], method: str,
                                            path: str) -> None:
    before, row = counts(), instance_row(resources["server_id"])
    r = await api.request(method, "/compute" + fill(path, resources), headers=h(world.rita),
                          json=MATRIX[(method, path)].body)
    assert r.status_code == 403 and "forbidden" in r.json(), r.text
    assert counts() == before
    after = instance_row(resources["server_id"])
    assert (after.name, after.meta, after.vm_state) == (row.name, row.meta, row.vm_state)


@pytest.mark.parametrize("method,path", [k for k in _kinds("LISTS") if k[0] == "GET"])
async def test_lists_of_b_show_none_of_a(api: httpx.AsyncClient, world: World,
                                         resources: dict[str, str], method: str,
                                         path: str) -> None:
    ids = {s["id"] for s in (await api.get(f"/compute{path}", headers=h(world.bob))
                             ).json()["servers"]}
    assert resources["server_id"] not in ids
    mine = {s["id"] for s in (await api.get(f"/compute{path}", headers=h(world.alice))
                              ).json()["servers"]}
    assert resources["server_id"] in mine


@pytest.mark.parametrize("method,path", _kinds("OPEN"))
async def test_open_routes_need_no_token(api: httpx.AsyncClient, method: str,
                                         path: str) -> None:
    assert (await api.request(method, f"/compute{path}")).status_code == 200
