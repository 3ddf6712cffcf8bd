"""Keystone admin calls on vmflow's identity tables: the Default domain, projects,
users (which may exist before any role), roles and their assignment (one role per
user per project: a higher grant replaces), role assignment listing."""

from __future__ import annotations

import httpx
import pytest

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
from vmflow.models import Membership


async def test_default_domain(api: httpx.AsyncClient, world: World) -> None:
    h = ks(world.alice.token)
    r = await api.get(f"{V3}/domains", params={"name": "Default"}, headers=h)
    assert r.status_code == 200
    (d,) = r.json()["domains"]
    assert (d["id"], d["name"], d["enabled"]) == ("default", "Default", True)
    assert (await api.get(f"{V3}/domains", params={"name": "x"}, headers=h)).json()[
        "domains"] == []
    assert (await api.get(f"{V3}/domains/default", headers=h)).json()["domain"]["id"] == \
        "default"
    keystone_error(await api.get(f"{V3}/domains/other", headers=h), 404)
    keystone_error(await api.get(f"{V3}/domains"), 401)


async def test_manila_tempest_user_sequence(api: httpx.AsyncClient, world: World) -> None:
    """manila-tempest-plugin's setup (CLIENTS.md 2.4): make a user with no role, grant
    member, log in, delete the user."""
    admin = ks(world.admin.token)
    r = await api.post(f"{V3}/projects", headers=admin,
                       json={"project": {"name": "ks-adm-mt", "domain_id": "default",
                                         "description": "x", "enabled": True}})
    assert r.status_code == 201, r.text
    pid = r.json()["project"]["id"]
    r = await api.post(f"{V3}/users", headers=admin, json={"user": {
        "name": "ks-adm-mt-user", "password": "pw-ks-adm-mt", "domain_id": "default",
        "default_project_id": pid, "email": "mt@example.org"}})
    assert r.status_code == 201, r.text
    user = r.json()["user"]
    assert user["default_project_id"] == pid and user["domain_id"] == "default"
    # no role yet: the password is right, but there is nowhere to land
    r = await api.post(f"{V3}/auth/tokens", json=password_body("ks-adm-mt-user", "pw-ks-adm-mt",
                                                               "ks-adm-mt"))
    keystone_error(r, 401)
    roles = {x["name"]: x["id"] for x in (await api.get(f"{V3}/roles", headers=admin)
                                          ).json()["roles"]}
    assert set(roles) == {"admin", "member", "reader"}
    assert roles["member"] == role_id("member")
    r = await api.put(f"{V3}/projects/{pid}/users/{user['id']}/roles/{roles['member']}",
                      headers=admin)
    assert r.status_code == 204, r.text
    r = await api.post(f"{V3}/auth/tokens", json=password_body("ks-adm-mt-user", "pw-ks-adm-mt"))
    assert r.status_code == 201 and r.json()["token"]["project"]["id"] == pid
    token = r.headers["X-Subject-Token"]
    r = await api.get(f"{V3}/users/{user['id']}", headers=ks(token))  # itself
    assert r.status_code == 200 and r.json()["user"]["name"] == "ks-adm-mt-user"
    r = await api.delete(f"{V3}/users/{user['id']}", headers=admin)
    assert r.status_code == 204, r.text
    keystone_error(await api.get(f"{V3}/users/{user['id']}", headers=admin), 404)
    assert (await api.get("/v1/servers", headers={"Authorization": f"Bearer {token}"})
            ).status_code == 401  # its tokens went with it
    r = await api.delete(f"{V3}/projects/{pid}", headers=admin)
    assert r.status_code == 204, r.text
    keystone_error(await api.get(f"{V3}/projects/{pid}", headers=admin), 404)


