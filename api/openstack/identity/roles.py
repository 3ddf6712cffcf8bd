"""Roles (admin, member, reader; each implies those after it) and their assignment
to users on projects, onto vmflow's Membership: one role per user per project, so
granting a higher role replaces the one held (docs/decisions.md)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from sqlmodel import select

from api.deps import SessionDep
from api.errors import Forbidden, NotFound
from api.openstack.identity import views
from api.openstack.identity.deps import AdminDep, CallerDep, base_url
from api.openstack.identity.users import is_service_user
from api.services import identity
from vmflow.models import Membership, Project, User

router = APIRouter(prefix="/v3")


@router.get("/roles")
def list_roles(request: Request, caller: CallerDep, name: str | None = None) -> dict[str, Any]:
    base = base_url(request)
    names = [r for r in identity.ROLE_ORDER if name is None or r == name]
    return {"roles": [views.role(base, r) for r in names], "links": views.list_links(base, "roles")}


@router.get("/roles/{role_id}")
def show_role(role_id: str, request: Request, caller: CallerDep) -> dict[str, Any]:
    if role_id not in views.ROLE_NAMES:
        raise NotFound(f"Could not find role: {role_id}.")
    return {"role": views.role(base_url(request), views.ROLE_NAMES[role_id])}


def _grant_target(session: SessionDep, project_id: str, user_id: str, role_id: str) -> str:
    """The role's name, once project, user and role exist (404 naming the missing one)."""
    if session.get(Project, project_id) is None:
        raise NotFound(f"Could not find project: {project_id}.")
    if session.get(User, user_id) is None:
        raise NotFound(f"Could not find user: {user_id}.")
    if role_id not in views.ROLE_NAMES:
        raise NotFound(f"Could not find role: {role_id}.")
    return views.ROLE_NAMES[role_id]


GRANT = "/projects/{project_id}/users/{user_id}/roles/{role_id}"


@router.put(GRANT, status_code=204)
def grant(project_id: str, user_id: str, role_id: str, session: SessionDep,
          caller: AdminDep) -> Response:
    role = _grant_target(session, project_id, user_id, role_id)
    if is_service_user(session, user_id):
        raise Forbidden("The hosts' service user keeps its own role.")
    identity.grant_role(session, user_id, project_id, role)
    return Response(status_code=204)


@router.head(GRANT, status_code=204)
def check_grant(project_id: str, user_id: str, role_id: str, session: SessionDep,
                caller: AdminDep) -> Response:
    role = _grant_target(session, project_id, user_id, role_id)
    member = session.get(Membership, (user_id, project_id))
    if member is None or role not in identity.implied(member.role):
        raise NotFound(f"Could not find role assignment {role_id} for that user and project.")
    return Response(status_code=204)


@router.delete(GRANT, status_code=204)
def revoke(project_id: str, user_id: str, role_id: str, session: SessionDep,
           caller: AdminDep) -> Response:
    role = _grant_target(session, project_id, user_id, role_id)
    if is_service_user(session, user_id) or (user_id, project_id) == (
            caller.user_id, caller.project_id):
        raise Forbidden("The hosts' service user and the caller's own role stay.")
    if not identity.revoke_role(session, user_id, project_id, role):
        raise NotFound(f"Could not find role assignment {role_id} for that user and project.")
    return Response(status_code=204)


@router.get("/role_assignments")
def role_assignments(request: Request, session: SessionDep, caller: CallerDep) -> dict[str, Any]:
    """Filters user.id, scope.project.id, role.id; `effective` lists implied roles too;
    `include_names` adds names. The admin sees all, anybody else their own."""
    q = request.query_params
    stmt = select(Membership, User, Project).where(
        Membership.user_id == User.id, Membership.project_id == Project.id)
    if not caller.is_admin:
        stmt = stmt.where(Membership.user_id == caller.user_id)
    if q.get("user.id"):
        stmt = stmt.where(Membership.user_id == q["user.id"])
    if q.get("scope.project.id"):
        stmt = stmt.where(Membership.project_id == q["scope.project.id"])
    names = "include_names" in q and q["include_names"].lower() not in ("0", "false")
    base = base_url(request)
    out = []
    for member, user, project in session.exec(stmt.order_by(User.name, Project.name)):
        held = identity.implied(member.role) if "effective" in q else [member.role]
        for role in held:
            if role not in views.ROLE_IDS or q.get("role.id", views.ROLE_IDS[role]) != \
                    views.ROLE_IDS[role]:
                continue
            out.append(_assignment(base, role, user, project, names))
    return {"role_assignments": out, "links": views.list_links(base, "role_assignments")}


def _assignment(base: str, role: str, user: User, project: Project,
                names: bool) -> dict[str, Any]:
    r: dict[str, Any] = {"id": views.ROLE_IDS[role]}
    u: dict[str, Any] = {"id": user.id}
    p: dict[str, Any] = {"id": project.id}
    if names:
        r["name"] = role
        u.update(name=user.name, domain=dict(views.DOMAIN_REF))
        p.update(name=project.name, domain=dict(views.DOMAIN_REF))
    path = f"projects/{project.id}/users/{user.id}/roles/{views.ROLE_IDS[role]}"
    return {"role": r, "user": u, "scope": {"project": p},
            "links": {"assignment": f"{base}/identity/v3/{path}"}}
