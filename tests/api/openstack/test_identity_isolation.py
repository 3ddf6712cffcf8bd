"""Isolation of the identity facade, generated from its sub-application's routes:
every (method, route) is classified, and a route nobody classified fails the test.

- OPEN: no token needed (discovery, login), with the reason.
- ANY: any token reads it; it holds nothing of a project (the domain, the roles).
- ADMIN: members and readers get 403 and nothing changes.
- OWN: names the caller's own user, token or project: another user's ids answer 404
  (403 where Keystone refuses acting on somebody else's token or credentials).
Everything but OPEN answers 401 without a token."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from api.openstack import identity
from tests.api.conftest import World
from tests.api.openstack.identity_support import (
    V3,
    KsUser,
    identity_counts,
    keystone_error,
    new_user,
    role_id,
)

P = "/projects/{project_id}/users/{user_id}/roles/{role_id}"
AC = "/users/{user_id}/application_credentials"
MATRIX: dict[tuple[str, str], tuple[str, Any]] = {
    ("GET", "/"): ("OPEN", "version discovery, static"),
    ("GET", "/v3"): ("OPEN", "version discovery, static"),
    ("GET", "/v3/"): ("OPEN", "version discovery, static"),
    ("POST", "/v3/auth/tokens"): ("OPEN", "login: authenticated by its credentials"),
    ("GET", "/v3/auth/tokens"): ("OWN", None),
    ("HEAD", "/v3/auth/tokens"): ("OWN", None),
    ("DELETE", "/v3/auth/tokens"): ("OWN", None),
    ("GET", "/v3/auth/catalog"): ("ANY", None),
    ("GET", "/v3/auth/projects"): ("ANY", None),
    ("GET", "/v3/domains"): ("ANY", None),
    ("GET", "/v3/domains/{domain_id}"): ("ANY", None),
    ("GET", "/v3/roles"): ("ANY", None),
    ("GET", "/v3/roles/{role_id}"): ("ANY", None),
    ("GET", "/v3/role_assignments"): ("OWN", None),
    ("GET", "/v3/projects"): ("OWN", None),
    ("GET", "/v3/projects/{project_id}"): ("OWN", None),
    ("POST", "/v3/projects"): ("ADMIN", {"project": {"name": "ks-iso-never"}}),
    ("DELETE", "/v3/projects/{project_id}"): ("ADMIN", None),
    ("GET", "/v3/users"): ("ADMIN", None),
    ("POST", "/v3/users"): ("ADMIN", {"user": {"name": "ks-iso-never"}}),
    ("GET", "/v3/users/{user_id}"): ("OWN", None),
    ("DELETE", "/v3/users/{user_id}"): ("ADMIN", None),
    ("GET", "/v3/users/{user_id}/projects"): ("OWN", None),
    ("PUT", f"/v3{P}"): ("ADMIN", None),
    ("HEAD", f"/v3{P}"): ("ADMIN", None),
    ("DELETE", f"/v3{P}"): ("ADMIN", None),
    ("POST", f"/v3{AC}"): ("OWN", {"application_credential": {"name": "ks-iso-never"}}),
    ("GET", f"/v3{AC}"): ("OWN", None),
    ("GET", f"/v3{AC}/{{credential_id}}"): ("OWN", None),
    ("DELETE", f"/v3{AC}/{{credential_id}}"): ("OWN", None),
}


def routes() -> set[tuple[str, str]]:
    """(method, path) of every route of the identity sub-application."""
    found: set[tuple[str, str]] = set()

    def walk(routes: list[Any], prefix: str) -> None:
        for r in routes:
            if isinstance(r, APIRoute):
                found.update((m, prefix + r.path) for m in r.methods or ())
            elif hasattr(r, "original_router"):  # an included router (FastAPI >= 0.16x)
                walk(r.original_router.routes, prefix + r.include_context.prefix)
    walk(identity.create().routes, "")
    return found


def test_every_route_is_classified() -> None:
    found = routes()
    assert found - set(MATRIX) == set(), "classify these identity routes"
    assert set(MATRIX) - found == set(), "these classified routes are gone"


async def _victim(api: httpx.AsyncClient, world: World) -> tuple[KsUser, dict[str, str]]:
    """Another project's user with an application credential: the ids to probe."""
    v = await new_user(api, world, "ks-iso-victim")
    r = await api.post(f"{V3}/users/{v.id}/application_credentials", headers=v.h,
                       json={"application_credential": {"name": "iso"}})
    assert r.status_code == 201, r.text
    return v, {"project_id": v.project_id, "user_id": v.id, "role_id": role_id("member"),
               "credential_id": r.json()["application_credential"]["id"],
               "domain_id": "default"}


def _url(path: str, ids: dict[str, str]) -> str:
    return "/identity" + path.format(**ids) if path != "/" else "/identity/"


async def _call(api: httpx.AsyncClient, method: str, url: str, headers: dict[str, str],
                body: Any) -> httpx.Response:
    return await api.request(method, url, headers=headers,
                             json=body if method in ("POST", "PUT") else None)


@pytest.mark.parametrize("method, path", sorted(MATRIX))
async def test_route_isolation(api: httpx.AsyncClient, world: World, method: str,
                               path: str) -> None:
    kind, extra = MATRIX[(method, path)]
    victim, ids = await _victim_once(api, world)
    url = _url(path, ids)
    subject = {"X-Subject-Token": victim.token}
    if kind == "OPEN":
        assert isinstance(extra, str) and extra
        return
    member, reader = await _callers(api, world)
    before = identity_counts()
    r = await _call(api, method, url, subject, extra)
    assert r.status_code == 401, (method, url, r.text)
    if kind == "ANY":
        r = await _call(api, method, url, {**member.h, **subject}, extra)
        assert r.status_code == 200, (method, url, r.text)
    elif kind == "ADMIN":
        for who in (member, reader):
            r = await _call(api, method, url, {**who.h, **subject}, extra)
            assert r.status_code == 403, (method, url, r.text)
    else:  # OWN: the victim's ids answer a stranger 404 (403 for a token or a credential)
        r = await _call(api, method, url, {**member.h, **subject}, extra)
        if path == "/v3/projects" or path == "/v3/role_assignments":
            body = r.json()
            listed = body.get("projects") or body.get("role_assignments") or []
            assert victim.project_id not in str(listed), (method, url, body)
        else:
            assert r.status_code in (403, 404), (method, url, r.text)
            if method != "HEAD":
                keystone_error(r, r.status_code)
    assert identity_counts() == before


_cache: dict[str, Any] = {}


async def _victim_once(api: httpx.AsyncClient, world: World) -> tuple[KsUser, dict[str, str]]:
    if "victim" not in _cache:
        _cache["victim"] = await _victim(api, world)
    victim: tuple[KsUser, dict[str, str]] = _cache["victim"]
    return victim


async def _callers(api: httpx.AsyncClient, world: World) -> tuple[KsUser, KsUser]:
    if "callers" not in _cache:
        _cache["callers"] = (await new_user(api, world, "ks-iso-member"),
                             await new_user(api, world, "ks-iso-reader", role="reader"))
    callers: tuple[KsUser, KsUser] = _cache["callers"]
    return callers