async def test_projects_lists_and_visibility(api: httpx.AsyncClient, world: World) -> None:
    u = await new_user(api, world, "ks-adm-vis")
    admin = ks(world.admin.token)
    names = {p["name"] for p in (await api.get(f"{V3}/projects", headers=admin)
                                 ).json()["projects"]}
    assert {"p1", "p2", "admin", "ks-adm-vis-proj"} <= names
    r = await api.get(f"{V3}/projects", params={"name": "p2"}, headers=admin)
    assert [p["id"] for p in r.json()["projects"]] == [world.bob.project_id]
    mine = (await api.get(f"{V3}/projects", headers=u.h)).json()["projects"]
    assert [p["id"] for p in mine] == [u.project_id]
    assert (await api.get(f"{V3}/projects", params={"name": "p2"}, headers=u.h)
            ).json()["projects"] == []
    r = await api.get(f"{V3}/projects/{u.project_id}", headers=u.h)
    p = r.json()["project"]
    assert (p["id"], p["domain_id"], p["is_domain"], p["enabled"]) == (
        u.project_id, "default", False, True)
    keystone_error(await api.get(f"{V3}/projects/{world.bob.project_id}", headers=u.h), 404)
    keystone_error(await api.get(f"{V3}/projects/p2", headers=admin), 404)  # names are no ids


async def test_users_list_and_show(api: httpx.AsyncClient, world: World) -> None:
    u = await new_user(api, world, "ks-adm-lst")
    admin = ks(world.admin.token)
    r = await api.get(f"{V3}/users", params={"name": "ks-adm-lst"}, headers=admin)
    assert [x["id"] for x in r.json()["users"]] == [u.id]
    assert r.json()["users"][0]["password_expires_at"] is None
    keystone_error(await api.get(f"{V3}/users/{world.bob.user_id}", headers=u.h), 404)
    r = await api.get(f"{V3}/users/{u.id}/projects", headers=u.h)
    assert [p["id"] for p in r.json()["projects"]] == [u.project_id]


async def test_members_are_refused_admin_calls(api: httpx.AsyncClient, world: World) -> None:
    u = await new_user(api, world, "ks-adm-no")
    before = identity_counts()
    calls = [
        api.get(f"{V3}/users", headers=u.h),
        api.post(f"{V3}/users", headers=u.h, json={"user": {"name": "ks-never"}}),
        api.delete(f"{V3}/users/{world.bob.user_id}", headers=u.h),
        api.post(f"{V3}/projects", headers=u.h, json={"project": {"name": "ks-never"}}),
        api.delete(f"{V3}/projects/{u.project_id}", headers=u.h),
        api.put(f"{V3}/projects/{u.project_id}/users/{u.id}/roles/{role_id('admin')}",
                headers=u.h),
        api.head(f"{V3}/projects/{u.project_id}/users/{u.id}/roles/{role_id('member')}",
                 headers=u.h),
        api.delete(f"{V3}/projects/{u.project_id}/users/{u.id}/roles/{role_id('member')}",
                   headers=u.h),
    ]
    for call in calls:
        r = await call
        assert r.status_code == 403, (r.request.method, r.request.url, r.text)
        if r.request.method != "HEAD":
            keystone_error(r, 403)
    assert identity_counts() == before


@pytest.mark.parametrize("path, body", [
    ("/users", {"user": {"name": ""}}),
    ("/users", {"user": {"name": "ks-bad", "password": "short"}}),
    ("/users", {"user": {"name": "ks-bad", "domain_id": "other"}}),
    ("/users", {"user": {"name": "ks-bad", "default_project_id": "nope"}}),
    ("/users", {"name": "ks-bad"}),
    ("/projects", {"project": {"name": "ks-bad", "domain_id": "other"}}),
    ("/projects", {"project": {"name": "ks-bad", "parent_id": "some-project"}}),
    ("/projects", {"project": {"name": "bad\x00name"}}),
    ("/projects", {"project": {}}),
])
async def test_bad_admin_input_is_400_and_changes_nothing(
        api: httpx.AsyncClient, world: World, path: str, body: dict) -> None:
    before = identity_counts()
    keystone_error(await api.post(f"{V3}{path}", headers=ks(world.admin.token), json=body), 400)
    assert identity_counts() == before


