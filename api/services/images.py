"""Images (Glance): who sees which image, and the logic of create and delete.

Visibility as in Glance: public and community images are everyone's, private ones
their owner project's, shared ones also their members' once they accepted the share
(a project may not even boot a share it has not accepted). Uploads and downloads are
in image_files.py, members in image_members.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, and_, col, delete, or_, select
from sqlmodel import update as sql_update
from sqlmodel.sql.expression import SelectOfScalar

from api.auth import AuthContext
from api.errors import BadRequest, Conflict, Forbidden, NotFound
from api.schemas.images import ImageCreate, ImageUpdate
from api.services.operations import remember_key
from vmflow.db import lock_row, released
from vmflow.models import Image, ImageMember, now
from vmflow.settings import get_settings

MemberFilter = Literal["accepted", "pending", "rejected", "all"]
TRUE = ("true", "yes", "1")


def visible_images(auth: AuthContext,
                   member_status: MemberFilter = "accepted") -> SelectOfScalar[Image]:
    """Images the caller may see and boot: public, community, its project's own and
    those shared with it whose share has `member_status`; admin (and the hosts' service
    role) see all. Deleted ones are gone for everybody."""
    stmt = select(Image).where(Image.status != "deleted")
    if auth.is_admin or auth.is_service:
        return stmt
    shared = select(ImageMember.image_id).where(ImageMember.member == auth.project_id)
    if member_status != "all":
        shared = shared.where(ImageMember.status == member_status)
    return stmt.where(or_(col(Image.visibility).in_(("public", "community")),
                          Image.owner == auth.project_id,
                          and_(Image.visibility == "shared", col(Image.id).in_(shared))))


def get_image(session: Session, auth: AuthContext, image_id: str,
              member_status: MemberFilter = "all") -> Image:
    """An image the caller may see (a member: whatever its share's status), else 404."""
    image = session.exec(visible_images(auth, member_status).where(Image.id == image_id)).first()
    if image is None:
        raise NotFound(f"image {image_id} not found")
    return image


def require_owner(image: Image, auth: AuthContext, doing: str) -> None:
    if not (auth.is_admin or image.owner == auth.project_id):
        raise Forbidden(f"only the owner of image {image.id} may {doing}")


def is_protected(image: Image) -> bool:
    value = (image.properties or {}).get("protected")
    return value is True or str(value).lower() in TRUE


def check_linked_images(session: Session, auth: AuthContext, props: dict[str, Any]) -> None:
    """kernel_id / ramdisk_id must name images the caller may boot, of the right kind:
    a launch reads them without asking whose they are."""
    for key, kind in (("kernel_id", "aki"), ("ramdisk_id", "ari")):
        ref = props.get(key)
        if ref is None:
            continue
        linked = session.exec(visible_images(auth).where(Image.id == str(ref))).first()
        if linked is None or linked.disk_format != kind:
            raise BadRequest(f"properties.{key}: no {kind} image {ref!r}", type="ImageNotFound")


def create(session: Session, auth: AuthContext, body: ImageCreate,
           idempotency_key: str | None) -> Image:
    return register(session, auth, Image(
        name=body.name, disk_format=body.disk_format, container_format=body.container_format,
        visibility=body.visibility, properties=dict(body.properties)), idempotency_key)


def register(session: Session, auth: AuthContext, image: Image,
             idempotency_key: str | None = None) -> Image:
    """A new image record (queued), the caller's project's unless an admin names another
    owner. Its id may be chosen (Glance's POST takes one): 409 if any image, deleted ones
    included, ever had it."""
    if image.visibility == "public" and not auth.is_admin:
        raise Forbidden("only role admin may make an image public")
    if image.owner not in (None, auth.project_id) and not auth.is_admin:
        raise Forbidden("only role admin may create an image for another project")
    check_linked_images(session, auth, image.properties)
    if session.get(Image, image.id) is not None:
        raise Conflict(f"image id {image.id} is already in use", type="ImageExists")
    image.owner = image.owner or auth.project_id
    session.add(image)
    remember_key(session, auth, idempotency_key, "image", image.id, "create")
    try:
        session.commit()
    except IntegrityError:  # the same id, created meanwhile
        session.rollback()
        raise Conflict(f"image id {image.id} is already in use", type="ImageExists") from None
    return image


def listed(session: Session, auth: AuthContext, member_status: MemberFilter,
           visibility: str | None) -> list[Image]:
    stmt = visible_images(auth, member_status)
    if visibility is not None:
        stmt = stmt.where(Image.visibility == visibility)
    return list(session.exec(stmt.order_by(col(Image.created_at))))


def update(session: Session, auth: AuthContext, image_id: str, body: ImageUpdate,
           idempotency_key: str | None = None) -> Image:
    """Name, visibility and properties, by the owner; public only by admin. Members of
    an image that stops being shared lose it (their rows stay, as in Glance)."""
    def change(image: Image) -> None:
        props = {k: v for k, v in (image.properties or {}).items()
                 if k not in body.remove_properties}
        props.update(body.properties)
        image.name = body.name or image.name
        image.visibility = body.visibility or image.visibility
        image.properties = props
    return edit(session, auth, image_id, change, idempotency_key)


def edit(session: Session, auth: AuthContext, image_id: str,
         change: Callable[[Image], None], idempotency_key: str | None = None) -> Image:
    """Apply `change` to the image, by the owner, with the checks every change passes
    (public only by admin, at most 128 properties, kernel/ramdisk links). The row is
    held from the read to the commit: two changes of different properties, in one API
    process or two, both stay. `change` may raise to refuse (nothing is written)."""
    image = get_image(session, auth, image_id)
    lock_row(session, Image, image.id)
    with released(session):
        session.refresh(image)
        require_owner(image, auth, "change it")
        was_public, before = image.visibility == "public", dict(image.properties or {})
        change(image)
        if image.visibility == "public" and not was_public and not auth.is_admin:
            raise Forbidden("only role admin may make an image public")
        props = dict(image.properties or {})  # a new dict: the JSON column sees a change
        if len(props) > 128:
            raise BadRequest("an image has at most 128 properties")
        check_linked_images(session, auth, {k: v for k, v in props.items()
                                            if before.get(k) != v})
        image.properties, image.updated_at = props, now()
        session.add(image)
        remember_key(session, auth, idempotency_key, "image", image.id, "update")
        session.commit()
    return image


def set_active(session: Session, auth: AuthContext, image_id: str, active: bool) -> Image:
    """Glance's deactivate (active: False) and reactivate, by the owner or admin: a
    deactivated image can be neither booted nor downloaded until it is reactivated.
    Asking for the state it is in already changes nothing; any other state: 403."""
    image = get_image(session, auth, image_id)
    require_owner(image, auth, "deactivate or reactivate it")
    want, other = ("active", "deactivated") if active else ("deactivated", "active")
    if image.status == want:
        return image
    result = session.exec(sql_update(Image).where(col(Image.id) == image.id,
                                                  col(Image.status) == other)
                          .values(status=want, updated_at=now()))
    session.commit()
    session.refresh(image)
    if not result.rowcount and image.status != want:
        raise Forbidden(f"image {image_id} is {image.status}: only an {other} image can be "
                        f"{'reactivated' if active else 'deactivated'}")
    return image


def delete_image(session: Session, auth: AuthContext, image_id: str,
                 idempotency_key: str | None) -> None:
    """Deleted for everybody, its data removed from the store; hosts keep what they
    cached (a running server does not lose its base). A protected image stays."""
    image = get_image(session, auth, image_id)
    require_owner(image, auth, "delete it")
    if is_protected(image):
        raise Conflict(f"image {image_id} is protected", type="ImageProtected")
    store = get_settings().image_store
    for f in (store / image.id, store / f"{image.id}.part"):
        f.unlink(missing_ok=True)  # an upload in flight finds its image deleted and stops
    image.status, image.location, image.updated_at = "deleted", None, now()
    session.add(image)
    session.exec(delete(ImageMember).where(col(ImageMember.image_id) == image.id))
    remember_key(session, auth, idempotency_key, "image", image.id, "delete")
    session.commit()
