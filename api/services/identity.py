"""Projects, users and tokens, the logic behind api/routers/identity.py. Admin creates
projects and users; anybody with a password gets a token for a project they belong
to."""

from __future__ import annotations

from datetime import timedelta
from functools import cache

from sqlmodel import Session, col, or_, select

from api.auth import AuthContext
from api.errors import BadRequest, Conflict, NotFound, Unauthorized
from api.schemas.common import utc
from api.schemas.identity import (
    ProjectCreate,
    ProjectPublic,
    TokenCreate,
    TokenPublic,
    UserCreate,
    UserPublic,
)
from api.services import token_keys
from api.services.operations import remember_key
from vmflow.identity import check_password, hash_password, hash_token, new_token
from vmflow.models import Membership, Project, Token, User, now


@cache
def _decoy_hash() -> str:
    return hash_password("decoy")


def find_project(session: Session, ref: str) -> Project | None:
    return session.exec(
        select(Project).where(or_(Project.id == ref, Project.name == ref))).first()


def project_view(p: Project) -> ProjectPublic:
    return ProjectPublic(id=p.id, name=p.name, created_at=utc(p.created_at))


def existing_project(session: Session, project_id: str) -> ProjectPublic:
    project = session.get(Project, project_id)
    if project is None:
        raise NotFound(f"project {project_id} not found")
    return project_view(project)


def create_project(session: Session, auth: AuthContext, body: ProjectCreate,
                   idempotency_key: str | None) -> ProjectPublic:
    if session.exec(select(Project).where(Project.name == body.name)).first():
        raise Conflict(f"a project named {body.name!r} exists", type="ProjectExists")
    project = Project(name=body.name)
    session.add(project)
    remember_key(session, auth, idempotency_key, "project", project.id, "create")
    session.commit()
    return project_view(project)


def projects(session: Session) -> list[ProjectPublic]:
    return [project_view(p) for p in session.exec(select(Project).order_by(col(Project.name)))]


def users(session: Session) -> list[UserPublic]:
    """Every user in every project it belongs to (one entry per membership)."""
    rows = session.exec(select(User, Membership).where(Membership.user_id == User.id)
                        .order_by(col(User.name), col(Membership.project_id)))
    return [UserPublic(id=u.id, name=u.name, project_id=m.project_id, role=m.role)
            for u, m in rows]


def existing_user(session: Session, user_id: str) -> UserPublic:
    user = session.get(User, user_id)
    member = user and session.exec(
        select(Membership).where(Membership.user_id == user.id)).first()
    if user is None or not member:
        raise NotFound(f"user {user_id} not found")
    return UserPublic(id=user.id, name=user.name, project_id=member.project_id,
                      role=member.role)


def create_user(session: Session, auth: AuthContext, body: UserCreate,
                idempotency_key: str | None) -> UserPublic:
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


def issue_token(session: Session, body: TokenCreate,
                idempotency_key: str | None = None) -> TokenPublic:
    """One message for every failure: which of user, password or project was wrong
    is not revealed. With an Idempotency-Key a repeat gets the same token
    (api/services/token_keys.py)."""
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
    expires = now() + timedelta(seconds=body.expires_in) if body.expires_in else None
    if idempotency_key:
        token, row = token_keys.keyed(session, user, body.password, project.id, member.role,
                                      idempotency_key, expires)
        return TokenPublic(token=token, user_id=row.user_id, project_id=row.project_id,
                           role=row.role, expires_at=utc(row.expires_at))
    token = new_token()
    session.add(Token(token_hash=hash_token(token), user_id=user.id, project_id=project.id,
                      role=member.role, expires_at=expires))
    session.commit()
    return TokenPublic(token=token, user_id=user.id, project_id=project.id, role=member.role,
                       expires_at=expires)