async def test_duplicates_are_409(api: httpx.AsyncClient, world: World) -> None:
    admin = ks(world.admin.token)
    before = identity_counts()
    keystone_error(await api.post(f"{V3}/users", headers=admin,
                                  json={"user": {"name": "alice"}}), 409)
    keystone_error(await api.post(f"{V3}/projects", headers=admin,
                                  json={"project": {"name": "p1"}}), 409)
    assert identity_counts() == before


async def test_grants_replace_upwards_and_revoke(api: httpx.AsyncClient, world: World) -> None:
    u = await new_user(api, world, "ks-adm-role", role="reader")
    admin = ks(world.admin.token)
    grant = f"{V3}/projects/{u.project_id}/users/{u.id}/roles"

    def held() -> str | None:
        with session() as s:
            m = s.get(Membership, (u.id, u.project_id))
            return m.role if m else None

    assert (await api.put(f"{grant}/{role_id('member')}", headers=admin)).status_code == 204
    assert held() == "member"
    # a lower role is already implied: nothing changes
    assert (await api.put(f"{grant}/{role_id('reader')}", headers=admin)).status_code == 204
    assert held() == "member"
    assert (await api.head(f"{grant}/{role_id('reader')}", headers=admin)).status_code == 204
    assert (await api.head(f"{grant}/{role_id('admin')}", headers=admin)).status_code == 404
    r = await api.get(f"{V3}/role_assignments", headers=admin,
                      params={"user.id": u.id, "scope.project.id": u.project_id})
    (a,) = r.json()["role_assignments"]
    assert a["role"] == {"id": role_id("member")} and a["user"] == {"id": u.id}
    assert a["scope"] == {"project": {"id": u.project_id}}
    r = await api.get(f"{V3}/role_assignments", headers=admin,
                      params={"user.id": u.id, "effective": "", "include_names": "true"})
    assert [x["role"]["name"] for x in r.json()["role_assignments"]] == ["member", "reader"]
    # the user's own assignments only, for a non-admin
    r = await api.get(f"{V3}/role_assignments", headers=ks(world.bob.token))
    assert {x["user"]["id"] for x in r.json()["role_assignments"]} == {world.bob.user_id}
    keystone_error(await api.delete(f"{grant}/{role_id('admin')}", headers=admin), 404)
    for missing in (f"{V3}/projects/nope/users/{u.id}/roles/{role_id('member')}",
                    f"{V3}/projects/{u.project_id}/users/nope/roles/{role_id('member')}",
                    f"{grant}/nope"):
        keystone_error(await api.put(missing, headers=admin), 404)
    assert held() == "member"
    # revoking the held role ends the membership and its tokens
    assert (await api.delete(f"{grant}/{role_id('member')}", headers=admin)).status_code == 204
    assert held() is None
    assert (await api.get("/v1/servers", headers={"Authorization": f"Bearer {u.token}"})
            ).status_code == 401


async def test_deleting_a_user_who_owns_servers_is_409(api: httpx.AsyncClient,
                                                       world: World) -> None:
    from tests.api.conftest import Caller, add_instance

    u = await new_user(api, world, "ks-adm-owner")
    add_instance(world, owner=Caller(u.token, u.project_id, u.id), name="ks-owned")
    before = identity_counts()
    keystone_error(await api.delete(f"{V3}/users/{u.id}", headers=ks(world.admin.token)), 409)
    keystone_error(await api.delete(f"{V3}/projects/{u.project_id}",
                                    headers=ks(world.admin.token)), 409)
    assert identity_counts() == before


async def test_own_and_service_identities_stay(api: httpx.AsyncClient, world: World) -> None:
    admin = ks(world.admin.token)
    keystone_error(await api.delete(f"{V3}/users/{world.admin.user_id}", headers=admin), 403)
    keystone_error(await api.delete(f"{V3}/projects/{world.admin.project_id}", headers=admin),
                   403)
    users = (await api.get(f"{V3}/users", params={"name": "vmflow-service"}, headers=admin)
             ).json()["users"]
    (svc,) = users
    keystone_error(await api.delete(f"{V3}/users/{svc['id']}", headers=admin), 403)
