"""POST /v3/auth/tokens' identity methods (password, token, application_credential)
and scopes, resolved to a user and, when scoped, a project and the role held there.
Every failure is the same 401: which part was wrong is not revealed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import Field
from sqlmodel import Session, select

from api.errors import Forbidden, Unauthorized
from api.openstack.common import Lenient
from api.openstack.identity.deps import caller_of
from api.openstack.identity.views import DOMAIN_ID, DOMAIN_NAME
from api.services import identity
from vmflow.models import ApplicationCredential, Membership, Project, User, now

TOKEN_TTL = timedelta(hours=24)
DENIED = "The request you have made requires authentication."


class DomainRef(Lenient):
    id: str | None = Field(default=None, max_length=255)
    name: str | None = Field(default=None, max_length=255)


class UserRef(Lenient):
    id: str | None = Field(default=None, max_length=255)
    name: str | None = Field(default=None, max_length=255)
    domain: DomainRef | None = None
    password: str | None = Field(default=None, max_length=1024)


class PasswordMethod(Lenient):
    user: UserRef


class TokenMethod(Lenient):
    id: str = Field(max_length=1024)


class AppCredentialMethod(Lenient):
    id: str | None = Field(default=None, max_length=255)
    name: str | None = Field(default=None, max_length=255)
    secret: str = Field(max_length=1024)
    user: UserRef | None = None


class IdentityBody(Lenient):
    methods: list[str] = Field(min_length=1)
    password: PasswordMethod | None = None
    token: TokenMethod | None = None
    application_credential: AppCredentialMethod | None = None


class ProjectRef(Lenient):
    id: str | None = Field(default=None, max_length=255)
    name: str | None = Field(default=None, max_length=255)
    domain: DomainRef | None = None


class ScopeBody(Lenient):
    project: ProjectRef | None = None
    domain: DomainRef | None = None
    system: dict[str, Any] | None = None


class AuthBody(Lenient):
    identity: IdentityBody
    scope: ScopeBody | Literal["unscoped"] | None = None


class AuthRequest(Lenient):
    auth: AuthBody


@dataclass
class Login:
    """Who logged in, how, and (scoped) where with which role."""

    method: str
    user: User
    expires: datetime
    project: Project | None = None
    role: str | None = None
    cred: ApplicationCredential | None = None


def _default_domain(ref: DomainRef | None) -> bool:
    return ref is not None and (ref.id == DOMAIN_ID or (ref.id is None
                                                        and ref.name == DOMAIN_NAME))


def _find_user(session: Session, ref: UserRef) -> User | None:
    if ref.id:
        return session.get(User, ref.id)
    if ref.name and _default_domain(ref.domain):
        return identity.user_by_name(session, ref.name)
    return None


def _find_project(session: Session, ref: ProjectRef) -> Project | None:
    if ref.id:
        return session.get(Project, ref.id)
    if ref.name and _default_domain(ref.domain):
        return session.exec(select(Project).where(Project.name == ref.name)).first()
    return None


def _scope(session: Session, user: User, scope: ScopeBody | Literal["unscoped"] | None,
           fallback: Project | None) -> tuple[Project | None, str | None]:
    """The project and role the token is scoped to; (None, None): unscoped."""
    if scope == "unscoped":
        return None, None
    if scope is not None and (scope.domain is not None or scope.system is not None):
        raise Unauthorized("vmflow has no domain or system scope: scope to a project.")
    if scope is None or scope.project is None:
        # Keystone lands a login without scope in the default project; vmflow also in
        # the user's only project; otherwise the token is unscoped
        if fallback is not None:
            member = session.get(Membership, (user.id, fallback.id))
            return (fallback, member.role) if member else (None, None)
        candidates = [m for m in identity.memberships(session, user.id)
                      if m.role in identity.ROLE_ORDER]
        if user.default_project_id:
            candidates = [m for m in candidates if m.project_id == user.default_project_id] \
                or candidates
        if len(candidates) != 1:
            return None, None
        return session.get(Project, candidates[0].project_id), candidates[0].role
    project = _find_project(session, scope.project)
    member = session.get(Membership, (user.id, project.id)) if project else None
    if project is None or member is None or member.role not in identity.ROLE_ORDER:
        raise Unauthorized(DENIED)
    return project, member.role


def _password(session: Session, body: AuthBody) -> Login:
    ref = body.identity.password
    if ref is None or ref.user.password is None:
        raise Unauthorized(DENIED)
    user = _find_user(session, ref.user)
    if not identity.password_ok(user, ref.user.password) or user is None:
        raise Unauthorized(DENIED)
    project, role = _scope(session, user, body.scope, None)
    return Login("password", user, now() + TOKEN_TTL, project, role)


def _token(session: Session, body: AuthBody, header_token: str | None) -> Login:
    """Re-scope a token: no later expiry than it had; no scope asked keeps its project."""
    token = body.identity.token.id if body.identity.token else header_token
    caller = caller_of(session, token)
    if caller is None:
        raise Unauthorized(DENIED)
    if caller.application_credential_id is not None:
        raise Forbidden("A token issued for an application credential cannot be re-scoped.")
    user = session.get(User, caller.user_id)
    if user is None:
        raise Unauthorized(DENIED)
    source = identity.token_expiry(session, caller.token_hash)
    expires = min(now() + TOKEN_TTL, source) if source else now() + TOKEN_TTL
    current = session.get(Project, caller.project_id) if caller.project_id else None
    project, role = _scope(session, user, body.scope, current)
    return Login("token", user, expires, project, role)


def _app_credential(session: Session, body: AuthBody) -> Login:
    ref = body.identity.application_credential
    if ref is None:
        raise Unauthorized(DENIED)
    cred: ApplicationCredential | None = None
    if ref.id:
        cred = session.get(ApplicationCredential, ref.id)
    elif ref.name and ref.user is not None:
        owner = _find_user(session, ref.user)
        cred = session.exec(select(ApplicationCredential).where(
            ApplicationCredential.user_id == owner.id,
            ApplicationCredential.name == ref.name)).first() if owner else None
    ok = identity.app_credential_login(session, cred, ref.secret)
    if ok is None:
        raise Unauthorized(DENIED)
    cred, role = ok
    user, project = session.get(User, cred.user_id), session.get(Project, cred.project_id)
    if user is None or project is None:
        raise Unauthorized(DENIED)
    expires = now() + TOKEN_TTL
    if cred.expires_at is not None:
        expires = min(expires, identity.aware(cred.expires_at))
    return Login("application_credential", user, expires, project, role, cred)


def login(session: Session, body: AuthRequest, header_token: str | None) -> Login:
    methods = body.auth.identity.methods
    if len(methods) != 1:
        raise Unauthorized("Authenticate with exactly one of the methods password, token "
                           "and application_credential.")
    if methods[0] == "password":
        return _password(session, body.auth)
    if methods[0] == "token":
        return _token(session, body.auth, header_token)
    if methods[0] == "application_credential":
        return _app_credential(session, body.auth)
    raise Unauthorized(f"Unsupported authentication method: {methods[0]}.")
