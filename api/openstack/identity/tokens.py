"""/v3/auth: issue (POST), validate (GET, HEAD), revoke (DELETE) tokens, and the
catalog and projects of the caller's token. A Keystone token is a vmflow token."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import JSONResponse
from sqlmodel import col, select

from api.deps import SessionDep
from api.errors import Forbidden, NotFound
from api.openstack.identity import views
from api.openstack.identity.auth_methods import AuthRequest, login
from api.openstack.identity.catalog import catalog
from api.openstack.identity.deps import Caller, CallerDep, ScopedDep, base_url, caller_of
from api.services import identity
from vmflow.identity import hash_token
from vmflow.models import ApplicationCredential, Membership, Project, Token, User, now

router = APIRouter(prefix="/v3/auth")


@router.post("/tokens", status_code=201)
def issue_token(body: AuthRequest, request: Request, session: SessionDep,
                x_auth_token: Annotated[str | None, Header()] = None) -> JSONResponse:
    """Unauthenticated by nature (the token method authenticates by its token)."""
    done = login(session, body, x_auth_token)
    if done.project is not None and done.role is not None:
        token = identity.issue(session, done.user.id, done.project.id, done.role, done.expires,
                               done.cred.id if done.cred else None)
    else:
        token = identity.issue_unscoped(session, done.user.id, done.expires)
    with_catalog = "nocatalog" not in request.query_params and done.project is not None
    body_out = views.token(
        methods=[done.method], u=done.user, token_hash=hash_token(token), issued=now(),
        expires=done.expires, p=done.project, held=done.role, cred=done.cred,
        catalog=catalog(base_url(request), done.project.id)
        if with_catalog and done.project else None)
    return JSONResponse(body_out, status_code=201, headers={"X-Subject-Token": token})


def _subject(session: SessionDep, caller: Caller, subject: str | None) -> Caller:
    """The token named by X-Subject-Token: the caller's own, or any for the admin.
    404 when it is unknown, expired or revoked."""
    found = caller_of(session, subject)
    if found is None:
        raise NotFound("Could not find token.")
    if found.user_id != caller.user_id and not caller.is_admin:
        raise Forbidden("You are not authorized to validate another user's token.")
    return found


def _validated(request: Request, session: SessionDep, found: Caller) -> dict[str, Any]:
    user = session.get(User, found.user_id)
    assert user is not None  # the token rows reference it
    row = session.get(Token, found.token_hash)
    issued = row.created_at if row else now()
    expires = identity.token_expiry(session, found.token_hash)
    if row is None:  # an unscoped token
        return views.token(methods=["password"], u=user, token_hash=found.token_hash,
                           issued=issued, expires=expires)
    cred = session.get(ApplicationCredential, row.application_credential_id) \
        if row.application_credential_id else None
    project = session.get(Project, row.project_id)
    with_catalog = "nocatalog" not in request.query_params and project is not None
    return views.token(
        methods=["application_credential" if cred else "password"], u=user,
        token_hash=found.token_hash, issued=issued, expires=expires, p=project,
        held=row.role, cred=cred,
        catalog=catalog(base_url(request), row.project_id) if with_catalog else None)


@router.get("/tokens")
def validate_token(request: Request, session: SessionDep, caller: CallerDep,
                   x_subject_token: Annotated[str | None, Header()] = None) -> JSONResponse:
    found = _subject(session, caller, x_subject_token)
    return JSONResponse(_validated(request, session, found),
                        headers={"X-Subject-Token": x_subject_token or ""})


@router.head("/tokens", status_code=200)
def check_token(session: SessionDep, caller: CallerDep,
                x_subject_token: Annotated[str | None, Header()] = None) -> Response:
    _subject(session, caller, x_subject_token)
    return Response(status_code=200)


@router.delete("/tokens", status_code=204)
def revoke_token(session: SessionDep, caller: CallerDep,
                 x_subject_token: Annotated[str | None, Header()] = None) -> Response:
    """Anybody may revoke a token of their own (readers included); the admin any."""
    _subject(session, caller, x_subject_token)
    assert x_subject_token is not None
    identity.revoke(session, x_subject_token)
    return Response(status_code=204)


@router.get("/catalog")
def token_catalog(request: Request, caller: ScopedDep) -> dict[str, Any]:
    assert caller.project_id is not None
    return {"catalog": catalog(base_url(request), caller.project_id),
            "links": views.list_links(base_url(request), "auth/catalog")}


@router.get("/projects")
def token_projects(request: Request, session: SessionDep, caller: CallerDep) -> dict[str, Any]:
    """The projects the caller's user may scope a token to."""
    base = base_url(request)
    rows = session.exec(select(Project).join(Membership, col(Membership.project_id) == Project.id)
                        .where(Membership.user_id == caller.user_id)
                        .order_by(col(Project.name)))
    return {"projects": [views.project(base, p) for p in rows],
            "links": views.list_links(base, "auth/projects")}
