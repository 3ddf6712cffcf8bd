"""Server metadata (Nova's server metadata API): database only, no workflow.

Changes go through the state table as "set-metadata", so a locked server refuses
them from non-admins. Limits (keys 1-255, values up to 255, at most 128 items) are
checked on the result before anything is written.

Idempotency-Key rows use resource type "instance-metadata": they keep the key
without showing up in the server's action history (Nova records no action either).
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlmodel import Session

from api.auth import AuthContext
from api.deps import AuthDep, IdempotencyKey, SessionDep, WriterDep
from api.errors import BadRequest, NotFound
from api.schemas.servers import (
    MAX_METADATA_ITEMS,
    MetadataBody,
    MetadataPublic,
    MetaItemBody,
    MetaItemPublic,
)
from api.services.guards import check_allowed
from api.services.operations import find_idempotent, remember_key
from api.services.servers import get_instance
from vmflow.models import Instance, now

router = APIRouter(prefix="/v1/servers", tags=["server metadata"])

RESOURCE = "instance-metadata"


def _changeable(session: Session, auth: AuthContext, server_id: str) -> Instance:
    inst = get_instance(session, auth, server_id)
    check_allowed("set-metadata", inst, auth)
    return inst


def _replayed(session: Session, auth: AuthContext, key: str | None, inst: Instance,
              action: str) -> bool:
    return find_idempotent(session, auth, key, RESOURCE, action, inst.id) is not None


def _save(session: Session, auth: AuthContext, key: str | None, inst: Instance,
          meta: dict[str, str], action: str = "set") -> None:
    if len(meta) > MAX_METADATA_ITEMS:
        raise BadRequest(f"a server has at most {MAX_METADATA_ITEMS} metadata items; this "
                         f"would make {len(meta)}", type="MetadataLimitExceeded")
    inst.meta = meta  # a new dict: the JSON column does not track changes in place
    inst.updated_at = now()
    session.add(inst)
    remember_key(session, auth, key, RESOURCE, inst.id, action)
    session.commit()


@router.get("/{server_id}/metadata", response_model=MetadataPublic)
def list_metadata(server_id: str, session: SessionDep, auth: AuthDep) -> MetadataPublic:
    return MetadataPublic(metadata=dict(get_instance(session, auth, server_id).meta or {}))


@router.put("/{server_id}/metadata", response_model=MetadataPublic)
def replace_metadata(server_id: str, body: MetadataBody, session: SessionDep, auth: WriterDep,
                     idempotency_key: IdempotencyKey = None) -> MetadataPublic:
    inst = _changeable(session, auth, server_id)
    if not _replayed(session, auth, idempotency_key, inst, "set"):
        _save(session, auth, idempotency_key, inst, dict(body.metadata))
    return MetadataPublic(metadata=dict(inst.meta or {}))


@router.post("/{server_id}/metadata", response_model=MetadataPublic)
def merge_metadata(server_id: str, body: MetadataBody, session: SessionDep, auth: WriterDep,
                   idempotency_key: IdempotencyKey = None) -> MetadataPublic:
    inst = _changeable(session, auth, server_id)
    if not _replayed(session, auth, idempotency_key, inst, "set"):
        _save(session, auth, idempotency_key, inst, {**(inst.meta or {}), **body.metadata})
    return MetadataPublic(metadata=dict(inst.meta or {}))


# {key:path}: a key may hold "/" (sent as %2F), as Nova allows
@router.get("/{server_id}/metadata/{key:path}", response_model=MetaItemPublic)
def show_metadata_item(server_id: str, key: str, session: SessionDep,
                       auth: AuthDep) -> MetaItemPublic:
    meta = get_instance(session, auth, server_id).meta or {}
    if key not in meta:
        raise NotFound(f"server {server_id} has no metadata key {key!r}")
    return MetaItemPublic(meta={key: meta[key]})


@router.put("/{server_id}/metadata/{key:path}", response_model=MetaItemPublic)
def set_metadata_item(server_id: str, key: str, body: MetaItemBody, session: SessionDep,
                      auth: WriterDep, idempotency_key: IdempotencyKey = None) -> MetaItemPublic:
    ((body_key, value),) = body.meta.items()
    if body_key != key:
        raise BadRequest(f"the body sets {body_key!r} but the URL names {key!r}",
                         type="ValidationError")
    inst = _changeable(session, auth, server_id)
    if not _replayed(session, auth, idempotency_key, inst, "set"):
        _save(session, auth, idempotency_key, inst, {**(inst.meta or {}), key: value})
    return MetaItemPublic(meta={key: value})


@router.delete("/{server_id}/metadata/{key:path}", status_code=204)
def delete_metadata_item(server_id: str, key: str, session: SessionDep, auth: WriterDep,
                         idempotency_key: IdempotencyKey = None) -> Response:
    inst = _changeable(session, auth, server_id)
    if not _replayed(session, auth, idempotency_key, inst, "delete"):
        meta = dict(inst.meta or {})
        if meta.pop(key, None) is None:
            raise NotFound(f"server {server_id} has no metadata key {key!r}")
        _save(session, auth, idempotency_key, inst, meta, "delete")
    return Response(status_code=204)
