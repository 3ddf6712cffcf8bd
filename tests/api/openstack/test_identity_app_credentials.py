"""Application credentials: made by their own user from a scoped token, the secret
shown once and stored hashed, logging in to the token's project with at most its
role; deleting one revokes its tokens."""

from __future__ import annotations

import httpx

from tests.api.conftest import World, session
from tests.api.openstack.identity_support import (
    V3,
    identity_counts,
    keystone_error,
    ks,
    new_user,
    role_id,
)
from vmflow.identity import hash_token
from vmflow.models import ApplicationCredential, Token


def app_login(**ref: object) -> dict:
    return {"auth": {"identity": {"methods": ["application_credential"],
                                  "application_credential": ref}}}


async def test_create_login_and_delete(api: httpx.AsyncClient, world: World) -> None:
    u = await new_user(api, world, "ks-ac-ann")
    base = f"{V3}/users/{u.id}/application_credentials"
    r = await api.post(base, headers=u.h, json={"application_credential": {
        "name": "ci", "description": "for CI", "roles": [{"name": "reader"}]}})
    assert r.status_code == 201, r.text
    cred = r.json()["application_credential"]
    secret = cred["secret"]
    assert cred["project_id"] == u.project_id and cred["user_id"] == u.id
    assert cred["roles"] == [{"id": role_id("reader"), "name": "reader", "domain_id": None}]
    with session() as s:
        row = s.get(ApplicationCredential, cred["id"])
        assert row is not None and secret not in row.secret_hash
    listed = (await api.get(base, headers=u.h)).json()["application_credentials"]
    assert [c["id"] for c in listed] == [cred["id"]] and "secret" not in listed[0]
    assert "secret" not in (await api.get(f"{base}/{cred['id']}", headers=u.h)).json()[
        "application_credential"]
    # by id, and by name + user: a reader token in the credential's project
    for ref in ({"id": cred["id"], "secret": secret},
                {"name": "ci", "secret": secret,
                 "user": {"name": u.name, "domain": {"name": "Default"}}}):
        r = await api.post(f"{V3}/auth/tokens", json=app_login(**ref))
        assert r.status_code == 201, r.text
        body = r.json()["token"]
        assert body["methods"] == ["application_credential"]
        assert body["project"]["id"] == u.project_id
        assert body["roles"] == [{"id": role_id("reader"), "name": "reader"}]
        assert body["application_credential"]["id"] == cred["id"]
        assert body["catalog"]
    token = r.headers["X-Subject-Token"]
    # its tokens cannot be re-scoped nor make credentials
    keystone_error(await api.post(f"{V3}/auth/tokens", json={"auth": {"identity": {
        "methods": ["token"], "token": {"id": token}}}}), 403)
    keystone_error(await api.post(base, headers=ks(token), json={"application_credential": {
        "name": "more"}}), 403)
    keystone_error(await api.post(f"{V3}/auth/tokens", json=app_login(
        id=cred["id"], secret="wrong-secret")), 401)
    r = await api.delete(f"{base}/{cred['id']}", headers=u.h)
    assert r.status_code == 204, r.text
    with session() as s:
        assert s.get(Token, hash_token(token)) is None
    keystone_error(await api.post(f"{V3}/auth/tokens", json=app_login(
        id=cred["id"], secret=secret)), 401)


async def test_role_is_capped_by_the_membership(api: httpx.AsyncClient, world: World) -> None:
    u = await new_user(api, world, "ks-ac-cap")
    base = f"{V3}/users/{u.id}/application_credentials"
    r = await api.post(base, headers=u.h, json={"application_credential": {
        "name": "own", "secret": "my-own-secret-1"}})
    assert r.status_code == 201 and r.json()["application_credential"]["secret"] == \
        "my-own-secret-1"
    cid = r.json()["application_credential"]["id"]
    # the user is demoted to reader: the credential logs in as reader
    admin = ks(world.admin.token)
    grant = f"{V3}/projects/{u.project_id}/users/{u.id}/roles"
    assert (await api.delete(f"{grant}/{role_id('member')}", headers=admin)).status_code == 204
    keystone_error(await api.post(f"{V3}/auth/tokens", json=app_login(
        id=cid, secret="my-own-secret-1")), 401)  # no membership: no login
    assert (await api.put(f"{grant}/{role_id('reader')}", headers=admin)).status_code == 204
    r = await api.post(f"{V3}/auth/tokens", json=app_login(id=cid, secret="my-own-secret-1"))
    assert r.status_code == 201 and [x["name"] for x in r.json()["token"]["roles"]] == ["reader"]


async def test_refusals_change_nothing(api: httpx.AsyncClient, world: World) -> None:
    u = await new_user(api, world, "ks-ac-bad")
    other = await new_user(api, world, "ks-ac-other")
    base = f"{V3}/users/{u.id}/application_credentials"
    r = await api.post(base, headers=u.h, json={"application_credential": {"name": "one"}})
    assert r.status_code == 201
    cid = r.json()["application_credential"]["id"]
    before = identity_counts()
    for body in ({"application_credential": {"name": "x", "roles": [{"name": "admin"}]}},
                 {"application_credential": {"name": "x", "unrestricted": True}},
                 {"application_credential": {"name": "x",
                                             "expires_at": "2000-01-01T00:00:00Z"}},
                 {"application_credential": {"name": ""}}, {}):
        keystone_error(await api.post(base, headers=u.h, json=body), 400)
    keystone_error(await api.post(base, headers=u.h,
                                  json={"application_credential": {"name": "one"}}), 409)
    # someone else's credentials: not made, not seen
    keystone_error(await api.post(base, headers=other.h,
                                  json={"application_credential": {"name": "x"}}), 403)
    keystone_error(await api.get(base, headers=other.h), 404)
    keystone_error(await api.get(f"{base}/{cid}", headers=other.h), 404)
    keystone_error(await api.delete(f"{base}/{cid}", headers=other.h), 404)
    keystone_error(await api.get(f"{V3}/users/{other.id}/application_credentials/{cid}",
                                 headers=other.h), 404)
    keystone_error(await api.post(base, json={"application_credential": {"name": "x"}}), 401)
    assert identity_counts() == before
    # the admin reads and deletes anybody's
    admin = ks(world.admin.token)
    assert (await api.get(f"{base}/{cid}", headers=admin)).status_code == 200
    assert (await api.delete(f"{base}/{cid}", headers=admin)).status_code == 204
