"""Flavors and their access lists; admin creates, deletes and changes access.

A public flavor is everybody's, a private one its access list's projects' (and
admins'). The logic is in api/services/flavors.py."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.deps import AdminDep, AuthDep, IdempotencyKey, SessionDep
from api.schemas.flavors import (
    FlavorAccessAdd,
    FlavorAccessList,
    FlavorCreate,
    FlavorList,
    FlavorPublic,
)
from api.services import flavors

router = APIRouter(prefix="/v1/flavors", tags=["flavors"])


@router.get("", response_model=FlavorList)
def list_flavors(session: SessionDep, auth: AuthDep) -> FlavorList:
    return FlavorList(flavors=[FlavorPublic.of(f) for f in flavors.list_flavors(session, auth)])


@router.get("/{flavor_ref}", response_model=FlavorPublic)
def show_flavor(flavor_ref: str, session: SessionDep, auth: AuthDep) -> FlavorPublic:
    """By id or by name (names are unique)."""
    return FlavorPublic.of(flavors.get_flavor(session, auth, flavor_ref))


@router.post("", status_code=201, response_model=FlavorPublic)
def create_flavor(body: FlavorCreate, session: SessionDep, auth: AdminDep,
                  idempotency_key: IdempotencyKey = None) -> FlavorPublic:
    return flavors.create_flavor(session, auth, body, idempotency_key)


@router.delete("/{flavor_ref}", status_code=204)
def delete_flavor(flavor_ref: str, session: SessionDep, auth: AdminDep,
                  idempotency_key: IdempotencyKey = None) -> Response:
    """409 FlavorInUse while a server uses it."""
    flavors.delete_flavor(session, auth, flavor_ref, idempotency_key)
    return Response(status_code=204)


@router.get("/{flavor_ref}/access", response_model=FlavorAccessList)
def list_access(flavor_ref: str, session: SessionDep, auth: AdminDep) -> FlavorAccessList:
    """The projects a private flavor is visible to (409 for a public one)."""
    return flavors.show_access(session, auth, flavor_ref)


@router.post("/{flavor_ref}/access", response_model=FlavorAccessList)
def add_access(flavor_ref: str, body: FlavorAccessAdd, session: SessionDep, auth: AdminDep,
               idempotency_key: IdempotencyKey = None) -> FlavorAccessList:
    """Give a project a private flavor; answers the whole list, as Nova's addTenantAccess."""
    return flavors.add_access(session, auth, flavor_ref, body.project, idempotency_key)


@router.delete("/{flavor_ref}/access/{project}", status_code=204)
def remove_access(flavor_ref: str, project: str, session: SessionDep, auth: AdminDep,
                  idempotency_key: IdempotencyKey = None) -> Response:
    flavors.remove_access(session, auth, flavor_ref, project, idempotency_key)
    return Response(status_code=204)
