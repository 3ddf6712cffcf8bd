"""The Default domain and projects: the admin sees and manages every project, any
other caller sees the projects it belongs to (404 for the rest)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import Field
from sqlmodel import col, select

from api.auth import AuthContext
from api.deps import SessionDep
from api.errors import BadRequest, Forbidden, NotFound
from api.openstack.common import Lenient
from api.openstack.identity import views
from api.openstack.identity.deps import AdminDep, Caller, CallerDep, base_url
from api.schemas.common import Name
from api.schemas.identity import ProjectCreate
from api.services import identity
from vmflow.identity import SERVICE_PROJECT
from vmflow.models import Membership, Project

router = APIRouter(prefix="/v3")


@router.get("/domains")
def list_domains(request: Request, caller: CallerDep, name: str | None = None) -> dict[str, Any]:
    base = base_url(request)
    shown = [views.domain(base)] if name in (None, views.DOMAIN_NAME) else []
    return {"domains": shown, "links": views.list_links(base, "domains")}


@router.get("/domains/{domain_id}")
def show_domain(domain_id: str, request: Request, caller: CallerDep) -> dict[str, Any]:
    if domain_id != views.DOMAIN_ID:
        raise NotFound(f"Could not find domain: {domain_id}.")
    return {"domain": views.domain(base_url(request))}


def _check_domain(domain_id: str | None) -> None:
    if domain_id not in (None, views.DOMAIN_ID):
        raise BadRequest(f"vmflow has one domain, {views.DOMAIN_ID!r}: not {domain_id!r}.")


def visible_project(session: SessionDep, caller: Caller, project_id: str) -> Project:
    """The project if the caller may see it: 404 alike for unknown and foreign."""
    project = session.get(Project, project_id)
    if project is None or not (caller.is_admin or session.get(
            Membership, (caller.user_id, project.id)) is not None):
        raise NotFound(f"Could not find project: {project_id}.")
    return project


@router.get("/projects")
def list_projects(request: Request, session: SessionDep, caller: CallerDep,
                  name: str | None = None, domain_id: str | None = None) -> dict[str, Any]:
    stmt = select(Project).order_by(col(Project.name))
    if not caller.is_admin:
        stmt = stmt.join(Membership, col(Membership.project_id) == Project.id).where(
            Membership.user_id == caller.user_id)
    if name is not None:
        stmt = stmt.where(Project.name == name)
    base = base_url(request)
    rows = list(session.exec(stmt)) if domain_id in (None, views.DOMAIN_ID) else []
    return {"projects": [views.project(base, p) for p in rows],
            "links": views.list_links(base, "projects")}


@router.get("/projects/{project_id}")
def show_project(project_id: str, request: Request, session: SessionDep,
                 caller: CallerDep) -> dict[str, Any]:
    return {"project": views.project(base_url(request),
                                     visible_project(session, caller, project_id))}


class ProjectIn(Lenient):
    name: Name
    domain_id: str | None = Field(default=None, max_length=255)
    # Keystone's hierarchy is not modelled: only the domain may be a project's parent
    parent_id: str | None = Field(default=None, max_length=255)


class ProjectBody(Lenient):
    project: ProjectIn


@router.post("/projects", status_code=201)
def create_project(body: ProjectBody, request: Request, session: SessionDep,
                   caller: AdminDep) -> dict[str, Any]:
    _check_domain(body.project.domain_id)
    _check_domain(body.project.parent_id)
    made = identity.create_project(session, _as_auth(caller),
                                   ProjectCreate(name=body.project.name), None)
    project = session.get(Project, made.id)
    assert project is not None
    return {"project": views.project(base_url(request), project)}


@router.delete("/projects/{project_id}", status_code=204)
def delete_project(project_id: str, session: SessionDep, caller: AdminDep) -> Response:
    project = visible_project(session, caller, project_id)
    if project.name == SERVICE_PROJECT or project.id == caller.project_id:
        raise Forbidden("The hosts' service project and the caller's own project stay.")
    identity.delete_project(session, project)
    return Response(status_code=204)


def _as_auth(caller: Caller) -> AuthContext:
    """The /v1 service functions take the caller as an AuthContext."""
    assert caller.project_id is not None and caller.role is not None
    return AuthContext(caller.user_id, caller.project_id, caller.role)
