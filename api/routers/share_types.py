"""Share types (Manila): everybody lists the public ones, admins all; admins create and
delete them (409 while a share uses one). The logic is in api/services/share_types.py."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.deps import AdminDep, AuthDep, IdempotencyKey, SessionDep
from api.schemas.share_types import ShareTypeCreate, ShareTypeList, ShareTypePublic
from api.services import share_types
from api.services.operations import find_idempotent, replayed_row
from vmflow.models import ShareType

router = APIRouter(prefix="/v1/share-types", tags=["share types"])


@router.get("", response_model=ShareTypeList)
def list_share_types(session: SessionDep, auth: AuthDep) -> ShareTypeList:
    return ShareTypeList(share_types=[ShareTypePublic.of(t)
                                      for t in share_types.listed(session, auth)])


@router.get("/{type_ref}", response_model=ShareTypePublic)
def show_share_type(type_ref: str, session: SessionDep, auth: AuthDep) -> ShareTypePublic:
    """By id or by name (names are unique)."""
    return ShareTypePublic.of(share_types.find(session, auth, type_ref))


@router.post("", status_code=201, response_model=ShareTypePublic)
def create_share_type(body: ShareTypeCreate, session: SessionDep, auth: AdminDep,
                      idempotency_key: IdempotencyKey = None) -> ShareTypePublic:
    earlier = find_idempotent(session, auth, idempotency_key, "share_type", "create")
    if earlier is not None:
        return ShareTypePublic.of(
            replayed_row(session, ShareType, earlier.resource_id, "share type"))
    return ShareTypePublic.of(share_types.create(session, auth, body, idempotency_key))


@router.delete("/{type_id}", status_code=204)
def delete_share_type(type_id: str, session: SessionDep, auth: AdminDep,
                      idempotency_key: IdempotencyKey = None) -> Response:
    if find_idempotent(session, auth, idempotency_key, "share_type", "delete",
                       type_id) is None:
        share_types.delete(session, auth, type_id, idempotency_key)
    return Response(status_code=204)
