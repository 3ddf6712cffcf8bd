"""Projects, users and tokens. Admin creates projects and users; anybody with a
password gets a token for a project they belong to. The logic is in
api/services/identity.py."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import AdminDep, IdempotencyKey, SessionDep
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
from api.services import identity
from api.services.operations import find_idempotent

router = APIRouter(prefix="/v1", tags=["identity"])


@router.post("/projects", status_code=201, response_model=ProjectPublic)
def create_project(body: ProjectCreate, session: SessionDep, auth: AdminDep,
                   idempotency_key: IdempotencyKey = None) -> ProjectPublic:
    earlier = find_idempotent(session, auth, idempotency_key, "project", "create")
    if earlier is not None:
        return identity.existing_project(session, earlier.resource_id)
    return identity.create_project(session, auth, body, idempotency_key)


@router.get("/projects", response_model=ProjectList)
def list_projects(session: SessionDep, auth: AdminDep) -> ProjectList:
    return ProjectList(projects=identity.projects(session))


@router.get("/users", response_model=UserList)
def list_users(session: SessionDep, auth: AdminDep) -> UserList:
    return UserList(users=identity.users(session))


@router.post("/users", status_code=201, response_model=UserPublic)
def create_user(body: UserCreate, session: SessionDep, auth: AdminDep,
                idempotency_key: IdempotencyKey = None) -> UserPublic:
    earlier = find_idempotent(session, auth, idempotency_key, "user", "create")
    if earlier is not None:
        return identity.existing_user(session, earlier.resource_id)
    return identity.create_user(session, auth, body, idempotency_key)


@router.post("/tokens", status_code=201, response_model=TokenPublic)
def create_token(body: TokenCreate, session: SessionDep,
                 idempotency_key: IdempotencyKey = None) -> TokenPublic:
    """Unauthenticated by nature. One message for every failure: which of user,
    password or project was wrong is not revealed. Without an Idempotency-Key every
    request gets a new token; with one, a repeat (password included) gets the same."""
    return identity.issue_token(session, body, idempotency_key)
