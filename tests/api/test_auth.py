"""Bearer tokens, roles and project scoping."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from api.auth import AuthContext, check_method
from api.errors import Forbidden
from tests.api.conftest import World, bearer, counts, create_server, session
from vmflow.identity import hash_token, new_token
from vmflow.models import Token, now


def assert_error(r: httpx.Response, code: int, type_: str | None = None) -> dict[str, Any]:
    assert r.status_code == code, r.text
    err = r.json()["error"]
    assert err["code"] == code
    assert isinstance(err["message"], str) and err["message"]
    if type_:
        assert err["type"] == type_
    assert isinstance(err, dict)
    return err


@pytest.mark.parametrize("path", ["/v1/servers", "/v1/images", "/v1/flavors", "/v1/hosts",
                                  "/v1/operations/x"])
async def test_no_token_is_401(api: httpx.AsyncClient, world: World, path: str) -> None:
    r = await api.get(path)
    assert_error(r, 401, "Unauthorized")
    assert r.headers["www-authenticate"] == "Bearer"


async def test_bad_token_is_401(api: httpx.AsyncClient, world: World) -> None:
    assert_error(await api.get("/v1/servers", headers=bearer("not-a-token")), 401)
    assert_error(await api.get("/v1/servers", headers={"Authorization": "Basic abc"}), 401)


async def test_expired_token_is_401(api: httpx.AsyncClient, world: World) -> None:
    token = new_token()
    with session() as s:
        s.add(Token(token_hash=hash_token(token), user_id=world.alice.user_id,
                    project_id=world.alice.project_id, role="member",
                    expires_at=now() - timedelta(seconds=1)))
        s.commit()
    assert_error(await api.get("/v1/servers", headers=bearer(token)), 401)


async def test_unauthenticated_post_creates_nothing(api: httpx.AsyncClient,
                                                    world: World) -> None:
    before = counts()
    r = await api.post("/v1/servers", json={"name": "x", "image": "cirros", "flavor": "m1.tiny"})
    assert_error(r, 401)
    assert counts() == before


async def test_reader_may_read_but_not_write(api: httpx.AsyncClient, world: World) -> None:
    assert (await api.get("/v1/servers", headers=world.rita.h)).status_code == 200
    before = counts()
    r = await api.post("/v1/servers", headers=world.rita.h,
                       json={"name": "x", "image": "cirros", "flavor": "m1.tiny"})
    assert_error(r, 403, "Forbidden")
    assert counts() == before
    server = await create_server(api, world.alice, name="rita-cannot-delete")
    sid = server["server"]["id"]
    assert (await api.get(f"/v1/servers/{sid}", headers=world.rita.h)).status_code == 200
    assert_error(await api.delete(f"/v1/servers/{sid}", headers=world.rita.h), 403)
    assert counts()[1] == before[1] + 1  # only alice's create operation


async def test_member_cannot_see_other_projects(api: httpx.AsyncClient, world: World) -> None:
    created = await create_server(api, world.bob, name="bobs-vm")
    sid = created["server"]["id"]
    op_id = created["operation"]["id"]
    for path in (f"/v1/servers/{sid}", f"/v1/servers/{sid}/actions", f"/v1/operations/{op_id}"):
        assert_error(await api.get(path, headers=world.alice.h), 404, "NotFound")
        assert (await api.get(path, headers=world.bob.h)).status_code == 200
    before = counts()
    assert_error(await api.delete(f"/v1/servers/{sid}", headers=world.alice.h), 404)
    assert counts() == before
    listed = (await api.get("/v1/servers", headers=world.alice.h)).json()["servers"]
    assert sid not in {s["id"] for s in listed}
    assert {s["project_id"] for s in listed} <= {world.alice.project_id}


async def test_admin_sees_all_projects(api: httpx.AsyncClient, world: World) -> None:
    a = (await create_server(api, world.alice, name="a-vm"))["server"]["id"]
    b = (await create_server(api, world.bob, name="b-vm"))["server"]["id"]
    listed = (await api.get("/v1/servers", headers=world.admin.h)).json()["servers"]
    assert {a, b} <= {s["id"] for s in listed}
    r = await api.get(f"/v1/servers/{b}", headers=world.admin.h)
    assert r.status_code == 200 and r.json()["project_id"] == world.bob.project_id


async def test_identity_routes_are_admin_only(api: httpx.AsyncClient, world: World) -> None:
    assert_error(await api.post("/v1/projects", headers=world.alice.h, json={"name": "px"}), 403)
    r = await api.post("/v1/users", headers=world.alice.h,
                       json={"name": "mallory", "password": "password1", "project": "p1",
                             "role": "admin"})
    assert_error(r, 403)


async def test_token_for_wrong_password_or_project_is_401(api: httpx.AsyncClient,
                                                          world: World) -> None:
    for body in ({"username": "alice", "password": "wrong", "project": "p1"},
                 {"username": "alice", "password": "pw-alice-secret", "project": "p2"},
                 {"username": "nobody", "password": "pw-alice-secret", "project": "p1"},
                 {"username": "admin", "password": "", "project": "admin"}):
        assert_error(await api.post("/v1/tokens", json=body), 401, "Unauthorized")


async def test_token_carries_role_and_project(api: httpx.AsyncClient, world: World) -> None:
    r = await api.post("/v1/tokens", json={"username": "rita", "password": "pw-rita-secret",
                                           "project": world.rita.project_id, "expires_in": 600})
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["role"], body["project_id"]) == ("reader", world.rita.project_id)
    assert body["expires_at"] is not None
    with session() as s:
        row = s.get(Token, hash_token(body["token"]))
        assert row is not None and row.role == "reader"


async def test_duplicate_project_and_user_are_409(api: httpx.AsyncClient, world: World) -> None:
    assert_error(await api.post("/v1/projects", headers=world.admin.h, json={"name": "p1"}),
                 409, "ProjectExists")
    r = await api.post("/v1/users", headers=world.admin.h,
                       json={"name": "alice", "password": "password1", "project": "p1"})
    assert_error(r, 409, "UserExists")
    r = await api.post("/v1/users", headers=world.admin.h,
                       json={"name": "carol", "password": "password1", "project": "nope"})
    assert_error(r, 400, "ProjectNotFound")
    r = await api.post("/v1/users", headers=world.admin.h,
                       json={"name": "carol", "password": "password1", "project": "p1",
                             "role": "owner"})
    assert_error(r, 400, "ValidationError")


async def test_unknown_route_and_method_use_the_error_shape(api: httpx.AsyncClient,
                                                            world: World) -> None:
    assert_error(await api.get("/v1/nothing", headers=world.admin.h), 404, "NotFound")
    assert_error(await api.put("/v1/servers", headers=world.admin.h), 405, "MethodNotAllowed")


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_readers_are_refused_every_write_method(method: str) -> None:
    """The blanket rule in get_auth, for routes that would forget WriterDep."""
    reader = AuthContext(user_id="u", project_id="p", role="reader")
    with pytest.raises(Forbidden):
        check_method(reader, method)
    check_method(reader, "GET")
    check_method(AuthContext(user_id="u", project_id="p", role="member"), method)
