"""Image members (Glance): the owner of a shared image adds projects; each member
project accepts (or rejects) the share itself, and only then may it see the image in
its default list and boot it.

Who may do what, as in Glance: the owner (or admin) adds, lists and removes members;
a member sees and updates only its own membership; everyone else gets 404.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlmodel import Session, col, select

from api.auth import AuthContext
from api.deps import AuthDep, IdempotencyKey, SessionDep, WriterDep
from api.errors import BadRequest, Conflict, Forbidden, NotFound
from api.routers.images import get_image, require_owner
from api.schemas.images import (
    ImageMemberCreate,
    ImageMemberList,
    ImageMemberPublic,
    ImageMemberUpdate,
)
from api.services.operations import find_idempotent, idempotency_guard, remember_key
from vmflow.models import Image, ImageMember, Project, now

router = APIRouter(prefix="/v1/images", tags=["images"])


def is_owner(image: Image, auth: AuthContext) -> bool:
    return auth.is_admin or image.owner == auth.project_id


def get_member(session: Session, auth: AuthContext, image: Image, member: str) -> ImageMember:
    """A membership the caller may see: any for the owner, its own for a member."""
    row = session.get(ImageMember, (image.id, member))
    if row is None or not (is_owner(image, auth) or member == auth.project_id):
        raise NotFound(f"project {member} is not a member of image {image.id}")
    return row


def resolve_project(session: Session, ref: str) -> Project:
    found = session.get(Project, ref) or session.exec(
        select(Project).where(Project.name == ref)).first()
    if found is None:
        raise BadRequest(f"project {ref!r} not found", type="ProjectNotFound")
    return found


@router.post("/{image_id}/members", status_code=201, response_model=ImageMemberPublic)
async def add_member(image_id: str, body: ImageMemberCreate, session: SessionDep,
                     auth: WriterDep,
                     idempotency_key: IdempotencyKey = None) -> ImageMemberPublic:
    async with idempotency_guard(auth, idempotency_key):
        earlier = find_idempotent(session, auth, idempotency_key, "image", "add-member",
                                  image_id)
        image = get_image(session, auth, image_id)
        require_owner(image, auth, "add members")
        project = resolve_project(session, body.member)
        if earlier is not None:
            return ImageMemberPublic.of(get_member(session, auth, image, project.id))
        if image.visibility != "shared":
            raise Forbidden(f"image {image_id} is {image.visibility}: only shared images "
                            "have members")
        if project.id == image.owner:
            raise BadRequest("the owner of an image cannot be its member", type="OwnerIsMember")
        if session.get(ImageMember, (image.id, project.id)) is not None:
            raise Conflict(f"project {project.id} is already a member of image {image_id}",
                           type="MemberExists")
        row = ImageMember(image_id=image.id, member=project.id)
        session.add(row)
        remember_key(session, auth, idempotency_key, "image", image.id, "add-member")
        session.commit()
        return ImageMemberPublic.of(row)


@router.get("/{image_id}/members", response_model=ImageMemberList)
def list_members(image_id: str, session: SessionDep, auth: AuthDep) -> ImageMemberList:
    image = get_image(session, auth, image_id)
    stmt = select(ImageMember).where(ImageMember.image_id == image.id)
    if not is_owner(image, auth):
        stmt = stmt.where(ImageMember.member == auth.project_id)
    rows = session.exec(stmt.order_by(col(ImageMember.created_at)))
    return ImageMemberList(members=[ImageMemberPublic.of(m) for m in rows])


@router.get("/{image_id}/members/{member}", response_model=ImageMemberPublic)
def show_member(image_id: str, member: str, session: SessionDep,
                auth: AuthDep) -> ImageMemberPublic:
    image = get_image(session, auth, image_id)
    return ImageMemberPublic.of(get_member(session, auth, image, member))


@router.put("/{image_id}/members/{member}", response_model=ImageMemberPublic)
def update_member(image_id: str, member: str, body: ImageMemberUpdate, session: SessionDep,
                  auth: WriterDep) -> ImageMemberPublic:
    """Only the member project answers a share (Glance: `member-update ... accepted`)."""
    image = get_image(session, auth, image_id)
    row = get_member(session, auth, image, member)
    if member != auth.project_id:
        raise Forbidden(f"only project {member} may accept or reject its share of "
                        f"image {image_id}")
    row.status, row.updated_at = body.status, now()
    session.add(row)
    session.commit()
    return ImageMemberPublic.of(row)


@router.delete("/{image_id}/members/{member}", status_code=204)
def remove_member(image_id: str, member: str, session: SessionDep, auth: WriterDep,
                  idempotency_key: IdempotencyKey = None) -> Response:
    if find_idempotent(session, auth, idempotency_key, "image", "remove-member", image_id):
        return Response(status_code=204)
    image = get_image(session, auth, image_id)
    row = get_member(session, auth, image, member)
    require_owner(image, auth, "remove members")
    session.delete(row)
    remember_key(session, auth, idempotency_key, "image", image.id, "remove-member")
    session.commit()
    return Response(status_code=204)
