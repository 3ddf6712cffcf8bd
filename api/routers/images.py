"""Images (Glance): create, list, show, delete. Who sees which image, and the logic,
are in api/services/images.py; uploads and downloads in image_files.py, members in
image_members.py."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Response

from api.deps import AuthDep, IdempotencyKey, SessionDep, WriterDep
from api.schemas.images import ImageCreate, ImageList, ImagePublic, ImageUpdate
from api.services import images
from api.services.images import MemberFilter, get_image
from api.services.operations import find_idempotent, idempotency_guard

router = APIRouter(prefix="/v1/images", tags=["images"])


@router.post("", status_code=201, response_model=ImagePublic)
async def create_image(body: ImageCreate, session: SessionDep, auth: WriterDep,
                       idempotency_key: IdempotencyKey = None) -> ImagePublic:
    async with idempotency_guard(auth, idempotency_key):
        earlier = find_idempotent(session, auth, idempotency_key, "image", "create")
        if earlier is not None:
            return ImagePublic.of(get_image(session, auth, earlier.resource_id))
        return ImagePublic.of(images.create(session, auth, body, idempotency_key))


@router.get("", response_model=ImageList)
def list_images(session: SessionDep, auth: AuthDep, member_status: MemberFilter = "accepted",
                visibility: Literal["public", "private", "shared", "community"] | None = None,
                ) -> ImageList:
    """Glance's default list: shares only once accepted; ?member_status=pending shows
    the shares still waiting for an answer."""
    return ImageList(images=[ImagePublic.of(i) for i in
                             images.listed(session, auth, member_status, visibility)])


@router.get("/{image_id}", response_model=ImagePublic)
def show_image(image_id: str, session: SessionDep, auth: AuthDep) -> ImagePublic:
    return ImagePublic.of(get_image(session, auth, image_id))


@router.patch("/{image_id}", response_model=ImagePublic)
def update_image(image_id: str, body: ImageUpdate, session: SessionDep, auth: WriterDep,
                 idempotency_key: IdempotencyKey = None) -> ImagePublic:
    """Name, visibility and properties, by the owner; public only by admin. Members of
    an image that stops being shared lose it (their rows stay, as in Glance). A repeated
    Idempotency-Key changes nothing (the image as it is now)."""
    if find_idempotent(session, auth, idempotency_key, "image", "update", image_id):
        return ImagePublic.of(get_image(session, auth, image_id))
    return ImagePublic.of(images.update(session, auth, image_id, body, idempotency_key))


@router.delete("/{image_id}", status_code=204)
def delete_image(image_id: str, session: SessionDep, auth: WriterDep,
                 idempotency_key: IdempotencyKey = None) -> Response:
    """Deleted for everybody, its data removed from the store; hosts keep what they
    cached (a running server does not lose its base). A protected image stays."""
    if not find_idempotent(session, auth, idempotency_key, "image", "delete", image_id):
        images.delete_image(session, auth, image_id, idempotency_key)
    return Response(status_code=204)
