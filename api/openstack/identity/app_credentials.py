"""Application credentials: a user makes them for itself from a project-scoped token
(the credential takes the token's project and at most its role); the secret is shown
once and kept hashed. The admin may read and delete anybody's."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import Field

from api.deps import SessionDep
from api.errors import BadRequest, Forbidden, NotFound
from api.openstack.common import Lenient
from api.openstack.identity import views
from api.openstack.identity.deps import Caller, CallerDep, ScopedDep, base_url
from api.openstack.identity.users import visible_user
from api.schemas.common import Name
from api.services import identity
from vmflow.models import ApplicationCredential, now

router = APIRouter(prefix="/v3/users/{user_id}/application_credentials")


class RoleRef(Lenient):
    id: str | None = Field(default=None, max_length=255)
    name: str | None = Field(default=None, max_length=255)


class CredentialIn(Lenient):
    name: Name
    description: str = Field(default="", max_length=255)
    secret: str | None = Field(default=None, min_length=8, max_length=1024)
    expires_at: datetime | None = None
    roles: list[RoleRef] | None = None
    unrestricted: bool = False


class CredentialBody(Lenient):
    application_credential: CredentialIn


def _role(asked: list[RoleRef] | None, held: str) -> str:
    """The highest role asked for (the token's when none is), if the token holds it."""
    if not asked:
        return held
    names = [views.ROLE_NAMES.get(r.id or "") or (r.name or "") for r in asked]
    unknown = [n for n in names if n not in identity.implied(held)]
    if unknown or not names:
        raise BadRequest("An application credential may only carry roles the token holds.")
    return min(names, key=identity.ROLE_ORDER.index)


@router.post("", status_code=201)
def create(user_id: str, body: CredentialBody, request: Request, session: SessionDep,
           caller: ScopedDep) -> dict[str, Any]:
    if user_id != caller.user_id:
        raise Forbidden("Application credentials are made by their own user only.")
    if caller.application_credential_id is not None:
        raise Forbidden("A token of an application credential cannot make another.")
    ask = body.application_credential
    if ask.unrestricted:
        raise BadRequest("vmflow makes restricted application credentials only.")
    expires = identity.aware(ask.expires_at) if ask.expires_at else None
    if expires is not None and expires <= now():
        raise BadRequest("expires_at is in the past.")
    assert caller.project_id is not None and caller.role is not None
    role = _role(ask.roles, caller.role)
    cred, secret = identity.create_app_credential(
        session, caller.user_id, caller.project_id, role, ask.name, ask.description, expires,
        ask.secret)
    shown = views.app_credential(base_url(request), cred)
    shown["secret"] = secret
    return {"application_credential": shown}


def _visible(session: SessionDep, caller: Caller, user_id: str,
             cred_id: str) -> ApplicationCredential:
    visible_user(session, caller, user_id)
    cred = session.get(ApplicationCredential, cred_id)
    if cred is None or cred.user_id != user_id:
        raise NotFound(f"Could not find application credential: {cred_id}.")
    return cred


@router.get("")
def list_credentials(user_id: str, request: Request, session: SessionDep, caller: CallerDep,
                     name: str | None = None) -> dict[str, Any]:
    visible_user(session, caller, user_id)
    base = base_url(request)
    creds = [c for c in identity.app_credentials(session, user_id) if name in (None, c.name)]
    return {"application_credentials": [views.app_credential(base, c) for c in creds],
            "links": views.list_links(base, f"users/{user_id}/application_credentials")}


@router.get("/{credential_id}")
def show(user_id: str, credential_id: str, request: Request, session: SessionDep,
         caller: CallerDep) -> dict[str, Any]:
    cred = _visible(session, caller, user_id, credential_id)
    return {"application_credential": views.app_credential(base_url(request), cred)}


@router.delete("/{credential_id}", status_code=204)
def delete(user_id: str, credential_id: str, session: SessionDep,
           caller: CallerDep) -> Response:
    """Revokes every token issued for it."""
    if caller.application_credential_id is not None:
        raise Forbidden("A token of an application credential cannot delete credentials.")
    identity.delete_app_credential(session, _visible(session, caller, user_id, credential_id))
    return Response(status_code=204)
