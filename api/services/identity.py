"""Projects, users and tokens, the logic behind api/routers/identity.py. Admin creates
projects and users; anybody with a password gets a token for a project they belong
to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy.exc import IntegrityError
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
from vmflow.models import (
    ApplicationCredential,
    Membership,
    Project,
    Token,
    UnscopedToken,
    User,
    now,
)


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


# --- what Keystone's API (api/openstack/identity) needs beyond /v1 -------------------

# Keystone's implied roles: a role grants itself and every role after it
ROLE_ORDER = ("admin", "member", "reader")


def implied(role: str) -> list[str]:
    return list(ROLE_ORDER[ROLE_ORDER.index(role):]) if role in ROLE_ORDER else [role]


def user_by_name(session: Session, name: str) -> User | None:
    return session.exec(select(User).where(User.name == name)).first()


def password_ok(user: User | None, password: str) -> bool:
    """Hashes even for an unknown user, so timing does not tell which names exist."""
    stored = user.password_hash if user and user.password_hash else _decoy_hash()
    return check_password(password, stored) and user is not None and bool(user.password_hash)


def memberships(session: Session, user_id: str) -> list[Membership]:
    return list(session.exec(select(Membership).where(Membership.user_id == user_id)
                             .order_by(col(Membership.project_id))))


def issue(session: Session, user_id: str, project_id: str, role: str,
          expires: datetime | None, application_credential_id: str | None = None) -> str:
    """A new vmflow token (the Token table /v1 and every facade authenticate with)."""
    token = new_token()
    session.add(Token(token_hash=hash_token(token), user_id=user_id, project_id=project_id,
                      role=role, expires_at=expires,
                      application_credential_id=application_credential_id))
    session.commit()
    return token


def issue_unscoped(session: Session, user_id: str, expires: datetime) -> str:
    token = new_token()
    session.add(UnscopedToken(token_hash=hash_token(token), user_id=user_id, expires_at=expires))
    session.commit()
    return token


def unscoped(session: Session, token: str) -> UnscopedToken | None:
    row = session.get(UnscopedToken, hash_token(token))
    if row is None or aware(row.expires_at) <= now():
        return None
    return row


def aware(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)  # SQLite hands datetimes back naive


def revoke(session: Session, token: str) -> bool:
    """Delete a token (scoped or not); False if there was none."""
    key = hash_token(token)
    row: Token | UnscopedToken | None = session.get(Token, key) or session.get(UnscopedToken, key)
    if row is None:
        return False
    session.delete(row)
    session.commit()
    return True


def create_bare_user(session: Session, name: str, password: str | None,
                     default_project_id: str | None) -> User:
    """A user with no membership yet (Keystone makes the user, then grants a role)."""
    if user_by_name(session, name):
        raise Conflict(f"a user named {name!r} exists", type="UserExists")
    if default_project_id and session.get(Project, default_project_id) is None:
        raise BadRequest(f"project {default_project_id} not found", type="ProjectNotFound")
    user = User(name=name, password_hash=hash_password(password) if password else "",
                default_project_id=default_project_id)
    session.add(user)
    session.commit()
    return user


def _drop_identity_rows(session: Session, *wheres: Any) -> None:
    for table, where in wheres:
        for row in session.exec(select(table).where(where)):
            session.delete(row)


def delete_user(session: Session, user: User) -> None:
    """The user, its memberships, tokens and application credentials; a user that still
    owns servers, shares or keypairs is refused (409), nothing changed."""
    _drop_identity_rows(session, (Token, Token.user_id == user.id),
                        (UnscopedToken, UnscopedToken.user_id == user.id),
                        (ApplicationCredential, ApplicationCredential.user_id == user.id),
                        (Membership, Membership.user_id == user.id))
    session.delete(user)
    _commit_or_conflict(session, f"user {user.id} still owns resources (servers, shares, "
                                 "keypairs): delete them first")


def delete_project(session: Session, project: Project) -> None:
    """The project, its memberships, its tokens and application credentials; a project
    that still has resources is refused (409), nothing changed."""
    _drop_identity_rows(session, (Token, Token.project_id == project.id),
                        (ApplicationCredential, ApplicationCredential.project_id == project.id),
                        (Membership, Membership.project_id == project.id))
    session.delete(project)
    _commit_or_conflict(session, f"project {project.id} still has resources: delete them first")


def _commit_or_conflict(session: Session, message: str) -> None:
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise Conflict(message) from None


def grant_role(session: Session, user_id: str, project_id: str, role: str) -> None:
    """One role per user per project: a higher role replaces the one held, a role the
    held one implies changes nothing (docs/decisions.md)."""
    member = session.get(Membership, (user_id, project_id))
    if member is None:
        session.add(Membership(user_id=user_id, project_id=project_id, role=role))
    elif role in implied(member.role):
        return
    else:
        member.role = role
        session.add(member)
    session.commit()


def revoke_role(session: Session, user_id: str, project_id: str, role: str) -> bool:
    """Revoking the held role ends the membership and the tokens it issued; revoking a
    role the held one implies changes nothing (the held role still implies it); False
    when the user holds no role implying `role` there."""
    member = session.get(Membership, (user_id, project_id))
    if member is None or role not in implied(member.role):
        return False
    if member.role == role:
        session.delete(member)
        _drop_identity_rows(session, (Token, (Token.user_id == user_id)
                                      & (Token.project_id == project_id)))
        session.commit()
    return True


def create_app_credential(session: Session, user_id: str, project_id: str, role: str,
                          name: str, description: str, expires: datetime | None,
                          secret: str | None = None) -> tuple[ApplicationCredential, str]:
    """The credential and its secret, the given one or a new one (only its hash is
    stored: shown this once)."""
    if session.exec(select(ApplicationCredential).where(
            ApplicationCredential.user_id == user_id,
            ApplicationCredential.name == name)).first():
        raise Conflict(f"an application credential named {name!r} exists")
    secret = secret or new_token()
    cred = ApplicationCredential(user_id=user_id, project_id=project_id, role=role, name=name,
                                 description=description, secret_hash=hash_password(secret),
                                 expires_at=expires)
    session.add(cred)
    session.commit()
    return cred, secret


def app_credentials(session: Session, user_id: str) -> list[ApplicationCredential]:
    return list(session.exec(select(ApplicationCredential)
                             .where(ApplicationCredential.user_id == user_id)
                             .order_by(col(ApplicationCredential.name))))


def delete_app_credential(session: Session, cred: ApplicationCredential) -> None:
    """The credential and every token issued for it."""
    _drop_identity_rows(session, (Token, Token.application_credential_id == cred.id))
    session.delete(cred)
    session.commit()


def app_credential_login(session: Session, cred: ApplicationCredential | None,
                         secret: str) -> tuple[ApplicationCredential, str] | None:
    """(credential, role) when the secret is right, it has not expired and its user is
    still in the project: the role is the lower of the credential's and the user's."""
    stored = cred.secret_hash if cred else _decoy_hash()
    if not check_password(secret, stored) or cred is None:
        return None
    if cred.expires_at is not None and aware(cred.expires_at) <= now():
        return None
    member = session.get(Membership, (cred.user_id, cred.project_id))
    if member is None or cred.role not in ROLE_ORDER or member.role not in ROLE_ORDER:
        return None
    return cred, max(cred.role, member.role, key=ROLE_ORDER.index)


def token_expiry(session: Session, token_hash: str) -> datetime | None:
    """When a token (scoped or not) expires; None: never."""
    row: Token | UnscopedToken | None = session.get(Token, token_hash) \
        or session.get(UnscopedToken, token_hash)
    return aware(row.expires_at) if row is not None and row.expires_at else None
