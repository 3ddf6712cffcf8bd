"""Users: the admin lists, makes and deletes them; anybody reads their own. A user
may exist before any role is granted to it (Keystone makes it, then grants)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import Field
from sqlmodel import col, select

from api.deps import SessionDep
from api.errors import Forbidden, NotFound
from api.openstack.common import Lenient
from api.openstack.identity import views
from api.openstack.identity.deps import AdminDep, Caller, CallerDep, base_url
from api.openstack.identity.projects import _check_domain
from api.schemas.common import Name
from api.services import identity
from vmflow.identity import SERVICE_ROLE
from vmflow.models import Membership, Project, User

router = APIRouter(prefix="/v3")


def visible_user(session: SessionDep, caller: Caller, user_id: str) -> User:
    """The user if it is the caller or the caller is admin: 404 alike otherwise."""
    user = session.get(User, user_id)
    if user is None or not (caller.is_admin or user.id == caller.user_id):
        raise NotFound(f"Could not find user: {user_id}.")
    return user


def is_service_user(session: SessionDep, user_id: str) -> bool:
    return session.exec(select(Membership).where(Membership.user_id == user_id,
                                                 Membership.role == SERVICE_ROLE)).first() \
        is not None


@router.get("/users")
def list_users(request: Request, session: SessionDep, caller: AdminDep,
               name: str | None = None, domain_id: str | None = None) -> dict[str, Any]:
    stmt = select(User).order_by(col(User.name))
    if name is not None:
        stmt = stmt.where(User.name == name)
    base = base_url(request)
    rows = list(session.exec(stmt)) if domain_id in (None, views.DOMAIN_ID) else []
    return {"users": [views.user(base, u) for u in rows], "links": views.list_links(base, "users")}


class UserIn(Lenient):
    name: Name
    password: str | None = Field(default=None, min_length=8, max_length=1024)
    domain_id: str | None = Field(default=None, max_length=255)
    default_project_id: str | None = Field(default=None, max_length=255)
    email: str | None = Field(default=None, max_length=255)  # accepted, not kept


class UserBody(Lenient):
    user: UserIn


@router.post("/users", status_code=201)
def create_user(body: UserBody, request: Request, session: SessionDep,
                caller: AdminDep) -> dict[str, Any]:
    _check_domain(body.user.domain_id)
    user = identity.create_bare_user(session, body.user.name, body.user.password,
                                     body.user.default_project_id)
    return {"user": views.user(base_url(request), user)}


@router.get("/users/{user_id}")
def show_user(user_id: str, request: Request, session: SessionDep,
              caller: CallerDep) -> dict[str, Any]:
    return {"user": views.user(base_url(request), visible_user(session, caller, user_id))}


@router.get("/users/{user_id}/projects")
def user_projects(user_id: str, request: Request, session: SessionDep,
                  caller: CallerDep) -> dict[str, Any]:
    user = visible_user(session, caller, user_id)
    rows = session.exec(select(Project).join(Membership, col(Membership.project_id) == Project.id)
                        .where(Membership.user_id == user.id).order_by(col(Project.name)))
    base = base_url(request)
    return {"projects": [views.project(base, p) for p in rows],
            "links": views.list_links(base, f"users/{user.id}/projects")}


@router.delete("/users/{user_id}", status_code=204)
def delete_user(user_id: str, session: SessionDep, caller: AdminDep) -> Response:
    user = visible_user(session, caller, user_id)
    if user.id == caller.user_id or is_service_user(session, user.id):
        raise Forbidden("The caller's own user and the hosts' service user stay.")
    identity.delete_user(session, user)
    return Response(status_code=204)
