"""Who calls the identity API: a vmflow token (scoped to a project, as every facade
sees it) or an unscoped Keystone token (only the identity API knows those)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request

from api.auth import authenticate
from api.deps import SessionDep
from api.errors import Forbidden, Unauthorized
from api.openstack.common import NEEDS_AUTH, request_token
from api.services import identity
from vmflow.identity import hash_token
from vmflow.models import Token


@dataclass(frozen=True)
class Caller:
    user_id: str
    project_id: str | None  # None: an unscoped token
    role: str | None
    token_hash: str
    application_credential_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def caller_of(session: SessionDep, token: str | None) -> Caller | None:
    """The caller of any token the identity API accepts, None if unknown or expired.
    The hosts' service role has no business here."""
    if not token:
        return None
    auth = authenticate(session, token)
    if auth is not None:
        if auth.is_service:
            return None
        row = session.get(Token, hash_token(token))
        return Caller(auth.user_id, auth.project_id, auth.role, hash_token(token),
                      row.application_credential_id if row else None)
    free = identity.unscoped(session, token)
    if free is None:
        return None
    return Caller(free.user_id, None, None, free.token_hash)


def ks_caller(request: Request, session: SessionDep,
              x_auth_token: Annotated[str | None, Header()] = None) -> Caller:
    caller = caller_of(session, request_token(request, x_auth_token))
    if caller is None:
        raise Unauthorized(NEEDS_AUTH)
    return caller


def ks_admin(caller: Annotated[Caller, Depends(ks_caller)]) -> Caller:
    if not caller.is_admin:
        raise Forbidden("You are not authorized to perform the requested action: "
                        "this call needs the admin role.")
    return caller


def ks_scoped(caller: Annotated[Caller, Depends(ks_caller)]) -> Caller:
    if caller.project_id is None:
        raise Forbidden("You are not authorized to perform the requested action: "
                        "this call needs a project-scoped token.")
    return caller


CallerDep = Annotated[Caller, Depends(ks_caller)]
AdminDep = Annotated[Caller, Depends(ks_admin)]
ScopedDep = Annotated[Caller, Depends(ks_scoped)]


def base_url(request: Request) -> str:
    """scheme://host[:port] as the client addressed it (its Host header): every href
    and catalog URL is built on it, so the answers work behind any address."""
    return f"{request.url.scheme}://{request.url.netloc}"
