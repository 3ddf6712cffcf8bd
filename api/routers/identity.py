"""Projects, users and tokens. Admin creates projects and users; anybody with a
password gets a token for a project they belong to."""

from __future__ import annotations

from datetime import timedelta
from functools import cache

from fastapi import APIRouter
from sqlmodel import Session, col, or_, select

from api.deps import AdminDep, IdempotencyKey, SessionDep
from api.errors import BadRequest, Conflict, NotFound, Unauthorized
from api.schemas.common import utc
from api.schemas.identity import (
    ProjectCreate,
    ProjectList,
    ProjectPublic,
    TokenCreate,
    TokenPublic,
    UserCreate,
    UserList,
    UserPublic,
)
from api.services.operations import find_idempotent, remember_key
from vmflow.identity import check_password, hash_password, hash_token, new_token
from vmflow.models import Membership, Project, Token, User, now

router = APIRouter(prefix="/v1", tags=["identity"])


@cache
def _decoy_hash() -> str:
    return hash_password("decoy")


def find_project(session: Session, ref: str) -> Project | None:
    return session.exec(
        select(Project).where(or_(Project.id == ref, Project.name == ref))).first()


def project_view(p: Project) -> ProjectPublic:
    return ProjectPublic(id=p.id, name=p.name, created_at=utc(p.created_at))


@router.post("/projects", status_code=201, response_model=ProjectPublic)
def create_project(body: ProjectCreate, session: SessionDep, auth: AdminDep,
                   idempotency_key: IdempotencyKey = None) -> ProjectPublic:
    earlier = find_idempotent(session, auth, idempotency_key, "project", "create")
    if earlier is not None:
        project = session.get(Project, earlier.resource_id)
        if project is None:
            raise NotFound(f"project {earlier.resource_id} not found")
        return project_view(project)
    if session.exec(select(Project).where(Project.name == body.name)).first():
        raise Conflict(f"a project named {body.name!r} exists", type="ProjectExists")
    project = Project(name=body.name)
    session.add(project)
    remember_key(session, auth, idempotency_key, "project", project.id, "create")
    session.commit()
    return project_view(project)


@router.get("/projects", response_model=ProjectList)
def list_projects(session: SessionDep, auth: AdminDep) -> ProjectList:
    rows = session.exec(select(Project).order_by(col(Project.name)))
    return ProjectList(projects=[project_view(p) for p in rows])


@router.get("/users", response_model=UserList)
def list_users(session: SessionDep, auth: AdminDep) -> UserList:
    rows = session.exec(select(User, Membership).where(Membership.user_id == User.id)
                        .order_by(col(User.name), col(Membership.project_id)))
    return UserList(users=[UserPublic(id=u.id, name=u.name, project_id=m.project_id,
                                      role=m.role) for u, m in rows])


@router.post("/users", status_code=201, response_model=UserPublic)
def create_user(body: UserCreate, session: SessionDep, auth: AdminDep,
                idempotency_key: IdempotencyKey = None) -> UserPublic:
    earlier = find_idempotent(session, auth, idempotency_key, "user", "create")
    if earlier is not None:
        user = session.get(User, earlier.resource_id)
        member = user and session.exec(
            select(Membership).where(Membership.user_id == user.id)).first()
        if user is None or not member:
            raise NotFound(f"user {earlier.resource_id} not found")
        return UserPublic(id=user.id, name=user.name, project_id=member.project_id,
                          role=member.role)
    project = find_project(session, body.project)
    if project is None:
        raise BadRequest(f"project {body.project!r} not found", type="ProjectNotFound")
    if session.exec(select(User).where(User.name == body.name)).first():
        raise Conflict(f"a user named {body.name!r} exists", type="UserExists")
    user = User(name=body.name, password_hash=hash_password(body.password))
    session.add(user)
    session.flush()  # the membership's foreign key needs the user row
    session.add(Membership(user_id=user.id, project_id=project.id, role=body.role))
    remember_key(session, auth, idempotency_key, "user", user.id, "create")
    session.commit()
    return UserPublic(id=user.id, name=user.name, project_id=project.id, role=body.role)


@router.post("/tokens", status_code=201, response_model=TokenPublic)
def create_token(body: TokenCreate, session: SessionDep) -> TokenPublic:
    """Unauthenticated by nature. One message for every failure: which of user,
    password or project was wrong is not revealed. Not idempotent: only the token's
    hash is stored, so a repeat gets a new token."""
    denied = Unauthorized("wrong username, password or project")
    user = session.exec(select(User).where(User.name == body.username)).first()
    # hash even for an unknown user, so timing does not tell which names exist
    stored = user.password_hash if user else _decoy_hash()
    if not check_password(body.password, stored) or user is None:
        raise denied
    project = find_project(session, body.project)
    member = project and session.get(Membership, (user.id, project.id))
    if project is None or not member:
        raise denied
    token = new_token()
    expires = now() + timedelta(seconds=body.expires_in) if body.expires_in else None
    session.add(Token(token_hash=hash_token(token), user_id=user.id, project_id=project.id,
                      role=member.role, expires_at=expires))
    session.commit()
    return TokenPublic(token=token, user_id=user.id, project_id=project.id, role=member.role,
                       expires_at=expires)
