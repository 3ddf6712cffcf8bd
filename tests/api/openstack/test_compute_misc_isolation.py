"""Isolation of the compute facade's non-server routes (flavors, keypairs, hosts,
limits, migrations, server groups, image proxy), generated from the compute
sub-application's routes of those modules. Every (method, path) is classified:
- ADMIN: members and readers get 403 before any lookup; the admin gets past the check.
- SCOPED: names a resource of project A (alice): project B's member (bob) gets 404,
  exactly as for an id that does not exist; A's reader gets 403 on every mutation.
- LISTS: B's list shows none of A's ids; A's reader may not create.
- OPEN: not resource-scoped, with the reason.
A route of those modules missing here (or listed but gone) fails the first test."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import Mount

from api.app import create_app
from tests.api.conftest import ED25519_PUB, World, add_image
from tests.api.isolation_support import fill
from tests.api.openstack.nova_support import C, nova

MODULES = {f"api.openstack.compute.{m}" for m in (
    "flavors", "flavor_extras", "keypairs", "hosts", "limits", "migrations", "server_groups",
    "image_proxy")}
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MISSING = "00000000-0000-4000-8000-00000000dead"


@dataclass(frozen=True)
class Route:
    kind: str
    body: Any = None
    reason: str = ""


def admin(body: Any = None) -> Route:
    return Route("ADMIN", body)


def scoped(body: Any = None) -> Route:
    return Route("SCOPED", body)


def lists(body: Any = None) -> Route:
    return Route("LISTS", body)


def open_(reason: str) -> Route:
    return Route("OPEN", reason=reason)


F, K, IMG = "/v2.1/flavors/{flavor_id}", "/v2.1/os-keypairs", "/v2.1/images/{image_id}"
MATRIX: dict[tuple[str, str], Route] = {
    ("GET", "/v2.1/flavors"): lists(),
    ("GET", "/v2.1/flavors/detail"): lists(),
    ("POST", "/v2.1/flavors"): admin({"flavor": {"name": "nova-iso", "ram": 1, "vcpus": 1,
                                                 "disk": 0}}),
    ("GET", F): scoped(),
    ("PUT", F): admin({"flavor": {"description": "d"}}),
    ("DELETE", F): admin(),
    ("GET", F + "/os-extra_specs"): scoped(),
    ("POST", F + "/os-extra_specs"): admin({"extra_specs": {"a": "b"}}),
    ("GET", F + "/os-extra_specs/{key}"): scoped(),
    ("PUT", F + "/os-extra_specs/{key}"): admin({"k": "v"}),
    ("DELETE", F + "/os-extra_specs/{key}"): admin(),
    ("GET", F + "/os-flavor-access"): admin(),
    ("POST", F + "/action"): admin({"addTenantAccess": {"tenant": "x"}}),
    ("GET", K): lists(),
    ("POST", K): lists({"keypair": {"name": "nova-iso-new", "public_key": ED25519_PUB}}),
    ("GET", K + "/{name}"): scoped(),
    ("DELETE", K + "/{name}"): scoped(),
    ("GET", "/v2.1/os-hypervisors"): admin(),
    ("GET", "/v2.1/os-hypervisors/detail"): admin(),
    ("GET", "/v2.1/os-hypervisors/statistics"): admin(),
    ("GET", "/v2.1/os-hypervisors/{hypervisor_id}"): admin(),
    ("GET", "/v2.1/os-hypervisors/{pattern}/search"): admin(),
    ("GET", "/v2.1/os-hypervisors/{pattern}/servers"): admin(),
    ("GET", "/v2.1/os-services"): admin(),
    ("PUT", "/v2.1/os-services/{service}"): admin({"status": "enabled"}),
    ("GET", "/v2.1/os-availability-zone"): open_("one zone, the same for every project"),
    ("GET", "/v2.1/os-availability-zone/detail"): admin(),
    ("GET", "/v2.1/limits"): open_("the caller's own project; another's (tenant_id) is "
                                   "refused to members: test_compute_limits"),
    ("GET", "/v2.1/os-migrations"): admin(),
    ("GET", "/v2.1/servers/{server_id}/migrations"): admin(),
    ("GET", "/v2.1/servers/{server_id}/migrations/{migration_id}"): admin(),
    ("DELETE", "/v2.1/servers/{server_id}/migrations/{migration_id}"): admin(),
    ("POST", "/v2.1/servers/{server_id}/migrations/{migration_id}/action"): admin(
        {"force_complete": None}),
    ("GET", "/v2.1/os-server-groups"): lists(),
    ("POST", "/v2.1/os-server-groups"): lists({"server_group": {"name": "g"}}),
    ("GET", "/v2.1/os-server-groups/{group_id}"): open_("vmflow has no server groups: every "
                                                        "id is unknown (404)"),
    ("DELETE", "/v2.1/os-server-groups/{group_id}"): open_("no server groups, as above"),
    ("GET", "/v2.1/images"): lists(),
    ("GET", "/v2.1/images/detail"): lists(),
    ("GET", IMG): scoped(),
    ("DELETE", IMG): scoped(),
    ("GET", IMG + "/metadata"): scoped(),
    ("POST", IMG + "/metadata"): scoped({"metadata": {"x": "y"}}),
    ("PUT", IMG + "/metadata"): scoped({"metadata": {"k": "v"}}),
    ("GET", IMG + "/metadata/{key}"): scoped(),
    ("PUT", IMG + "/metadata/{key}"): scoped({"meta": {"k": "v2"}}),
    ("DELETE", IMG + "/metadata/{key}"): scoped(),
}


def compute_app() -> FastAPI:
    mount = next(r for r in create_app().routes if isinstance(r, Mount) and r.path == "/compute")
    assert isinstance(mount.app, FastAPI)
    return mount.app


def served() -> set[tuple[str, str]]:
    """(method, path) of the compute routes of MODULES, included routers walked."""
    found: set[tuple[str, str]] = set()

    def walk(routes: list[Any], prefix: str) -> None:
        for r in routes:
            if isinstance(r, APIRoute) and r.endpoint.__module__ in MODULES:
                found.update((m, prefix + r.path) for m in r.methods or ())
            elif hasattr(r, "original_router"):  # an included router (FastAPI >= 0.16x)
                walk(r.original_router.routes, prefix + r.include_context.prefix)
    walk(compute_app().routes, "")
    assert found, "no compute routes found: the walk no longer matches FastAPI's routes"
    return found


def test_every_route_is_classified() -> None:
    routes = served()
    assert routes - set(MATRIX) == set(), "classify these routes"
    assert set(MATRIX) - routes == set(), "these routes are gone"


@pytest.fixture(scope="module")
async def resources(api: httpx.AsyncClient, world: World) -> dict[str, str]:
    """Project A's: a private flavor given to p1 (with an extra spec), alice's keypair,
    a private image of p1 with a property."""
    h = nova(world.admin, "2.61")
    body = {"flavor": {"name": "nova-iso-private", "ram": 64, "vcpus": 1, "disk": 1,
                       "os-flavor-access:is_public": False}}
    flavor = (await api.post(f"{C}/flavors", headers=h, json=body)).json()["flavor"]["id"]
    await api.post(f"{C}/flavors/{flavor}/os-extra_specs", headers=h,
                   json={"extra_specs": {"k": "v"}})
    r = await api.post(f"{C}/flavors/{flavor}/action", headers=h,
                       json={"addTenantAccess": {"tenant": world.alice.project_id}})
    assert r.status_code == 200, r.text
    r = await api.post(f"{C}/os-keypairs", headers=nova(world.alice, "2.10"),
                       json={"keypair": {"name": "nova-iso-kp", "public_key": ED25519_PUB}})
    assert r.status_code == 201, r.text
    image = add_image("nova-iso-image", visibility="private", owner=world.alice.project_id)
    r = await api.post(f"{C}/images/{image.id}/metadata", headers=nova(world.alice),
                       json={"metadata": {"k": "v"}})
    assert r.status_code == 200, r.text
    return {"flavor_id": flavor, "key": "k", "name": "nova-iso-kp", "image_id": image.id,
            "hypervisor_id": MISSING, "pattern": "h", "service": MISSING,
            "server_id": MISSING, "migration_id": "1", "group_id": MISSING}


def _cases(kind: str) -> list[tuple[str, str]]:
    return sorted(k for k, r in MATRIX.items() if r.kind == kind)


async def call(api: httpx.AsyncClient, method: str, path: str, headers: dict[str, str],
               body: Any) -> httpx.Response:
    return await api.request(method, f"/compute{path}", headers=headers,
                             json=body if method in MUTATING else None)


@pytest.mark.parametrize(("method", "path"), _cases("ADMIN"))
async def test_admin_routes_refuse_members(api: httpx.AsyncClient, world: World,
                                           resources: dict[str, str], method: str,
                                           path: str) -> None:
    route, url = MATRIX[(method, path)], fill(path, resources)
    for who in (world.alice, world.rita, world.bob):
        r = await call(api, method, url, nova(who, "2.79"), route.body)
        assert r.status_code == 403, (who, r.text)
    # the admin gets past the role check (on an id that does not exist: nothing changes)
    missing = fill(path, {k: MISSING for k in resources})
    r = await call(api, method, missing, nova(world.admin, "2.79"), route.body)
    assert r.status_code != 403, r.text


@pytest.mark.parametrize(("method", "path"), _cases("SCOPED"))
async def test_scoped_routes_hide_project_a(api: httpx.AsyncClient, world: World,
                                            resources: dict[str, str], method: str,
                                            path: str) -> None:
    route, url = MATRIX[(method, path)], fill(path, resources)
    foreign = await call(api, method, url, nova(world.bob), route.body)
    assert foreign.status_code == 404, foreign.text
    ids = {"flavor_id", "name", "image_id"}
    unknown = fill(path, {k: (MISSING if k in ids else v) for k, v in resources.items()})
    assert (await call(api, method, unknown, nova(world.bob), route.body)).status_code == 404
    if method in MUTATING:
        r = await call(api, method, url, nova(world.rita), route.body)
        assert r.status_code == 403, r.text
    else:
        r = await call(api, method, url, nova(world.alice), route.body)
        assert r.status_code == 200, r.text


@pytest.mark.parametrize(("method", "path"), _cases("LISTS"))
async def test_lists_show_nothing_of_project_a(api: httpx.AsyncClient, world: World,
                                               resources: dict[str, str], method: str,
                                               path: str) -> None:
    route = MATRIX[(method, path)]
    if method in MUTATING:
        r = await call(api, method, path, nova(world.rita, "2.10"), route.body)
        assert r.status_code == 403, r.text
        return
    r = await call(api, method, path, nova(world.bob, "2.10"), None)
    assert r.status_code == 200, r.text
    text = r.text
    for key in ("flavor_id", "image_id"):
        assert resources[key] not in text
    assert '"nova-iso-kp"' not in text
