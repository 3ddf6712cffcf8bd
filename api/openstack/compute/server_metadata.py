"""Nova's server metadata: GET/POST/PUT /servers/{id}/metadata and GET/PUT/DELETE
/servers/{id}/metadata/{key}, over api/services/metadata.py (the lock, the limits and
the state table as /v1's). Codes as Nova's: 200 with the metadata, 204 on delete."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.deps import SessionDep
from api.errors import BadRequest
from api.openstack.common import Lenient, OsAuthDep, OsWriterDep
from api.openstack.compute.servers import server_or_404
from api.schemas.servers import Metadata
from api.services import metadata

router = APIRouter(prefix="/v2.1/servers", tags=["compute server metadata"])


class MetadataBody(Lenient):
    metadata: Metadata


class MetaBody(Lenient):
    meta: Metadata


@router.get("/{server_id}/metadata")
def list_metadata(server_id: str, session: SessionDep,
                  auth: OsAuthDep) -> dict[str, dict[str, str]]:
    return {"metadata": dict(server_or_404(session, auth, server_id).meta or {})}


@router.put("/{server_id}/metadata")
def replace_metadata(server_id: str, body: MetadataBody, session: SessionDep,
                     auth: OsWriterDep) -> dict[str, dict[str, str]]:
    server_or_404(session, auth, server_id)
    inst = metadata.change(session, auth, None, server_id, dict(body.metadata))
    return {"metadata": dict(inst.meta or {})}


@router.post("/{server_id}/metadata")
def merge_metadata(server_id: str, body: MetadataBody, session: SessionDep,
                   auth: OsWriterDep) -> dict[str, dict[str, str]]:
    server_or_404(session, auth, server_id)
    inst = metadata.change(session, auth, None, server_id, dict(body.metadata), merge=True)
    return {"metadata": dict(inst.meta or {})}


# {key:path}: a key may hold "/" (sent as %2F), as Nova allows
@router.get("/{server_id}/metadata/{key:path}")
def show_metadata_item(server_id: str, key: str, session: SessionDep,
                       auth: OsAuthDep) -> dict[str, dict[str, str]]:
    server_or_404(session, auth, server_id)
    return {"meta": {key: metadata.item(session, auth, server_id, key)}}


@router.put("/{server_id}/metadata/{key:path}")
def set_metadata_item(server_id: str, key: str, body: MetaBody, session: SessionDep,
                      auth: OsWriterDep) -> dict[str, dict[str, str]]:
    if len(body.meta) != 1:
        raise BadRequest("Request body contains too many items")
    ((body_key, value),) = body.meta.items()
    if body_key != key:
        raise BadRequest("Request body and URI mismatch")
    server_or_404(session, auth, server_id)
    metadata.change(session, auth, None, server_id, {key: value}, merge=True)
    return {"meta": {key: value}}


@router.delete("/{server_id}/metadata/{key:path}", status_code=204)
def delete_metadata_item(server_id: str, key: str, session: SessionDep,
                         auth: OsWriterDep) -> Response:
    server_or_404(session, auth, server_id)
    metadata.delete_item(session, auth, None, server_id, key)
    return Response(status_code=204)
