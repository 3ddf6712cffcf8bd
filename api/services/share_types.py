"""Share types (Manila): who sees which, creating one, and deleting one no share uses.

The logic behind api/routers/share_types.py. Everybody sees the public types, admins
all of them; names are unique, so a type is found by id or by name.
"""

from __future__ import annotations

from sqlmodel import Session, col, or_, select

from api.auth import AuthContext
from api.errors import Conflict, NotFound
from api.schemas.share_types import ShareTypeCreate
from api.services.operations import remember_key
from vmflow.models import Share, ShareType


def listed(session: Session, auth: AuthContext) -> list[ShareType]:
    """By name; the public ones only, unless the caller is admin."""
    stmt = select(ShareType).order_by(col(ShareType.name))
    if not auth.is_admin:
        stmt = stmt.where(col(ShareType.is_public).is_(True))
    return list(session.exec(stmt))


def find(session: Session, auth: AuthContext, type_ref: str) -> ShareType:
    """A type the caller may see, by id or by name, else 404."""
    stmt = select(ShareType).where(or_(ShareType.id == type_ref, ShareType.name == type_ref))
    if not auth.is_admin:
        stmt = stmt.where(col(ShareType.is_public).is_(True))
    found = session.exec(stmt).first()
    if found is None:
        raise NotFound(f"share type {type_ref} not found")
    return found


def create(session: Session, auth: AuthContext, body: ShareTypeCreate,
           idempotency_key: str | None, description: str | None = None) -> ShareType:
    """A new type, committed; 409 ShareTypeExists when the name is taken."""
    if session.exec(select(ShareType).where(ShareType.name == body.name)).first() is not None:
        raise Conflict(f"a share type named {body.name!r} exists", type="ShareTypeExists")
    share_type = ShareType(name=body.name, extra_specs=dict(body.extra_specs),
                           is_public=body.is_public, description=description)
    session.add(share_type)
    remember_key(session, auth, idempotency_key, "share_type", share_type.id, "create")
    session.commit()
    return share_type


def delete(session: Session, auth: AuthContext, type_id: str,
           idempotency_key: str | None) -> None:
    """Deleted and committed; 404 when unknown, 409 ShareTypeInUse while shares use it."""
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


def set_extra_specs(session: Session, share_type: ShareType, specs: dict[str, str]) -> None:
    """Merged into the type's extra specs, committed."""
    share_type.extra_specs = {**(share_type.extra_specs or {}), **specs}
    session.add(share_type)
    session.commit()


def unset_extra_spec(session: Session, share_type: ShareType, key: str) -> None:
    """Removed from the type's extra specs (404 when it has none by that key), committed."""
    specs = dict(share_type.extra_specs or {})
    if key not in specs:
        raise NotFound(f"share type {share_type.id} has no extra spec {key}")
    del specs[key]
    share_type.extra_specs = specs
    session.add(share_type)
    session.commit()
