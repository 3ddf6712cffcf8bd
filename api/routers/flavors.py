"""Flavors: public ones for everybody, all for admin; admin creates."""

from __future__ import annotations

from fastapi import APIRouter
from sqlmodel import col, or_, select

from api.deps import AdminDep, AuthDep, IdempotencyKey, SessionDep
from api.errors import Conflict, NotFound
from api.schemas.flavors import FlavorCreate, FlavorList, FlavorPublic
from api.services.operations import find_idempotent, remember_key
from vmflow.models import Flavor

router = APIRouter(prefix="/v1/flavors", tags=["flavors"])


@router.get("", response_model=FlavorList)
def list_flavors(session: SessionDep, auth: AuthDep) -> FlavorList:
    stmt = select(Flavor).order_by(col(Flavor.ram_mb), col(Flavor.name))
    if not auth.is_admin:
        stmt = stmt.where(col(Flavor.is_public).is_(True))
    return FlavorList(flavors=[FlavorPublic.of(f) for f in session.exec(stmt)])


@router.get("/{flavor_ref}", response_model=FlavorPublic)
def show_flavor(flavor_ref: str, session: SessionDep, auth: AuthDep) -> FlavorPublic:
    """By id or by name (names are unique)."""
    stmt = select(Flavor).where(or_(Flavor.id == flavor_ref, Flavor.name == flavor_ref))
    if not auth.is_admin:
        stmt = stmt.where(col(Flavor.is_public).is_(True))
    flavor = session.exec(stmt).first()
    if flavor is None:
        raise NotFound(f"flavor {flavor_ref} not found")
    return FlavorPublic.of(flavor)


@router.post("", status_code=201, response_model=FlavorPublic)
def create_flavor(body: FlavorCreate, session: SessionDep, auth: AdminDep,
                  idempotency_key: IdempotencyKey = None) -> FlavorPublic:
    earlier = find_idempotent(session, auth, idempotency_key, "flavor", "create")
    if earlier is not None:
        flavor = session.get(Flavor, earlier.resource_id)
        if flavor is None:
            raise NotFound(f"flavor {earlier.resource_id} not found")
        return FlavorPublic.of(flavor)
    if session.exec(select(Flavor).where(Flavor.name == body.name)).first() is not None:
        raise Conflict(f"a flavor named {body.name!r} exists", type="FlavorExists")
    flavor = Flavor(name=body.name, vcpus=body.vcpus, ram_mb=body.ram, disk_gb=body.disk,
                    is_public=body.is_public, extra_specs=body.extra_specs)
    session.add(flavor)
    remember_key(session, auth, idempotency_key, "flavor", flavor.id, "create")
    session.commit()
    return FlavorPublic.of(flavor)
