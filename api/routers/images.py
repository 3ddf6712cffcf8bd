"""Images (Glance): list and show. Upload and the rest come with the image workflows."""

from __future__ import annotations

from fastapi import APIRouter
from sqlmodel import col, or_, select
from sqlmodel.sql.expression import SelectOfScalar

from api.auth import AuthContext
from api.deps import AuthDep, SessionDep
from api.errors import NotFound
from api.schemas import ImageList, ImagePublic
from vmflow.models import Image

router = APIRouter(prefix="/v1/images", tags=["images"])


def visible_images(auth: AuthContext) -> SelectOfScalar[Image]:
    """Images the caller may see (and boot): public, community or its project's own;
    admin sees all. Deleted ones are gone for everybody."""
    stmt = select(Image).where(Image.status != "deleted")
    if auth.is_admin:
        return stmt
    return stmt.where(or_(col(Image.visibility).in_(("public", "community")),
                          Image.owner == auth.project_id))


@router.get("", response_model=ImageList)
def list_images(session: SessionDep, auth: AuthDep) -> ImageList:
    stmt = visible_images(auth).order_by(col(Image.created_at))
    return ImageList(images=[ImagePublic.of(i) for i in session.exec(stmt)])


@router.get("/{image_id}", response_model=ImagePublic)
def show_image(image_id: str, session: SessionDep, auth: AuthDep) -> ImagePublic:
    image = session.exec(visible_images(auth).where(Image.id == image_id)).first()
    if image is None:
        raise NotFound(f"image {image_id} not found")
    return ImagePublic.of(image)
