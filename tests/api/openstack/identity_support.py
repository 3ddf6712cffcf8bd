"""Shared by the identity facade's tests: users made through /v3 (names prefixed ks-
so they stay apart from the other modules of the package) and a password login."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import func
from sqlmodel import select

from tests.api.conftest import World, session
from vmflow.models import ApplicationCredential, Membership, Project, Token, User

V3 = "/identity/v3"


def ks(token: str) -> dict[str, str]:
    return {"X-Auth-Token": token}


def password_body(user: str, password: str, project: str | None = None,
                  by_id: bool = False) -> dict[str, Any]:
    ident: dict[str, Any] = {"id": user} if by_id else {
        "name": user, "domain": {"name": "Default"}}
    auth: dict[str, Any] = {"identity": {"methods": ["password"], "password": {
        "user": {**ident, "password": password}}}}
    if project is not None:
        auth["scope"] = {"project": {"id": project} if by_id else {
            "name": project, "domain": {"id": "default"}}}
    return {"auth": auth}


@dataclass(frozen=True)
class KsUser:
    id: str
    name: str
    password: str
    project_id: str
    project_name: str
    token: str

    @property
    def h(self) -> dict[str, str]:
        return ks(self.token)


def role_id(name: str) -> str:
    from api.openstack.identity.views import ROLE_IDS

    return ROLE_IDS[name]


async def new_user(api: httpx.AsyncClient, world: World, name: str, role: str = "member",
                   project: str | None = None) -> KsUser:
    """A user with `role` in `project` (made when missing), logged in there."""
    admin = ks(world.admin.token)
    project_name = project or f"{name}-proj"
    r = await api.get(f"{V3}/projects", params={"name": project_name}, headers=admin)
    found = r.json()["projects"]
    if found:
        pid = found[0]["id"]
    else:
        r = await api.post(f"{V3}/projects", headers=admin, json={"project": {
            "name": project_name, "domain_id": "default"}})
        assert r.status_code == 201, r.text
        pid = r.json()["project"]["id"]
    password = f"pw-{name}-secret"
    r = await api.post(f"{V3}/users", headers=admin, json={"user": {
        "name": name, "password": password, "domain_id": "default"}})
    assert r.status_code == 201, r.text
    uid = r.json()["user"]["id"]
    r = await api.put(f"{V3}/projects/{pid}/users/{uid}/roles/{role_id(role)}", headers=admin)
    assert r.status_code == 204, r.text
    r = await api.post(f"{V3}/auth/tokens", json=password_body(name, password, project_name))
    assert r.status_code == 201, r.text
    return KsUser(uid, name, password, pid, project_name, r.headers["X-Subject-Token"])


def identity_counts() -> tuple[int, ...]:
    """Rows of every identity table: a refused request leaves them all unchanged."""
    with session() as s:
        return tuple(s.exec(select(func.count()).select_from(t)).one()
                     for t in (User, Project, Membership, Token, ApplicationCredential))


def keystone_error(r: httpx.Response, code: int) -> dict[str, Any]:
    """Keystone's error body with `code`; returns it."""
    assert r.status_code == code, r.text
    body: dict[str, Any] = r.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    assert body["error"]["title"] and body["error"]["message"], body
    return body
