"""Share types (Manila): everybody lists the public ones, admins all; admins create and
delete them (409 while a share uses one)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlmodel import col, or_, select

from api.deps import AdminDep, AuthDep, IdempotencyKey, SessionDep
from api.errors import Conflict, NotFound
from api.schemas.share_types import ShareTypeCreate, ShareTypeList, ShareTypePublic
from api.services.operations import find_idempotent, remember_key
from vmflow.models import Share, ShareType

router = APIRouter(prefix="/v1/share-types", tags=["share types"])


@router.get("", response_model=ShareTypeList)
def list_share_types(session: SessionDep, auth: AuthDep) -> ShareTypeList:
    stmt = select(ShareType).order_by(col(ShareType.name))
    if not auth.is_admin:
        stmt = stmt.where(col(ShareType.is_public).is_(True))
    return ShareTypeList(share_types=[ShareTypePublic.of(t) for t in session.exec(stmt)])


@router.get("/{type_ref}", response_model=ShareTypePublic)
def show_share_type(type_ref: str, session: SessionDep, auth: AuthDep) -> ShareTypePublic:
    """By id or by name (names are unique)."""
    stmt = select(ShareType).where(or_(ShareType.id == type_ref, ShareType.name == type_ref))
    if not auth.is_admin:
        stmt = stmt.where(col(ShareType.is_public).is_(True))
    found = session.exec(stmt).first()
    if found is None:
        raise NotFound(f"share type {type_ref} not found")
    return ShareTypePublic.of(found)


@router.post("", status_code=201, response_model=ShareTypePublic)
def create_share_type(body: ShareTypeCreate, session: SessionDep, auth: AdminDep,
                      idempotency_key: IdempotencyKey = None) -> ShareTypePublic:
    earlier = find_idempotent(session, auth, idempotency_key, "share_type", "create")
    if earlier is not None:
        kept = session.get(ShareType, earlier.resource_id)
        if kept is None:
            raise NotFound(f"share type {earlier.resource_id} not found")
        return ShareTypePublic.of(kept)
    if session.exec(select(ShareType).where(ShareType.name == body.name)).first() is not None:
        raise Conflict(f"a share type named {body.name!r} exists", type="ShareTypeExists")
    share_type = ShareType(name=body.name, extra_specs=dict(body.extra_specs),
                           is_public=body.is_public)
    session.add(share_type)
    remember_key(session, auth, idempotency_key, "share_type", share_type.id, "create")
    session.commit()
    return ShareTypePublic.of(share_type)


@router.delete("/{type_id}", status_code=204)
def delete_share_type(type_id: str, session: SessionDep, auth: AdminDep,
                      idempotency_key: IdempotencyKey = None) -> Response:
    if find_idempotent(session, auth, idempotency_key, "share_type", "delete",
                       type_id) is not None:
        return Response(status_code=204)
    share_type = session.get(ShareType, type_id)
    if share_type is None:
        raise NotFound(f"share type {type_id} not found")
    used = len(session.exec(select(Share.id).where(Share.share_type_id == type_id)).all())
    if used:
        raise Conflict(f"share type {share_type.name} is used by {used} shares",
                       type="ShareTypeInUse")
    session.delete(share_type)
    remember_key(session, auth, idempotency_key, "share_type", type_id, "delete")
    session.commit()
    return Response(status_code=204)
