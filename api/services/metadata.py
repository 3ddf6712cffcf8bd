"""Server metadata (Nova's server metadata API): database only, no workflow.

Changes go through the state table as "set-metadata", so a locked server refuses
them from non-admins. Limits (keys 1-255, values up to 255, at most 128 items) are
checked on the result before anything is written.

Idempotency-Key rows use resource type "instance-metadata": they keep the key
without showing up in the server's action history (Nova records no action either).
"""

from __future__ import annotations

from sqlmodel import Session

from api.auth import AuthContext
from api.errors import BadRequest, NotFound
from api.schemas.servers import MAX_METADATA_ITEMS
from api.services.guards import check_allowed
from api.services.operations import find_idempotent, remember_key
from api.services.servers import get_instance
from vmflow.db import lock_row, released
from vmflow.models import Instance, now

RESOURCE = "instance-metadata"


def changeable(session: Session, auth: AuthContext, server_id: str) -> Instance:
    """The server, held until the commit and read again under the hold: two merges
    (in this process or another) each keep the other's keys instead of writing back
    the metadata both read."""
    inst = get_instance(session, auth, server_id)
    lock_row(session, Instance, inst.id)
    with released(session):
        session.refresh(inst)
        check_allowed("set-metadata", inst, auth)
    return inst


def replayed(session: Session, auth: AuthContext, key: str | None, inst: Instance,
              action: str) -> bool:
    return find_idempotent(session, auth, key, RESOURCE, action, inst.id) is not None


def save(session: Session, auth: AuthContext, key: str | None, inst: Instance,
          meta: dict[str, str], action: str = "set") -> None:
    if len(meta) > MAX_METADATA_ITEMS:
        raise BadRequest(f"a server has at most {MAX_METADATA_ITEMS} metadata items; this "
                         f"would make {len(meta)}", type="MetadataLimitExceeded")
    inst.meta = meta  # a new dict: the JSON column does not track changes in place
    inst.updated_at = now()
    session.add(inst)
    remember_key(session, auth, key, RESOURCE, inst.id, action)
    session.commit()


def change(session: Session, auth: AuthContext, key: str | None, server_id: str,
           new: dict[str, str] | None = None, merge: bool = False) -> Instance:
    """Set the metadata to `new` (merge: over what it has), unless the key replays."""
    inst = changeable(session, auth, server_id)
    with released(session):
        if replayed(session, auth, key, inst, "set"):
            session.rollback()  # nothing to write: the row's hold ends here
        else:
            save(session, auth, key, inst, {**(inst.meta or {}), **(new or {})} if merge
                 else dict(new or {}))
    return inst


def item(session: Session, auth: AuthContext, server_id: str, key: str) -> str:
    meta = get_instance(session, auth, server_id).meta or {}
    if key not in meta:
        raise NotFound(f"server {server_id} has no metadata key {key!r}")
    return str(meta[key])


def delete_item(session: Session, auth: AuthContext, idempotency_key: str | None,
                server_id: str, key: str) -> None:
    inst = changeable(session, auth, server_id)
    with released(session):
        if replayed(session, auth, idempotency_key, inst, "delete"):
            session.rollback()
            return
        meta = dict(inst.meta or {})
        if meta.pop(key, None) is None:
            raise NotFound(f"server {server_id} has no metadata key {key!r}")
        save(session, auth, idempotency_key, inst, meta, "delete")
