"""Share metadata (Manila's /shares/{id}/metadata): database only, no workflow.

Each change holds the share's row until its commit, so two merges (in this process
or another) keep each other's keys. Limits (keys 1-255 characters, values up to 1023,
Manila's) are checked before anything is written.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlmodel import Session

from api.auth import AuthContext
from api.errors import BadRequest, NotFound
from api.services.shares import get_share
from vmflow.db import lock_row, released
from vmflow.models import Share, now

MAX_KEY, MAX_VALUE = 255, 1023


def check(meta: Mapping[str, object]) -> dict[str, str]:
    """The items as strings; 400 for a key or value Manila refuses."""
    for k, v in meta.items():
        if not 1 <= len(k) <= MAX_KEY:
            raise BadRequest(f"metadata key {k[:40]!r} must be 1 to {MAX_KEY} characters",
                             type="InvalidMetadataSize")
        if not isinstance(v, str) or len(v) > MAX_VALUE:
            raise BadRequest(f"metadata value of {k!r} must be a string of at most "
                             f"{MAX_VALUE} characters", type="InvalidMetadataSize")
    return {k: str(v) for k, v in meta.items()}


def _changeable(session: Session, auth: AuthContext, share_id: str) -> Share:
    share = get_share(session, auth, share_id)
    lock_row(session, Share, share.id)
    with released(session):
        session.refresh(share)
    return share


def _save(session: Session, share: Share, meta: dict[str, str]) -> dict[str, str]:
    share.meta = meta  # a new dict: the JSON column does not track changes in place
    share.updated_at = now()
    session.add(share)
    session.commit()
    return dict(meta)


def change(session: Session, auth: AuthContext, share_id: str, new: Mapping[str, object],
           merge: bool) -> dict[str, str]:
    """Set the metadata to `new` (merge: over what it has); the result."""
    items = check(new)
    share = _changeable(session, auth, share_id)
    with released(session):
        return _save(session, share, {**(share.meta or {}), **items} if merge else items)


def item(session: Session, auth: AuthContext, share_id: str, key: str) -> str:
    meta = get_share(session, auth, share_id).meta or {}
    if key not in meta:
        raise NotFound(f"share {share_id} has no metadata key {key!r}")
    return str(meta[key])


def delete_item(session: Session, auth: AuthContext, share_id: str, key: str) -> None:
    share = _changeable(session, auth, share_id)
    with released(session):
        meta = dict(share.meta or {})
        if meta.pop(key, None) is None:
            raise NotFound(f"share {share_id} has no metadata key {key!r}")
        _save(session, share, meta)
