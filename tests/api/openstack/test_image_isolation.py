"""Project isolation over every route of the Glance facade (/image), generated from
the sub-application's routes (the pattern of tests/api/test_isolation_matrix.py):
- SCOPED: the path names project A's image (shared, with a pending member): project
  B's member gets 404 for it, as for an id that does not exist, and A's reader gets
  403 on every mutating method, with nothing changed.
- LISTS: B's list shows none of A's images; A's reader may not create.
- OPEN: not resource-scoped, with the reason.
A route missing from MATRIX (or listed but gone) fails test_every_route_is_classified."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from api.app import create_app
from tests.api.conftest import Caller, World, session
from tests.api.openstack.image_support import GOOD_RAW, PATCH, V2, create, h
from vmflow.models import Image

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MISSING = "00000000-0000-4000-8000-00000000dead"


@dataclass(frozen=True)
class Route:
    kind: str  # SCOPED, LISTS, OPEN
    body: Any = None
    content: bytes | None = None
    headers: dict[str, str] | None = None
    owner_status: int = 200  # SCOPED GET: what A's own member gets (proves the fixture)
    reason: str = ""


def scoped(body: Any = None, **kw: Any) -> Route:
    return Route("SCOPED", body, **kw)


def open_(reason: str) -> Route:
    return Route("OPEN", reason=reason)


IMG = "/v2/images/{image_id}"
MATRIX: dict[tuple[str, str], Route] = {
    ("GET", "/"): open_("version discovery"),
    ("GET", "/versions"): open_("version discovery"),
    ("GET", "/v2"): open_("version discovery"),
    ("GET", "/v2/"): open_("version discovery"),
    ("GET", "/v2/info/import"): open_("static: no import methods"),
    ("GET", "/v2/info/stores"): open_("static: no multiple stores"),
    ("GET", "/v2/schemas/image"): open_("static schema"),
    ("GET", "/v2/schemas/images"): open_("static schema"),
    ("GET", "/v2/schemas/member"): open_("static schema"),
    ("GET", "/v2/schemas/members"): open_("static schema"),
    ("GET", "/v2/images"): Route("LISTS"),
    ("POST", "/v2/images"): Route("LISTS", {"name": "x", "disk_format": "raw",
                                            "container_format": "bare"}),
    ("GET", IMG): scoped(),
    ("PATCH", IMG): scoped(content=json.dumps([{"op": "replace", "path": "/name",
                                                "value": "taken"}]).encode(),
                           headers={"Content-Type": PATCH}),
    ("DELETE", IMG): scoped(),
    ("PUT", IMG + "/file"): scoped(content=GOOD_RAW,
                                   headers={"Content-Type": "application/octet-stream"}),
    ("GET", IMG + "/file"): scoped(owner_status=204),
    ("POST", IMG + "/actions/deactivate"): scoped(),
    ("POST", IMG + "/actions/reactivate"): scoped(),
    ("PUT", IMG + "/tags/{tag}"): scoped(),
    ("DELETE", IMG + "/tags/{tag}"): scoped(),
    ("POST", IMG + "/members"): scoped({"member": "{bob}"}),
    ("GET", IMG + "/members"): scoped(),
    ("GET", IMG + "/members/{member_id}"): scoped(),
    ("PUT", IMG + "/members/{member_id}"): scoped({"member": "{member}", "status": "accepted"}),
    ("DELETE", IMG + "/members/{member_id}"): scoped(),
}


def routes() -> set[tuple[str, str]]:
    """(method, path) of every route of the image sub-application mounted at /image,
    included routers walked."""
    found: set[tuple[str, str]] = set()

    def walk(routes: list[Any], prefix: str) -> None:
        for r in routes:
            if isinstance(r, APIRoute):
                found.update((m, prefix + r.path) for m in r.methods or ())
            elif hasattr(r, "original_router"):  # an included router (FastAPI >= 0.16x)
                walk(r.original_router.routes, prefix + r.include_context.prefix)
    mounted = [r for r in create_app().routes if getattr(r, "path", None) == "/image"]
    assert len(mounted) == 1
    walk(mounted[0].routes, "")  # type: ignore[attr-defined]
    return found


def test_every_route_is_classified() -> None:
    assert routes() == set(MATRIX)


@pytest.fixture(scope="module")
async def a_image(api: httpx.AsyncClient, world: World) -> dict[str, Any]:
    """Project A's (p1) shared image, tagged, with the admin's project a pending member."""
    image = await create(api, world.alice, name="a-image", tags=["t"])
    r = await api.post(f"{V2}/images/{image['id']}/members", headers=h(world.alice),
                       json={"member": world.admin.project_id})
    assert r.status_code == 200, r.text
    return image


async def call(api: httpx.AsyncClient, who: Caller, method: str, path: str, route: Route,
               world: World, image_id: str) -> httpx.Response:
    url = "/image" + path.format(image_id=image_id, tag="t", member_id=world.admin.project_id)
    body = route.body
    if isinstance(body, dict):
        body = {k: v.format(bob=world.bob.project_id, member=world.admin.project_id)
                for k, v in body.items()}
    headers = {**h(who), **(route.headers or {})}
    if route.content is not None:
        return await api.request(method, url, content=route.content, headers=headers)
    return await api.request(method, url, json=body, headers=headers)


def row(image_id: str) -> Image:
    with session() as s:
        found = s.get(Image, image_id)
    assert found is not None
    return found


@pytest.mark.parametrize(("method", "path"), sorted(k for k, v in MATRIX.items()
                                                    if v.kind == "SCOPED"))
async def test_scoped(api: httpx.AsyncClient, world: World, a_image: dict[str, Any],
                      method: str, path: str) -> None:
    route = MATRIX[(method, path)]
    before = row(a_image["id"])
    r = await call(api, world.bob, method, path, route, world, a_image["id"])
    missing = await call(api, world.bob, method, path, route, world, MISSING)
    assert (r.status_code, missing.status_code) == (404, 404), r.text
    if method in MUTATING:
        r = await call(api, world.rita, method, path, route, world, a_image["id"])
        assert r.status_code == 403, r.text
    else:
        r = await call(api, world.alice, method, path, route, world, a_image["id"])
        assert r.status_code == route.owner_status, r.text
    after = row(a_image["id"])
    assert (after.status, after.name, after.properties, after.updated_at) == (
        before.status, before.name, before.properties, before.updated_at)


async def test_lists(api: httpx.AsyncClient, world: World, a_image: dict[str, Any]) -> None:
    for query in ("", "?visibility=all", "?member_status=all", "?visibility=shared",
                  "?tag=t", f"?owner={world.alice.project_id}"):
        r = await api.get(f"{V2}/images{query}", headers=h(world.bob))
        assert r.status_code == 200
        assert a_image["id"] not in [i["id"] for i in r.json()["images"]], query
    route = MATRIX[("POST", "/v2/images")]
    r = await call(api, world.rita, "POST", "/v2/images", route, world, "")
    assert r.status_code == 403


async def test_open_routes_answer_without_a_project(api: httpx.AsyncClient,
                                                    world: World) -> None:
    for (method, path), route in MATRIX.items():
        if route.kind != "OPEN":
            continue
        r = await api.request(method, "/image" + path, headers=h(world.bob))
        assert r.status_code in (200, 300, 404), (path, r.text)
