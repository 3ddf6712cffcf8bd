"""Server metadata (Nova's server metadata API): database only, no workflow. The
rules (lock, limits, Idempotency-Key rows) are in api/services/metadata.py."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.deps import AuthDep, IdempotencyKey, SessionDep, WriterDep
from api.errors import BadRequest
from api.schemas.servers import MetadataBody, MetadataPublic, MetaItemBody, MetaItemPublic
from api.services import metadata
from api.services.servers import get_instance

router = APIRouter(prefix="/v1/servers", tags=["server metadata"])


@router.get("/{server_id}/metadata", response_model=MetadataPublic)
def list_metadata(server_id: str, session: SessionDep, auth: AuthDep) -> MetadataPublic:
    return MetadataPublic(metadata=dict(get_instance(session, auth, server_id).meta or {}))


@router.put("/{server_id}/metadata", response_model=MetadataPublic)
def replace_metadata(server_id: str, body: MetadataBody, session: SessionDep, auth: WriterDep,
                     idempotency_key: IdempotencyKey = None) -> MetadataPublic:
    inst = metadata.change(session, auth, idempotency_key, server_id, dict(body.metadata))
    return MetadataPublic(metadata=dict(inst.meta or {}))


@router.post("/{server_id}/metadata", response_model=MetadataPublic)
def merge_metadata(server_id: str, body: MetadataBody, session: SessionDep, auth: WriterDep,
                   idempotency_key: IdempotencyKey = None) -> MetadataPublic:
    inst = metadata.change(session, auth, idempotency_key, server_id, dict(body.metadata),
                           merge=True)
    return MetadataPublic(metadata=dict(inst.meta or {}))


# {key:path}: a key may hold "/" (sent as %2F), as Nova allows
@router.get("/{server_id}/metadata/{key:path}", response_model=MetaItemPublic)
def show_metadata_item(server_id: str, key: str, session: SessionDep,
                       auth: AuthDep) -> MetaItemPublic:
    return MetaItemPublic(meta={key: metadata.item(session, auth, server_id, key)})


@router.put("/{server_id}/metadata/{key:path}", response_model=MetaItemPublic)
def set_metadata_item(server_id: str, key: str, body: MetaItemBody, session: SessionDep,
                      auth: WriterDep, idempotency_key: IdempotencyKey = None) -> MetaItemPublic:
    ((body_key, value),) = body.meta.items()
    if body_key != key:
        raise BadRequest(f"the body sets {body_key!r} but the URL names {key!r}",
                         type="ValidationError")
    metadata.change(session, auth, idempotency_key, server_id, {key: value}, merge=True)
    return MetaItemPublic(meta={key: value})


@router.delete("/{server_id}/metadata/{key:path}", status_code=204)
def delete_metadata_item(server_id: str, key: str, session: SessionDep, auth: WriterDep,
                         idempotency_key: IdempotencyKey = None) -> Response:
    metadata.delete_item(session, auth, idempotency_key, server_id, key)
    return Response(status_code=204)
