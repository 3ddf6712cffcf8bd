"""Keystone v3 discovery and /v3/auth: password, token and application-credential
logins issue vmflow tokens (the same Token table) with Keystone's body and catalog."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlmodel import select

from tests.api.conftest import World, session
from tests.api.openstack.identity_support import (
    V3,
    identity_counts,
    keystone_error,
    ks,
    new_user,
    password_body,
    role_id,
)
from vmflow.identity import hash_token
from vmflow.models import Token, UnscopedToken

SERVICE_TYPES = {"identity", "compute", "image", "shared-file-system", "sharev2", "share",
                 "network"}


async def test_discovery_documents_use_the_request_host(api: httpx.AsyncClient) -> None:
    r = await api.get("/identity/", headers={"Host": "cloud.example:8443"})
    assert r.status_code == 300, r.text
    (v3,) = r.json()["versions"]["values"]
    assert v3["id"] == "v3.14" and v3["status"] == "stable"
    assert v3["links"] == [{"rel": "self", "href": "http://cloud.example:8443/identity/v3/"}]
    assert v3["media-types"][0]["type"] == "application/vnd.openstack.identity-v3+json"
    r = await api.get(f"{V3}", headers={"Host": "cloud.example:8443"})
    assert r.status_code == 200 and r.json() == {"version": v3}
    assert r.headers["X-OpenStack-Request-Id"].startswith("req-")


async def test_password_login_by_name_gives_keystone_token(api: httpx.AsyncClient,
                                                          world: World) -> None:
    u = await new_user(api, world, "ks-tok-ann")
    r = await api.post(f"{V3}/auth/tokens", headers={"Host": "h.example"},
                       json=password_body(u.name, u.password, u.project_name))
    assert r.status_code == 201, r.text
    token, body = r.headers["X-Subject-Token"], r.json()["token"]
    assert body["methods"] == ["password"]
    assert body["user"] == {"id": u.id, "name": u.name, "password_expires_at": None,
                            "domain": {"id": "default", "name": "Default"}}
    assert body["project"] == {"id": u.project_id, "name": u.project_name,
                               "domain": {"id": "default", "name": "Default"}}
    assert body["roles"] == [{"id": role_id("member"), "name": "member"},
                             {"id": role_id("reader"), "name": "reader"}]
    assert body["is_domain"] is False and len(body["audit_ids"]) == 1
    expires = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert timedelta(hours=23) < expires - datetime.now(UTC) <= timedelta(hours=24)
    # a vmflow token: the same row /v1 authenticates
    with session() as s:
        row = s.get(Token, hash_token(token))
    assert row is not None and (row.user_id, row.project_id, row.role) == (
        u.id, u.project_id, "member")
    r = await api.get("/v1/servers", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    catalog = {e["type"]: e for e in body["catalog"]}
    assert set(catalog) == SERVICE_TYPES
    for entry in body["catalog"]:
        assert entry["id"] and entry["name"]
        assert sorted(e["interface"] for e in entry["endpoints"]) == ["admin", "internal",
                                                                     "public"]
        for ep in entry["endpoints"]:
            assert ep["region"] == ep["region_id"] == "RegionOne" and ep["id"]
    urls = {t: e["endpoints"][0]["url"] for t, e in catalog.items()}
    assert urls == {"identity": "http://h.example/identity",
                    "compute": "http://h.example/compute/v2.1",
                    "image": "http://h.example/image",
                    "shared-file-system": f"http://h.example/share/v2/{u.project_id}",
                    "sharev2": f"http://h.example/share/v2/{u.project_id}",
                    "share": f"http://h.example/share/v1/{u.project_id}",
                    "network": "http://h.example/networking"}
    assert catalog["sharev2"]["name"] == "manilav2" and catalog["share"]["name"] == "manila"


async def test_password_login_by_ids_nocatalog_and_admin_roles(api: httpx.AsyncClient,
                                                               world: World) -> None:
    u = await new_user(api, world, "ks-tok-boss", role="admin")
    r = await api.post(f"{V3}/auth/tokens?nocatalog",
                       json=password_body(u.id, u.password, u.project_id, by_id=True))
    assert r.status_code == 201, r.text
    body = r.json()["token"]
    assert "catalog" not in body
    assert [x["name"] for x in body["roles"]] == ["admin", "member", "reader"]


async def test_unscoped_login_lands_in_the_only_project_else_unscoped(
        api: httpx.AsyncClient, world: World) -> None:
    u = await new_user(api, world, "ks-tok-solo")
    r = await api.post(f"{V3}/auth/tokens", json=password_body(u.name, u.password))
    assert r.status_code == 201, r.text
    assert r.json()["token"]["project"]["id"] == u.project_id
    # a second project and no default one: unscoped, no catalog, only identity knows it
    other = await new_user(api, world, "ks-tok-solo2")
    r = await api.put(f"{V3}/projects/{other.project_id}/users/{u.id}/roles/{role_id('reader')}",
                      headers=ks(world.admin.token))
    assert r.status_code == 204
    r = await api.post(f"{V3}/auth/tokens", json=password_body(u.name, u.password))
    assert r.status_code == 201, r.text
    body, free = r.json()["token"], r.headers["X-Subject-Token"]
    assert "project" not in body and "catalog" not in body and "roles" not in body
    with session() as s:
        assert s.get(UnscopedToken, hash_token(free)) is not None
        assert s.get(Token, hash_token(free)) is None
    assert (await api.get("/v1/servers", headers={"Authorization": f"Bearer {free}"})
            ).status_code == 401
    r = await api.get(f"{V3}/auth/projects", headers=ks(free))
    assert sorted(p["id"] for p in r.json()["projects"]) == sorted([u.project_id,
                                                                    other.project_id])
    keystone_error(await api.get(f"{V3}/auth/catalog", headers=ks(free)), 403)
    # re-scope the unscoped token to the second project: the reader role there
    r = await api.post(f"{V3}/auth/tokens", json={"auth": {
        "identity": {"methods": ["token"], "token": {"id": free}},
        "scope": {"project": {"id": other.project_id}}}})
    assert r.status_code == 201, r.text
    assert r.json()["token"]["roles"] == [{"id": role_id("reader"), "name": "reader"}]
    # with a default project, an unscoped login lands there
    with session() as s:
        from vmflow.models import User

        row = s.get(User, u.id)
        assert row is not None
        row.default_project_id = other.project_id
        s.add(row)
        s.commit()
    r = await api.post(f"{V3}/auth/tokens", json=password_body(u.name, u.password))
    assert r.json()["token"]["project"]["id"] == other.project_id


async def test_token_method_rescopes_with_header_or_body(api: httpx.AsyncClient,
                                                         world: World) -> None:
    u = await new_user(api, world, "ks-tok-re")
    for headers, ident in (({}, {"id": u.token}), (ks(u.token), None)):
        token_part = {"token": ident} if ident else {}
        r = await api.post(f"{V3}/auth/tokens", headers=headers, json={"auth": {
            "identity": {"methods": ["token"], **token_part},
            "scope": {"project": {"name": u.project_name, "domain": {"name": "Default"}}}}})
        assert r.status_code == 201, r.text
        assert r.headers["X-Subject-Token"] != u.token
        assert r.json()["token"]["methods"] == ["token"]
        assert r.json()["token"]["project"]["id"] == u.project_id
    # a vmflow token with no expiry (the admin's) re-scopes to a 24 h one
    r = await api.post(f"{V3}/auth/tokens", json={"auth": {"identity": {
        "methods": ["token"], "token": {"id": world.admin.token}}}})
    assert r.status_code == 201, r.text
    assert r.json()["token"]["project"]["id"] == world.admin.project_id
    assert not r.json()["token"]["expires_at"].startswith("9999")
    # no membership there: 401, nothing issued
    before = identity_counts()
    r = await api.post(f"{V3}/auth/tokens", json={"auth": {
        "identity": {"methods": ["token"], "token": {"id": u.token}},
        "scope": {"project": {"id": world.bob.project_id}}}})
    keystone_error(r, 401)
    assert identity_counts() == before


@pytest.mark.parametrize("body", [
    password_body("ks-tok-ann", "wrong-password", "ks-tok-ann-proj"),
    password_body("ks-nobody", "pw-ks-nobody-secret", "ks-tok-ann-proj"),
    password_body("ks-tok-ann", "pw-ks-tok-ann-secret", "p2"),  # not a member
    password_body("ks-tok-ann", "pw-ks-tok-ann-secret", "ks-no-such-project"),
    {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "ks-tok-ann", "domain": {"name": "Other"}, "password": "pw-ks-tok-ann-secret"}}}}},
    {"auth": {"identity": {"methods": ["token"], "token": {"id": "not-a-token"}}}},
    {"auth": {"identity": {"methods": ["totp"]}}},
    {"auth": {"identity": {"methods": ["password", "token"]}}},
    {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "ks-tok-ann", "domain": {"id": "default"}, "password": "pw-ks-tok-ann-secret"}}},
        "scope": {"domain": {"id": "default"}}}},
    {"auth": {"identity": {"methods": ["application_credential"], "application_credential": {
        "id": "nope", "secret": "nope"}}}},
])
async def test_wrong_credentials_answer_401_and_issue_nothing(
        api: httpx.AsyncClient, world: World, body: dict) -> None:
    await api.post(f"{V3}/auth/tokens", json=password_body("x", "y"))  # warm
    before = identity_counts()
    r = await api.post(f"{V3}/auth/tokens", json=body)
    keystone_error(r, 401)
    assert "WWW-Authenticate" in r.headers
    assert identity_counts() == before


@pytest.mark.parametrize("body", [
    {}, {"auth": {}}, {"auth": {"identity": {"methods": []}}},
    {"auth": {"identity": {"methods": "password"}}},
    {"auth": {"identity": {"methods": ["password"], "password": {"user": "ks"}}}},
])
async def test_malformed_token_requests_answer_400(api: httpx.AsyncClient, world: World,
                                                   body: dict) -> None:
    before = identity_counts()
    keystone_error(await api.post(f"{V3}/auth/tokens", json=body), 400)
    assert identity_counts() == before


async def test_validate_check_and_revoke(api: httpx.AsyncClient, world: World) -> None:
    u = await new_user(api, world, "ks-tok-val")
    other = await new_user(api, world, "ks-tok-val2")
    r = await api.get(f"{V3}/auth/tokens", headers={**u.h, "X-Subject-Token": u.token})
    assert r.status_code == 200, r.text
    assert r.headers["X-Subject-Token"] == u.token
    assert r.json()["token"]["user"]["id"] == u.id and r.json()["token"]["catalog"]
    r = await api.get(f"{V3}/auth/tokens?nocatalog",
                      headers={**ks(world.admin.token), "X-Subject-Token": u.token})
    assert r.status_code == 200 and "catalog" not in r.json()["token"]
    assert (await api.head(f"{V3}/auth/tokens",
                           headers={**u.h, "X-Subject-Token": u.token})).status_code == 200
    # another user's token: refused; an unknown one: 404
    keystone_error(await api.get(f"{V3}/auth/tokens",
                                 headers={**u.h, "X-Subject-Token": other.token}), 403)
    keystone_error(await api.get(f"{V3}/auth/tokens",
                                 headers={**u.h, "X-Subject-Token": "nope"}), 404)
    assert (await api.head(f"{V3}/auth/tokens",
                           headers={**u.h, "X-Subject-Token": "nope"})).status_code == 404
    keystone_error(await api.get(f"{V3}/auth/tokens", headers={"X-Subject-Token": u.token}),
                   401)
    keystone_error(await api.delete(f"{V3}/auth/tokens",
                                    headers={**u.h, "X-Subject-Token": other.token}), 403)
    # revoke: the token is gone everywhere
    r = await api.delete(f"{V3}/auth/tokens", headers={**u.h, "X-Subject-Token": u.token})
    assert r.status_code == 204, r.text
    with session() as s:
        assert s.get(Token, hash_token(u.token)) is None
    assert (await api.get("/v1/servers", headers={"Authorization": f"Bearer {u.token}"})
            ).status_code == 401
    keystone_error(await api.get(f"{V3}/auth/tokens",
                                 headers={**other.h, "X-Subject-Token": u.token}), 404)


async def test_reader_may_revoke_its_own_token(api: httpx.AsyncClient, world: World) -> None:
    u = await new_user(api, world, "ks-tok-rdr", role="reader")
    r = await api.delete(f"{V3}/auth/tokens", headers={**u.h, "X-Subject-Token": u.token})
    assert r.status_code == 204, r.text


async def test_auth_catalog_and_projects(api: httpx.AsyncClient, world: World) -> None:
    u = await new_user(api, world, "ks-tok-cat")
    r = await api.get(f"{V3}/auth/catalog", headers={**u.h, "Host": "x.example"})
    assert r.status_code == 200
    assert {e["type"] for e in r.json()["catalog"]} == SERVICE_TYPES
    r = await api.get(f"{V3}/auth/projects", headers=u.h)
    assert [p["id"] for p in r.json()["projects"]] == [u.project_id]
    assert r.json()["projects"][0]["domain_id"] == "default"
    keystone_error(await api.get(f"{V3}/auth/catalog"), 401)
    with session() as s:  # every token this test made is a row of the one Token table
        assert s.exec(select(Token).where(Token.user_id == u.id)).first() is not None
