"""Image members routes (Glance).

The owner of a shared image adds projects, each member project accepts or rejects
its share. Who may do what: api/services/image_members.py.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.deps import AuthDep, IdempotencyKey, SessionDep, WriterDep
from api.schemas.images import (
    ImageMemberCreate,
    ImageMemberList,
    ImageMemberPublic,
    ImageMemberUpdate,
)
from api.services import image_members
from api.services.operations import find_idempotent, idempotency_guard

router = APIRouter(prefix="/v1/images", tags=["images"])


@router.post("/{image_id}/members", status_code=201, response_model=ImageMemberPublic)
async def add_member(image_id: str, body: ImageMemberCreate, session: SessionDep,
                     auth: WriterDep,
                     idempotency_key: IdempotencyKey = None) -> ImageMemberPublic:
    async with idempotency_guard(auth, idempotency_key):
        earlier = find_idempotent(session, auth, idempotency_key, "image", "add-member",
                                  image_id)
        return ImageMemberPublic.of(image_members.add(
            session, auth, image_id, body.member, idempotency_key, replay=earlier is not None))


@router.get("/{image_id}/members", response_model=ImageMemberList)
def list_members(image_id: str, session: SessionDep, auth: AuthDep) -> ImageMemberList:
    return ImageMemberList(members=[ImageMemberPublic.of(m) for m in
                                    image_members.listed(session, auth, image_id)])


@router.get("/{image_id}/members/{member}", response_model=ImageMemberPublic)
def show_member(image_id: str, member: str, session: SessionDep,
                auth: AuthDep) -> ImageMemberPublic:
    return ImageMemberPublic.of(image_members.show(session, auth, image_id, member))


@router.put("/{image_id}/members/{member}", response_model=ImageMemberPublic)
def update_member(image_id: str, member: str, body: ImageMemberUpdate, session: SessionDep,
                  auth: WriterDep, idempotency_key: IdempotencyKey = None) -> ImageMemberPublic:
    """Only the member project answers a share (Glance: `member-update ... accepted`).
    A repeated Idempotency-Key changes nothing (the membership as it is now)."""
    if find_idempotent(session, auth, idempotency_key, "image", "update-member", image_id):
        return ImageMemberPublic.of(image_members.show(session, auth, image_id, member))
    return ImageMemberPublic.of(
        image_members.answer(session, auth, image_id, member, body.status, idempotency_key))


@router.delete("/{image_id}/members/{member}", status_code=204)
def remove_member(image_id: str, member: str, session: SessionDep, auth: WriterDep,
                  idempotency_key: IdempotencyKey = None) -> Response:
    if not find_idempotent(session, auth, idempotency_key, "image", "remove-member",
                           image_id):
        image_members.remove(session, auth, image_id, member, idempotency_key)
    return Response(status_code=204)
