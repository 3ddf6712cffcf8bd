"""Image members (Glance): who may add, answer and remove a share.

The logic behind api/routers/image_members.py: the owner of a shared image adds
projects; each member project accepts (or rejects) the share itself, and only then
may it see the image in its default list and boot it.

Who may do what, as in Glance: the owner (or admin) adds, lists and removes members;
a member sees and updates only its own membership; everyone else gets 404.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from api.auth import AuthContext
from api.errors import BadRequest, Conflict, Forbidden, NotFound
from api.services.images import get_image, require_owner
from api.services.operations import remember_key
from vmflow.models import Image, ImageMember, Project, now


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


def add(session: Session, auth: AuthContext, image_id: str, member: str,
        idempotency_key: str | None, replay: bool) -> ImageMember:
    """A new membership (pending); for a replayed Idempotency-Key, the one it made."""
    image = get_image(session, auth, image_id)
    require_owner(image, auth, "add members")
    project = resolve_project(session, member)
    if replay:
        return get_member(session, auth, image, project.id)
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
    return row


def listed(session: Session, auth: AuthContext, image_id: str) -> list[ImageMember]:
    image = get_image(session, auth, image_id)
    stmt = select(ImageMember).where(ImageMember.image_id == image.id)
    if not is_owner(image, auth):
        stmt = stmt.where(ImageMember.member == auth.project_id)
    return list(session.exec(stmt.order_by(col(ImageMember.created_at))))


def show(session: Session, auth: AuthContext, image_id: str, member: str) -> ImageMember:
    return get_member(session, auth, get_image(session, auth, image_id), member)


def answer(session: Session, auth: AuthContext, image_id: str, member: str,
           status: str, idempotency_key: str | None = None) -> ImageMember:
    """Only the member project answers a share (Glance: `member-update ... accepted`)."""
    image = get_image(session, auth, image_id)
    row = get_member(session, auth, image, member)
    if member != auth.project_id:
        raise Forbidden(f"only project {member} may accept or reject its share of "
                        f"image {image_id}")
    row.status, row.updated_at = status, now()
    session.add(row)
    remember_key(session, auth, idempotency_key, "image", image.id, "update-member")
    session.commit()
    return row


def remove(session: Session, auth: AuthContext, image_id: str, member: str,
           idempotency_key: str | None) -> None:
    image = get_image(session, auth, image_id)
    row = get_member(session, auth, image, member)
    require_owner(image, auth, "remove members")
    session.delete(row)
    remember_key(session, auth, idempotency_key, "image", image.id, "remove-member")
    session.commit()
