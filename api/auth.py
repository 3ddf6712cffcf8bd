"""Bearer tokens, roles and project scoping.

Roles (vmflow.identity.ROLES): admin sees and changes every project; member changes
its own project; reader only reads its own project. What a caller may not see is
reported as 404, never 403, so existence does not leak across projects.

The hosts' `service` role (vmflow.identity.SERVICE_ROLE) reaches only SERVICE_ROUTES:
it reads any image and its file (hosts fetch images) and uploads the file of a queued
image (snapshots), by PUT or by importing what it staged on a shared store; every
other route refuses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlmodel import Session
from sqlmodel.sql.expression import SelectOfScalar

from api.errors import Forbidden
from vmflow.identity import SERVICE_ROLE, hash_token
from vmflow.models import Token

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# (method, route path) the service role may call: deny by default
SERVICE_ROUTES = frozenset({
    ("GET", "/v1/images/{image_id}"),
    ("GET", "/v1/images/{image_id}/file"),
    ("PUT", "/v1/images/{image_id}/file"),
    ("POST", "/v1/images/{image_id}/import"),
})

T = TypeVar("T")


@dataclass(frozen=True)
class AuthContext:
    user_id: str
    project_id: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def is_service(self) -> bool:
        return self.role == SERVICE_ROLE

    def can_see(self, project_id: str | None) -> bool:
        return self.is_admin or project_id == self.project_id


def authenticate(session: Session, token: str) -> AuthContext | None:
    """The context of a bearer token, or None if unknown or expired."""
    row = session.get(Token, hash_token(token))
    if row is None:
        return None
    if row.expires_at is not None:
        expires = row.expires_at
        if expires.tzinfo is None:  # SQLite hands datetimes back naive; we store UTC
            expires = expires.replace(tzinfo=UTC)
        if expires <= datetime.now(UTC):
            return None
    return AuthContext(user_id=row.user_id, project_id=row.project_id, role=row.role)


def require_role(auth: AuthContext, *roles: str) -> AuthContext:
    if auth.role not in roles:
        raise Forbidden(f"this call needs role {' or '.join(roles)}; the token has {auth.role}")
    return auth


def check_method(auth: AuthContext, method: str) -> None:
    """Readers may only read, whatever the route."""
    if auth.role == "reader" and method not in READ_METHODS:
        raise Forbidden("the reader role may only read")


def check_service(auth: AuthContext, method: str, route_path: str | None) -> None:
    """The service role may call SERVICE_ROUTES and nothing else."""
    if auth.is_service and (method, route_path) not in SERVICE_ROUTES:
        raise Forbidden("the service role may only fetch images and upload image files")


def scoped(stmt: SelectOfScalar[T], project_column: Any,
           auth: AuthContext) -> SelectOfScalar[T]:
    """Limit a select to the caller's project unless the caller is admin."""
    if auth.is_admin:
        return stmt
    return stmt.where(project_column == auth.project_id)

